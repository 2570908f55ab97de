"""The mask generator interface.

Convention everywhere inside the library (the paper's M): 1 = valid pixel, 0 = hole.
Files on disk follow the common "white = hole" convention; `pconv_lightning.masks.io`
converts once at that boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class MaskGenerator(ABC):
    """Draws one mask per call from an explicit random generator.

    All randomness comes from ``rng``, so a mask is a pure function of (seed, index):
    ``generator(h, w, np.random.default_rng([seed, index]))`` is identical in every
    worker, epoch and machine.

    Shape:
        - Output: ``(height, width)`` uint8 array, 1 = valid, 0 = hole.
    """

    @abstractmethod
    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """Return a uint8 ``(height, width)`` mask with 1 = valid, 0 = hole."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def mask_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator for mask ``index`` of a stream seeded with ``seed``."""
    return np.random.default_rng([seed, index])


def check_size(height: int, width: int) -> None:
    """Raise ValueError unless ``height`` and ``width`` are positive integers."""
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
