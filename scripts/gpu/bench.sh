#!/usr/bin/env bash
# On the GPU host, step 1 of a time-budgeted run (about 2 minutes): environment, then
# benchmarks/gpu.py's short table:
# the data path alone, 256x256 / 7 layers / bf16-mixed / channels_last at batch 32 and 64 for
# PConvUNet and its plain twin (eager), then one compiled PConvUNet row. gpu.py stops starting
# configs after BENCH_BUDGET (105) s and rewrites the table after every config; `timeout`
# (BENCH_SECONDS, 120) is the hard stop, so step 2 always has a table (or its fallback row).
#   bash scripts/gpu/bench.sh    (writes outputs/bench/gpu_bench.{csv,json}, bench.log; to $OUT)
set -uo pipefail
mkdir -p outputs && date +%s > outputs/budget_start   # start_runs.sh plans from here
source scripts/gpu/setup_device.sh || exit 1
[ -n "${TINY:-}" ] || nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm \
  --format=csv,noheader
mkdir -p outputs/bench
timeout "${BENCH_SECONDS:-120}" python3 benchmarks/gpu.py --out outputs/bench \
  --vgg .gpu/vgg16_pool3.pth --budget-s "${BENCH_BUDGET:-105}" \
  --pack "$PACK" --masks .gpu/masks_train \
  ${TINY:+--device cpu --tiny} 2>&1 | tee outputs/bench/bench.log
cp outputs/bench/gpu_bench.csv outputs/bench/gpu_bench.json outputs/bench/bench.log "$OUT"/ \
  2>/dev/null
[ -f outputs/bench/gpu_bench.json ] || { echo "error: no benchmark table" >&2; exit 1; }
