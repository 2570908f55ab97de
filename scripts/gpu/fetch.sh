#!/usr/bin/env bash
# Back from the GPU host, with collect.sh's $OUT copied to FILES: merge the fp16 pieces into
# one safetensors file (the SHA-256 of every piece checked) and unpack the reports.
#   bash scripts/gpu/fetch.sh FILES [DEST=outputs/gpu_run]
set -euo pipefail
FILES=${1:?usage: fetch.sh FILES [DEST]}
DEST=${2:-outputs/gpu_run}
PY=${PY:-python}
mkdir -p "$DEST"
[ -f "$FILES/reports.tar.gz" ] && tar -xzf "$FILES/reports.tar.gz" -C "$DEST"
if [ -f "$FILES/pieces.json" ]; then
  step=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$FILES/pieces.json")
  mkdir -p "$DEST/pieces-$step" && cp "$FILES"/piece-*.safetensors "$FILES/pieces.json" "$DEST/pieces-$step/"
  PYTHONPATH=$PWD $PY -m pconv_lightning.checkpoints.pieces "$DEST/pieces-$step" "$DEST/reference_256_fp16.safetensors"
fi
ls -l "$DEST"
