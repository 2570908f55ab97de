#!/usr/bin/env bash
# On the GPU host, step 3: blocks until the training chain is done (training, final fp16
# export, the mixed-precision proof), then copies to $OUT the newest fp16 weight pieces
# (<= 15 MB each, SHA-256 in pieces.json), reports.tar.gz (logs, chosen settings, metrics.csv,
# the proof's CSV/JSON/PNG, the benchmark tables) and summary.txt.
#   bash scripts/gpu/collect.sh [SECONDS=590] [stop|keep]
# SECONDS: the most this command may take. The copy starts COLLECT_S (15) before that. With
# `stop` (default), a chain still running STOP_S (20) before the copy is stopped: SIGTERM
# (Lightning writes last.ckpt after the batch; ckpt_pieces.py turns it into pieces when newer
# than the last export) and no proof after it; `keep` leaves it running (a look in between).
# When the chain ends with FULL_MIN_S (150) or more to spare and the training succeeded, the
# full benchmark table (fp32 / 16-mixed, 512) runs in what is left; after a failed training it
# returns at once, keeping the time for a rerun.
# Starting weights that arrive after .gpu/ (in .gpu_init): this script tells the chain.
set -uo pipefail
source scripts/gpu/setup_device.sh || exit 1
SECONDS_MAX=${1:-590}
MODE=${2:-stop}
COLLECT_S=${COLLECT_S:-15} STOP_S=${STOP_S:-20} FULL_MIN_S=${FULL_MIN_S:-150}
RUN=outputs/reference_256
deadline=$(( $(date +%s) + SECONDS_MAX - COLLECT_S ))
if [ -d .gpu_init ] && [ ! -f outputs/init_arrived ]; then
  touch outputs/init_arrived
  echo "starting weights arrived: $(du -sh .gpu_init | cut -f1)"
fi
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
finished() { [ -f outputs/chain.done ] && ! alive outputs/mp/mp.pid; }
stop_at=$deadline
[ "$MODE" = stop ] && stop_at=$(( deadline - STOP_S ))
while ! finished && [ "$(date +%s)" -lt "$stop_at" ]; do sleep 1; done
if ! finished && [ "$MODE" = stop ]; then
  echo "deadline: stopping the chain (SIGTERM) and keeping what it has"
  touch outputs/stop
  for pid in $RUN/train.pid outputs/mp/mp.pid; do alive $pid && kill -TERM "$(cat $pid)"; done
  while { alive $RUN/train.pid || alive outputs/mp/mp.pid; } && [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 1
  done
  spare=$(( deadline - $(date +%s) + COLLECT_S / 2 ))
  timeout $(( spare > 5 ? spare : 5 )) python3 scripts/gpu/ckpt_pieces.py $RUN
fi
left=$(( deadline - $(date +%s) ))
train_rc=$(cat $RUN/train.rc 2>/dev/null)
if finished && [ "$train_rc" != 0 ]; then
  # the time left is for a fixed rerun, not the full table
  echo "the training failed (exit ${train_rc:-none}): no full table; fix and rerun (docs/gpu.md)"
elif finished && [ "$left" -ge "$FULL_MIN_S" ]; then
  echo "$left s to spare: the full benchmark table"
  mkdir -p outputs/bench_full
  timeout "$left" python3 benchmarks/gpu.py --full --out outputs/bench_full \
    --vgg .gpu/vgg16_pool3.pth --budget-s $(( left - 25 )) ${TINY:+--device cpu --tiny} \
    > outputs/bench_full/bench.log 2>&1
  tail -n 30 outputs/bench_full/bench.log
fi
latest=$(cat $RUN/weights/LATEST 2>/dev/null)
[ -n "$latest" ] && cp $RUN/weights/"$latest"/* "$OUT"/
tar -czf "$OUT/reports.tar.gz" --ignore-failed-read $RUN/train.log $RUN/chain.log \
  $RUN/chosen.txt $RUN/csv/run/metrics.csv $RUN/csv/run/hparams.yaml $RUN/csv/run/config.yaml \
  outputs/mp outputs/bench outputs/bench_full 2>/dev/null
{
  alive $RUN/train.pid && echo "training: running" || echo "training: exit $(cat $RUN/train.rc 2>/dev/null)"
  echo "weights: ${latest:-none yet} $(grep -o '"images_seen": [0-9]*' $RUN/weights/"$latest"/pieces.json 2>/dev/null)"
  cat $RUN/chosen.txt 2>/dev/null
  grep -h "init weights\|WARNING\|stage 2 at" $RUN/chain.log $RUN/train.log 2>/dev/null | tail -n 5
  tail -n 3 $RUN/train.log 2>/dev/null
  tail -n 3 outputs/mp/mp.log 2>/dev/null
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
} | tee "$OUT/summary.txt"
ls -l "$OUT"
