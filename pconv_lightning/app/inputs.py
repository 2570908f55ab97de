"""What ``pconv app`` takes from the page: the photo and the hole mask, checked.

The bottom of the app's modules: :mod:`pconv_lightning.app.page` (the Gradio page) and
:mod:`pconv_lightning.app.command` (the command) both import from here, never the other way round.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from pconv_lightning.data.images import MAX_PIXELS
from pconv_lightning.masks.io import MaskError, check_mask, load_mask

MIN_SIDE = 16
DEFAULT_MAX_PIXELS = MAX_PIXELS  # the largest photo accepted (the training cap)
DEFAULT_MAX_FILE_SIZE = "25mb"
POLARITY = {"white = hole": 255, "black = hole": 0}
BRUSH_COLOR = "rgba(255, 0, 160, 0.7)"
INTRO = (
    "**Repair a photo.** Upload it, paint over what should be filled (brush size in the "
    "brush menu, eraser, undo), or upload a mask. Then press **Inpaint**. Only painted pixels "
    "change; everything else is kept bit for bit."
)


class InpaintError(ValueError):
    """A bad upload: the message is shown in the page."""


ORIENTATION = 0x0112  # the EXIF tag
# EXIF orientation -> the transpose that shows the photo as displayed (ImageOps.exif_transpose)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image (1, upright, when it has none)."""
    try:
        value = int(image.getexif().get(ORIENTATION, 1))
    except Exception:  # a broken EXIF block: show it as stored, as viewers do
        return 1
    return value if value in _TRANSPOSE else 1


def as_displayed(array: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels of an upload whose EXIF orientation is ``orientation``, turned the way a
    browser (and ``pconv inpaint``, through ``ImageOps.exif_transpose``) shows them.

    Shape: (H, W[, C]) uint8 -> (H, W[, C]) or (W, H[, C]) uint8.
    """
    if orientation not in _TRANSPOSE:
        return array
    return np.asarray(Image.fromarray(array).transpose(_TRANSPOSE[orientation]))


def photo_as_kept(background: Any) -> np.ndarray:
    """The uploaded photo in the mode its result keeps, as ``pconv inpaint`` does: grey
    (``L``) when its colour channels are equal everywhere, with its alpha channel (``LA`` or
    ``RGBA``) when any pixel is transparent, else RGB.

    Shape: (H, W), (H, W, 3) or (H, W, 4) uint8 -> (H, W), (H, W, 2), (H, W, 3) or (H, W, 4).
    """
    array = np.asarray(background)
    if array.ndim == 2:
        return array
    colour, alpha = array[..., :3], array[..., 3] if array.shape[2] == 4 else None
    grey = bool(
        (colour[..., 0] == colour[..., 1]).all() and (colour[..., 1] == colour[..., 2]).all()
    )
    if alpha is None or (alpha == 255).all():
        return colour[..., 0].copy() if grey else colour.copy()
    return np.dstack([colour[..., 0], alpha]) if grey else array.copy()


def _rgb(array: np.ndarray) -> np.ndarray:
    """RGB or RGBA uint8 to RGB, transparent areas on white."""
    if array.ndim == 3 and array.shape[2] == 4:
        im = Image.alpha_composite(
            Image.new("RGBA", array.shape[1::-1], "white"), Image.fromarray(array)
        )
        return np.asarray(im.convert("RGB"))
    return np.asarray(Image.fromarray(array).convert("RGB"))


def editor_inputs(
    editor: dict[str, Any] | None, mask_path: str | None, hole_value: int, max_pixels: int
) -> tuple[np.ndarray, np.ndarray]:
    """The photo and the hole mask from the editor's value and an optional mask file.

    Painted pixels (any layer's alpha > 0) and the mask file's holes are both holes.

    Shape:
        - Output: image (H, W, 3) uint8 and mask (H, W) uint8, 1 = valid, 0 = hole
    """
    background = None if editor is None else editor.get("background")
    if background is None:
        raise InpaintError("upload a photo first")
    image = _rgb(np.asarray(background))
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InpaintError(
            f"the photo is {width}x{height}; it must be at least {MIN_SIDE}x{MIN_SIDE}"
        )
    if height * width > max_pixels:
        raise InpaintError(
            f"the photo has {height * width} pixels, more than the {max_pixels} allowed"
        )
    hole = np.zeros((height, width), bool)
    for layer in editor.get("layers") or []:
        layer = np.asarray(layer)
        if layer.shape[:2] != (height, width):
            raise InpaintError(
                f"a paint layer is {layer.shape[1]}x{layer.shape[0]}, the photo {width}x{height}"
            )
        if layer.ndim == 3 and layer.shape[2] == 4:
            hole |= layer[..., 3] > 0
    if mask_path:
        valid = load_mask(mask_path, hole_value=hole_value)
        if valid.shape != (height, width):
            raise InpaintError(
                f"the mask is {valid.shape[1]}x{valid.shape[0]} but the photo is {width}x{height}"
            )
        hole |= valid == 0
    valid = (~hole).astype(np.uint8)
    try:
        check_mask(valid, "the photo", hint=": paint over the area to repair, or upload a mask")
    except MaskError as err:
        raise InpaintError(str(err)) from err
    return image, valid
