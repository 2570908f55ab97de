# Sourced by every step on the GPU host: installs the bundle's wheels (.gpu/wheels, for a host
# without internet; prepare.sh) once into /tmp/site, and puts them, the repository and
# scripts/gpu (timed_stage2.py) on PYTHONPATH. Results for the user go to $OUT (/tmp/out).
# CONFIG: a config used on top of reference_256.yaml by every step (reference_256_continued.yaml
# continues the released model); PACK: the photo pack the configs name (pack_of.py), which the
# benchmark and the mixed-precision proof read too.
# TINY=1 (the CPU rehearsal, tests/test_gpu_scripts.py) uses the local environment instead.
#   [CONFIG=...] source scripts/gpu/setup_device.sh
if [ -z "${TINY:-}" ] && [ ! -f /tmp/site/.done ] && compgen -G ".gpu/wheels/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu/wheels/*.whl && touch /tmp/site/.done || return 1
fi
export PYTHONPATH=/tmp/site:$PWD:$PWD/scripts/gpu PYTHONUNBUFFERED=1 WANDB_MODE=disabled
export OUT=${OUT:-/tmp/out}
mkdir -p outputs "$OUT"
export CONFIG=${CONFIG:-}
PACK=$(python3 scripts/gpu/pack_of.py experiments/configs/reference_256.yaml $CONFIG) || return 1
export PACK
