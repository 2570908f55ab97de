# Sourced at the start of every device call (the machine starts bare): installs the carried
# wheels once into /tmp/site and puts them and the repository on PYTHONPATH. TINY=1 (a CPU
# rehearsal here) uses the local environment instead.
#   source scripts/gpu/setup_device.sh
if [ -z "${TINY:-}" ] && [ ! -f /tmp/site/.done ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu/wheels/*.whl && touch /tmp/site/.done || return 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 WANDB_MODE=disabled
mkdir -p outputs
