#!/usr/bin/env bash
# Every later device call: wait up to SECONDS (less if training ends), then copy to $OUT the
# newest fp16 weight pieces (<= 15 MB each) and one reports.tar.gz (logs, metrics.csv, the
# mixed-precision CSV/JSON/PNG, the benchmark table): at most 6 files, under 64 MB.
#   bash scripts/gpu/collect.sh [SECONDS=540]
set -uo pipefail
SECONDS_MAX=${1:-540}
RUN=outputs/reference_256
pid=$(cat $RUN/train.pid 2>/dev/null || echo 0)
for _ in $(seq "$SECONDS_MAX"); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
latest=$(cat $RUN/weights/LATEST 2>/dev/null)
[ -n "$latest" ] && cp $RUN/weights/"$latest"/* "$OUT"/
tar -czf "$OUT/reports.tar.gz" --ignore-failed-read $RUN/train.log $RUN/csv/run/metrics.csv \
  $RUN/csv/run/config.yaml outputs/mp/mp.log outputs/mp/mixed_precision.csv \
  outputs/mp/mixed_precision.json outputs/mp/mixed_precision.png outputs/bench 2>/dev/null
kill -0 "$pid" 2>/dev/null && state=running || state=finished
echo "training $state; weights: ${latest:-none yet}"; tail -n 5 $RUN/train.log 2>/dev/null
tail -n 4 outputs/mp/mp.log 2>/dev/null; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
ls -l "$OUT"
