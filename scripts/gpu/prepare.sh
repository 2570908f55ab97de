#!/usr/bin/env bash
# Run HERE (no GPU) from the repository root before the GPU session. Fills the git-ignored
# folders the device tool carries, and checks that each call fits its 64 MiB (working tree
# + carried paths):
#   call 1, carry [".gpu"]:
#     .gpu/train_pool_256.pack   2,941 photos, 256x256 centre squares, WebP q82, one file
#     .gpu/masks_train/          the even-numbered half of the NVIDIA test masks (1,000)
#     .gpu/vgg16_pool3.pth       ImageNet VGG16 conv1_1..conv3_3 (../shared/weights)
#     .gpu/wheels/               scripts/gpu/wheels.txt for python 3.12, manylinux x86-64
#     .gpu/init.json             only when reference weights are staged: the run waits for them
#   call 2, carry [".gpu_init"]: the reference weights (about 52 MB of fp16; scripts/gpu/
#     stage_init.py: the newest of weights/reference_256.safetensors and the CPU run's export)
# It also writes outputs/masks_eval_odd/ (the held-back odd-numbered half, with manifest.csv)
# for `pconv evaluate` on the CPU afterwards; that folder does not travel.
# Usage: [SHARED=../shared] [PY=/work/main/.venv/bin/python] [INIT=auto|none|PATH] \
#          bash scripts/gpu/prepare.sh
set -euo pipefail
SHARED=${SHARED:-../shared}
PY=${PY:-python}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
LIMIT_MIB=63   # the device tool carries at most 64 MiB: working tree + carried paths

mkdir -p .gpu/wheels
if [ ! -f .gpu/train_pool_256.pack ]; then
  $PY -m pconv_lightning.data.pack "$SHARED/data/train_pool_256" .gpu/train_pool_256.pack \
    --size 256 --format webp --quality 82
fi
if [ ! -d .gpu/masks_train ]; then
  $PY scripts/gpu/split_masks.py "$SHARED/data/nvidia_irregular_masks_test" .gpu/masks_train \
    outputs/masks_eval_odd
fi
cp "$SHARED/weights/vgg16_pool3.pth" .gpu/vgg16_pool3.pth
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d .gpu/wheels -r scripts/gpu/wheels.txt
# Check the wheels install together for python 3.12 (tags) into a throwaway folder.
rm -rf /tmp/pconv_gpu_site && $PY -m pip install -q --no-index --no-deps --no-compile \
  --target /tmp/pconv_gpu_site --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --only-binary=:all: .gpu/wheels/*.whl
$PY scripts/gpu/stage_init.py --source "${INIT:-auto}"
ls -l .gpu/wheels
du -sh .gpu/* .gpu_init 2>/dev/null | sort -h || true  # .gpu_init: only when staged
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 cat 2>/dev/null | wc -c)
call1=$(( (tree_bytes + $(du -sb .gpu | cut -f1)) / 1048576 ))
call2=$(( (tree_bytes + $(du -sb .gpu_init 2>/dev/null | cut -f1 || echo 0)) / 1048576 ))
echo "working tree $((tree_bytes / 1048576)) MiB; call 1 (+ .gpu) ${call1} MiB;" \
  "call 2 (+ .gpu_init) ${call2} MiB (limit ${LIMIT_MIB} each)"
if [ "$call1" -gt "$LIMIT_MIB" ] || [ "$call2" -gt "$LIMIT_MIB" ]; then
  if git ls-files --error-unmatch weights/reference_256.safetensors > /dev/null 2>&1; then
    echo "error: the tracked weights/reference_256.safetensors travels with every call;" \
      "for the GPU session run: bash scripts/gpu/hide_weights.sh hide (then restore)" >&2
  else
    echo "error: over ${LIMIT_MIB} MiB: lower the pack quality" >&2
  fi
  exit 1
fi
