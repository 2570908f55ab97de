"""A pickle loader for plain numpy arrays only: unpickling is code execution, so every global
that a pickle names is refused unless it is one of the few an ndarray pickle needs."""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

# What ``pickle.dumps(np.ndarray)`` names with protocols 3 and 4 (the archive uses 3), under
# numpy 1.x and 2.x module paths.
ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside :data:`ALLOWED_GLOBALS`."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`.

    Args:
        data: the pickle's bytes.
        source: what to call the pickle in errors (a file name).
    """

    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data))
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self.source}: refusing to load the global {module}.{name} (only numpy "
                "array globals are allowed)"
            )
        if module.startswith("numpy.core.") and np.lib.NumpyVersion(np.__version__) >= "2.0.0":
            module = module.replace("numpy.core.", "numpy._core.")  # numpy.core is deprecated
        return super().find_class(module, name)


def load_numpy_pickle(data: bytes, source: str) -> Any:
    """Unpickle ``data`` (dicts, lists and numpy arrays only); ``source`` names it in errors."""
    return NumpyOnlyUnpickler(data, source).load()
