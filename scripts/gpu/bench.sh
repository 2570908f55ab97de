#!/usr/bin/env bash
# Device call 1, part 1: environment, then the data path alone and the throughput table (eager
# configs first, compiled ones last; the table is rewritten after every config and the
# benchmark is stopped after BENCH_SECONDS (420), so call 1 always goes on to start training).
#   bash scripts/gpu/bench.sh    (writes outputs/bench/gpu_bench.{csv,json}, copies to $OUT)
set -uo pipefail
source scripts/gpu/setup_device.sh || exit 1
[ -n "${TINY:-}" ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, lightning, kornia, jsonargparse; print('torch', torch.__version__, 'lightning', lightning.__version__, 'kornia', kornia.__version__, 'jsonargparse', jsonargparse.__version__, 'cuda', torch.cuda.is_available())"
mkdir -p outputs/bench
timeout "${BENCH_SECONDS:-420}" python3 benchmarks/gpu.py --out outputs/bench --vgg .gpu/vgg16_pool3.pth \
  --sizes 256:7:32,16,64 512:8:8 --pack .gpu/train_pool_256.pack --masks .gpu/masks_train \
  ${TINY:+--device cpu --tiny --channels-last on} 2>&1 | tee outputs/bench/bench.log
mkdir -p "${OUT:-/tmp/out}" && cp outputs/bench/gpu_bench.* "${OUT:-/tmp/out}/" 2>/dev/null
