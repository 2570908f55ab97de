"""Reading and writing mask files: the one place where disk polarity is converted.

On disk a mask is a grey PNG where, by default, white (255) marks the hole, as in the
NVIDIA irregular mask set. In memory it is uint8 with 1 = valid, 0 = hole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def load_mask(path: str | Path, hole_value: int = 255, threshold: int = 127) -> np.ndarray:
    """Load a mask file as uint8 ``(H, W)``, 1 = valid, 0 = hole.

    Pixels are binarised at ``threshold`` on the grey (L) image; ``hole_value`` tells which
    side is the hole: 255 (white = hole, the default) or 0 (black = hole).
    """
    path = Path(path)
    if hole_value not in (0, 255):
        raise ValueError(f"hole_value must be 0 or 255, got {hole_value!r}")
    try:
        with Image.open(path) as im:
            grey = np.asarray(im.convert("L"))
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read mask file {path}: {err}") from err
    white = grey > threshold
    hole = white if hole_value == 255 else ~white
    return (~hole).astype(np.uint8)


def save_mask(path: str | Path, mask: np.ndarray, hole_value: int = 255) -> None:
    """Write a 1 = valid mask as a grey PNG where holes have ``hole_value`` (0 or 255)."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    hole = mask == 0
    pixels = np.where(hole, hole_value, 255 - hole_value).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
