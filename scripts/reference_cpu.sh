#!/usr/bin/env bash
# The reference model's CPU run (experiments/configs/reference_cpu.yaml), started or resumed.
# Everything it writes stays outside the work tree, so a fresh clone loses nothing:
#   $RUN/checkpoints/last.ckpt  every 5 minutes of training and on SIGTERM (resumed from here)
#   $RUN/weights/step-*/        fp16 exports every 10 minutes (restart point if a .ckpt is lost)
#   $RUN/csv/*/metrics.csv      the training log, a folder per start (reference_log.py joins them)
#   $RUN/wandb/                 the offline W&B run (`wandb sync`)
#   $RUN/train.log              what the runs printed
# Start it in the background:
#   setsid bash scripts/reference_cpu.sh > /dev/null 2>&1 < /dev/null &
# Extra arguments go to `pconv fit` (e.g. --model.init_weights FILE after a lost checkpoint).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${PCONV_CACHE_DIR:-$HOME/.cache/pconv_lightning}
RUN=${RUN:-$CACHE/runs/reference_cpu}
MASKS=$CACHE/masks
SHARED=${SHARED:-../shared/data}
mkdir -p "$RUN"
exec >> "$RUN/train.log" 2>&1
echo "== $(date -u +%FT%TZ) reference_cpu.sh: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
make --no-print-directory venv
if [ ! -f "$MASKS/nvidia_eval_odd/manifest.csv" ]; then
  rm -rf "$MASKS/nvidia_train_even" "$MASKS/nvidia_eval_odd"
  .venv/bin/python scripts/gpu/split_masks.py "$SHARED/nvidia_irregular_masks_test" \
    "$MASKS/nvidia_train_even" "$MASKS/nvidia_eval_odd"
fi
args=(--config experiments/configs/reference_cpu.yaml --trainer.default_root_dir "$RUN")
[ -f "$RUN/checkpoints/last.ckpt" ] && args+=(--ckpt_path last)
export WANDB_MODE=${WANDB_MODE:-offline}
exec .venv/bin/python -m pconv_lightning fit "${args[@]}" "$@"
