"""Optional dependencies: the web app (``[app]``: gradio) and ONNX (``[export]``: onnx,
onnxscript, onnxruntime) are extras, so a training node installs lean. Code that needs one
imports it through :func:`require`, which turns its absence into a one-line message naming
the ``pip install`` that brings it.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """``importlib.import_module(module)``, or :class:`MissingExtraError` telling to run
    ``pip install "pconv-lightning[extra]"`` for ``purpose`` (e.g. ``"pconv app"``)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise MissingExtraError(
            f'{purpose} needs {module} ({err}): pip install "pconv-lightning[{extra}]"'
        ) from err
