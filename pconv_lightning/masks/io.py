"""Reading and writing mask files: the one place where disk polarity is converted.

On disk a mask is a grey PNG where, by default, white (255) marks the hole, as in the
NVIDIA irregular mask set. In memory it is uint8 with 1 = valid, 0 = hole.

:func:`check_mask` is the one rule for a mask that repairs a photo, shared by ``pconv
inpaint`` and ``pconv app``: it must have a hole (else there is nothing to fill) and a valid
pixel (else there is nothing to fill it from). :func:`load_mask` refuses a mask whose holes
are drawn only in its alpha channel: masks are read from their grey values. A mask with an
EXIF orientation is read as displayed, like a photo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


class MaskError(ValueError):
    """A mask that cannot repair a photo; the message names it and says what was expected."""


def check_mask(valid: np.ndarray, name: str, hint: str = "") -> None:
    """Raise :class:`MaskError` for a mask without a hole or without a valid pixel.

    Shape:
        - valid: (H, W), 1 = valid, 0 = hole
    """
    if valid.all():
        raise MaskError(f"nothing to fill: {name} has no hole{hint}")
    if not valid.any():
        raise MaskError(
            f"{name} is all hole: no valid pixel is left to fill the holes from "
            f"(mark only the area to repair){hint}"
        )


def _alpha_only(im: Image.Image, hole: np.ndarray) -> bool:
    """Whether ``im`` has transparent pixels although its grey values mark no hole."""
    if hole.any() or not (im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info):
        return False
    return bool((np.asarray(im.convert("RGBA"))[..., 3] < 255).any())


def load_mask(path: str | Path, hole_value: int = 255, threshold: int = 127) -> np.ndarray:
    """Load a mask file as uint8 ``(H, W)``, 1 = valid, 0 = hole.

    Pixels are binarised at ``threshold`` on the grey (L) image; ``hole_value`` tells which
    side is the hole: 255 (white = hole, the default) or 0 (black = hole).

    Raises:
        MaskError: the file has transparent pixels but its grey values mark no hole.
    """
    path = Path(path)
    if hole_value not in (0, 255):
        raise ValueError(f"hole_value must be 0 or 255, got {hole_value!r}")
    try:
        with Image.open(path) as opened:
            im = ImageOps.exif_transpose(opened)  # as displayed, like the photo
            grey = np.asarray(im.convert("L"))
            white = grey > threshold
            hole = white if hole_value == 255 else ~white
            alpha_only = _alpha_only(im, hole)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read mask file {path}: {err}") from err
    if alpha_only:
        colour = "white" if hole_value == 255 else "black"
        raise MaskError(
            f"mask file {path} marks its holes only by transparency (alpha); masks are read "
            f"from their grey values: paint the holes {colour} on an opaque mask"
        )
    return (~hole).astype(np.uint8)


def save_mask(path: str | Path, mask: np.ndarray, hole_value: int = 255) -> None:
    """Write a 1 = valid mask as a grey PNG where holes have ``hole_value`` (0 or 255)."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    hole = mask == 0
    pixels = np.where(hole, hole_value, 255 - hole_value).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
