# Sourced at the start of every device call (the machine starts bare): installs the carried
# wheels once into /tmp/site and puts them, the repository and scripts/gpu (timed_stage2.py)
# on PYTHONPATH. TINY=1 (the CPU rehearsal here) uses the local environment instead.
#   source scripts/gpu/setup_device.sh
if [ -z "${TINY:-}" ] && [ ! -f /tmp/site/.done ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu/wheels/*.whl && touch /tmp/site/.done || return 1
fi
export PYTHONPATH=/tmp/site:$PWD:$PWD/scripts/gpu PYTHONUNBUFFERED=1 WANDB_MODE=disabled
export OUT=${OUT:-/tmp/out}
mkdir -p outputs "$OUT"
