#!/usr/bin/env bash
# Builds the bundle a GPU host needs for the reference recipe without internet access, from the
# repository root of a machine that has the data (no GPU needed). Git-ignored folders:
#   .gpu/<pack>                the photo pack the config names (scripts/gpu/pack_of.py), one file
#                              of 256x256 centre squares: train_pool_256.pack (reference_256.yaml)
#                              or train_all_256.pack (CONFIG=.../reference_256_continued.yaml)
#   .gpu/masks_train/          the even-numbered half of the NVIDIA test masks (1,000)
#   .gpu/vgg16_pool3.pth       ImageNet VGG16 conv1_1..conv3_3 (`pconv weights vgg16`, VGG=)
#   .gpu/wheels/               scripts/gpu/wheels.txt for python 3.12, manylinux x86-64
#   .gpu/init.json             only when starting weights are staged: the run waits for them
#   .gpu_init/                 the starting weights (about 52 MB of fp16; scripts/gpu/
#                              stage_init.py: the newest of weights/reference_256.safetensors
#                              and the CPU run's export), apart from .gpu/ so that each part
#                              can travel on its own
# It also writes outputs/masks_eval_odd/ (the held-back odd-numbered half, with manifest.csv)
# for `pconv evaluate` afterwards; that folder stays here.
# LIMIT_MIB: when set, checks that the working tree plus each part stays under it (a transfer
# limit); weights/*.safetensors do not count with the working tree: they travel in .gpu_init.
# SHARED: the folder with data/<the photo folders> and data/nvidia_irregular_masks_test.
# CONFIG: a config used on top of reference_256.yaml; the bundle holds the pack it names.
# Usage: [SHARED=../shared] [PY=.venv/bin/python] [INIT=auto|none|PATH] [LIMIT_MIB=N] \
#          [CONFIG=experiments/configs/reference_256_continued.yaml] bash scripts/gpu/prepare.sh
set -euo pipefail
SHARED=${SHARED:-../shared}
PY=${PY:-python}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
LIMIT_MIB=${LIMIT_MIB:-}
PACK=$($PY scripts/gpu/pack_of.py experiments/configs/reference_256.yaml ${CONFIG:-})

# What each pack is made of: the released model's photos at q82; every distinct photo of the
# three training folders (copies dropped) at q35, the quality that keeps the bundle under
# 64 MiB (docs/gpu.md: the size and PSNR of each quality). Never eval_kodak24 or eval_cbsd68.
case $PACK in
  .gpu/train_pool_256.pack) photos=(train_pool_256) quality=82 ;;
  .gpu/train_all_256.pack)
    photos=(train_pool_256 train_pool_extra_256 imagenet1k_sample_256) quality=35 ;;
  *) echo "error: prepare.sh has no recipe for the pack $PACK (its config's data.train)" >&2
     exit 1 ;;
esac
mkdir -p .gpu/wheels
for other in .gpu/*.pack; do  # the bundle carries one pack: the config's
  [ "$other" = "$PACK" ] || [ ! -f "$other" ] || { echo "removing $other"; rm "$other"; }
done
if [ ! -f "$PACK" ]; then
  $PY -m pconv_lightning.data.pack "${photos[@]/#/$SHARED/data/}" "$PACK" \
    --size 256 --format webp --quality "$quality"
fi
if [ ! -d .gpu/masks_train ]; then
  $PY scripts/gpu/split_masks.py "$SHARED/data/nvidia_irregular_masks_test" .gpu/masks_train \
    outputs/masks_eval_odd
fi
# the loss's VGG16 (pool3): `pconv weights vgg16` derives it (make does), else $SHARED/weights
VGG=${VGG:-${PCONV_WEIGHTS_DIR:-$HOME/.cache/pconv_lightning/weights}/vgg16_pool3.pth}
[ -f "$VGG" ] || VGG=$SHARED/weights/vgg16_pool3.pth
cp "$VGG" .gpu/vgg16_pool3.pth
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
tree_bytes=$(git ls-files -z --cached --others --exclude-standard -- . ':!weights/*.safetensors' \
  | xargs -0 cat 2>/dev/null | wc -c)
part1=$(( (tree_bytes + $(du -sb .gpu | cut -f1)) / 1048576 ))
part2=$(( (tree_bytes + $(du -sb .gpu_init 2>/dev/null | cut -f1 || echo 0)) / 1048576 ))
echo "working tree $((tree_bytes / 1048576)) MiB; with .gpu ${part1} MiB;" \
  "with .gpu_init ${part2} MiB${LIMIT_MIB:+ (limit $LIMIT_MIB each)}"
if [ -n "$LIMIT_MIB" ] && { [ "$part1" -gt "$LIMIT_MIB" ] || [ "$part2" -gt "$LIMIT_MIB" ]; }; then
  echo "error: over LIMIT_MIB=${LIMIT_MIB}: lower the pack quality" >&2
  exit 1
fi
