#!/usr/bin/env bash
# The program of the W&B sweeps in this folder: `wandb agent` runs it from the repository root
# with the sweep file's --config files and the point's --key=value arguments.
# It trains with the project's interpreter (PCONV_PYTHON, else the .venv that `make` builds) and
# writes each run under outputs/sweeps/<sweep id>/<run id>/ (the agent sets both ids).
# `pconv sweep` (offline, no W&B server) runs it the same way and sets PCONV_SWEEP_RUNS, its
# sweep folder's runs/, in place of outputs/sweeps/<sweep id>.
set -euo pipefail
python="${PCONV_PYTHON:-.venv/bin/python}"
if [[ ! -x "$python" ]]; then
    echo "fit_point.sh: no Python at '$python' (run from the repository root after \`make venv\`," \
        "or set PCONV_PYTHON to the interpreter that has pconv_lightning)" >&2
    exit 2
fi
root="${PCONV_SWEEP_RUNS:-outputs/sweeps/${WANDB_SWEEP_ID:-no-sweep}}/${WANDB_RUN_ID:-no-run}"
exec "$python" -m pconv_lightning fit "$@" --trainer.default_root_dir="$root"
