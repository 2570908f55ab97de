#!/usr/bin/env bash
# The reference model's release, once its run has met its budget (weights/README.md):
#   1. weights/reference_256.safetensors: the run's final fp16 export (fit's end), one file
#   2. pconv evaluate: eval_kodak24 and eval_cbsd68 at 256 and 512 with the held-back
#      odd-numbered NVIDIA masks, the model against Telea, NS and the mean fill
#   3. the card's status (step, SHA-256) and evaluation sections, and
#      docs/reference_training_log.png (reference_report.py)
#   4. docs/reference_examples_*.jpg (each run's examples grid) and the README's first
#      picture, docs/reference_repair.jpg (reference_figure.py)
# Everything else is kept under $RUN/eval. A rehearsal with PER_CELL=1 (12 pairs a run) took
# 10 minutes on 2 CPU cores; the full sets (every image in every cell: 288 pairs a Kodak24 run,
# 816 a CBSD68 run) take hours, most of it LPIPS at 512. A rerun keeps each evaluation already
# done with the same export and PER_CELL (its weights.stamp), so a cut-off release resumes.
# SIZES (default "256 512") sets the evaluation sizes; at sizes above WORK_SIZE (default 256,
# the training crops) the model is also run at WORK_SIZE and upscaled (reference@256 in the
# tables: `pconv inpaint --work-pixels`).
# EXPORT=<pieces folder> releases that export instead of the run's newest (the last link of a
# chain of runs: the card's training log holds the budget, and its status and plot are left to
# the card); EVAL sets where the evaluations go; EVAL_ONLY=1 stops after them. A committed
# file that holds the export's weights already is kept byte for byte. WEIGHTS=<a released
# .safetensors> evaluates that file again where its export is gone (a machine laid anew): no
# merge, its SHA-256 stamps the evaluations, and only the card's evaluation section is written.
# Each run's metrics.csv is also copied to weights/evaluation/<data>_<size>/, so that the card's
# section can be written again from the checkout alone.
#   bash scripts/reference_release.sh
# Rehearsal on an unfinished run, writing nothing into the checkout:
#   REHEARSAL=/tmp/rehearsal PER_CELL=1 bash scripts/reference_release.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${PCONV_CACHE_DIR:-$HOME/.cache/pconv_lightning}
RUN=${RUN:-$CACHE/runs/reference_cpu}
SHARED=${SHARED:-../shared/data}
MASKS=$CACHE/masks/nvidia_eval_odd
PY=.venv/bin/python
DEST=${REHEARSAL:-.}
EVAL=${EVAL:-${REHEARSAL:-$RUN}/eval}
chain=${EXPORT:-${WEIGHTS:-}}  # set: the card's training log holds the budget
if [ -n "${WEIGHTS:-}" ]; then
  [ -f "$WEIGHTS" ] || { echo "WEIGHTS=$WEIGHTS: no such file (a released .safetensors)" >&2; exit 1; }
  steps=$($PY -c "import sys; from safetensors import safe_open; print((safe_open(sys.argv[1], 'np').metadata() or {}).get('step', '?'))" "$WEIGHTS")
  echo "evaluating the released $WEIGHTS (step $steps of its own run) again"
else
  # EXPORT: the last link of a chain of runs (weights/README.md's training log adds up its budget)
  export=${EXPORT:-$RUN/weights/$(cat "$RUN/weights/LATEST")}
  steps=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['step'])" "$export/pieces.json")
fi
if [ -n "${EXPORT:-}" ]; then
  echo "releasing $export (step $steps of its own run): the card's training log holds the budget"
elif [ -z "$chain" ]; then
  # the budget: max_steps of the configs the run was started with (LightningCLI saves them
  # merged: reference_cpu.yaml, and reference_cpu_continued.yaml on top when continued)
  if [ -z "${REHEARSAL:-}" ] && [ ! -f "$RUN/config.yaml" ]; then
    echo "$RUN/config.yaml is missing: no run to release" >&2
    exit 1
  fi
  budget=$(sed -n 's/^  max_steps: \([0-9]*\).*/\1/p' "$RUN/config.yaml" 2>/dev/null || true)
  if [ -z "${REHEARSAL:-}" ] && [ "$steps" -lt "$budget" ]; then
    echo "the newest export ($export) is at step $steps of $budget: the budget is not met" >&2
    exit 1
  fi
fi
mkdir -p "$DEST/weights" "$DEST/docs" "$EVAL"
[ "$DEST" = . ] || cp weights/README.md "$DEST/weights/README.md"
if [ -n "${WEIGHTS:-}" ]; then
  weights=$WEIGHTS
  stamp="$(sha256sum "$weights" | cut -d' ' -f1) per-cell ${PER_CELL:-all}"
else
  $PY -m pconv_lightning.checkpoints.pieces "$export" "$DEST/weights/reference_256.safetensors"
  weights=$DEST/weights/reference_256.safetensors
  # the export's manifest (its pieces' SHA-256) names the weights: the merged file's bytes vary,
  # as safetensors writes its metadata in no fixed order
  stamp="$(sha256sum "$export/pieces.json" | cut -d' ' -f1) per-cell ${PER_CELL:-all}"
fi
evals=()
for size in ${SIZES-256 512}; do
  for data in kodak24 cbsd68; do
    out=$EVAL/${data}_$size
    work=$([ "$size" -gt "${WORK_SIZE:-256}" ] && echo "${WORK_SIZE:-256}" || true)
    run_stamp="$stamp${work:+ work-size $work}"
    if [ -f "$out/metrics.csv" ] && [ "$(cat "$out/weights.stamp" 2>/dev/null)" = "$run_stamp" ]; then
      echo "kept $out: evaluated with these weights already"
    else
      rm -f "$out/weights.stamp"
      $PY -m pconv_lightning evaluate --checkpoint "reference=$weights" \
        --images "$SHARED/eval_$data" --masks "$MASKS" --size "$size" --device cpu --no-progress \
        ${PER_CELL:+--per-cell "$PER_CELL"} ${work:+--work-size "$work"} --out "$out"
      echo "$run_stamp" > "$out/weights.stamp"
    fi
    mkdir -p "$DEST/weights/evaluation/${data}_$size"
    cp "$out/metrics.csv" "$DEST/weights/evaluation/${data}_$size/metrics.csv"
    $PY -c "import sys; from PIL import Image; Image.open(sys.argv[1]).convert('RGB').save(sys.argv[2], quality=85)" \
      "$out/examples.png" "$DEST/docs/reference_examples_${data}_$size.jpg"  # 16 MB as PNG at 512
    name=$([ $data = kodak24 ] && echo Kodak24 || echo CBSD68)
    evals+=(--eval "$name, ${size}x$size=$out")
  done
done
if [ -n "${EVAL_ONLY:-}" ]; then
  echo "evaluations done under $EVAL (EVAL_ONLY: card, plot and figure left as they are)"
  exit 0
fi
if [ -n "$chain" ]; then
  # a chain: its status and its training log plot (reference_report.py --run per link) are the
  # card's own; only the evaluation section is written here
  $PY scripts/reference_report.py --card "$DEST/weights/README.md" "${evals[@]}"
else
  $PY scripts/reference_report.py --card "$DEST/weights/README.md" --run "$RUN" "${evals[@]}" \
    --weights "$weights" --plot "$DEST/docs/reference_training_log.png"
fi
$PY scripts/reference_figure.py --checkpoint "$weights" \
  --out "$DEST/docs/reference_repair.jpg"
echo "released step $steps into $DEST; evaluation reports under $EVAL"
