"""Repair under a pixel cap: a photo above ``max_pixels`` is repaired at the largest size with
its aspect under the cap (area downscaling; a shrunken pixel is a hole where any pixel it
covers is one), the prediction is upscaled (bilinear) to the full size, and the composite
keeps every valid pixel of the full-resolution photo bit for bit.

Two uses: ``pconv app`` bounds every request's work this way (``--work-pixels``, 4 MP), and
``pconv inpaint --work-pixels`` brings the holes of a large photo back to the scale a network
was trained at. A hole 200 pixels wide on a 12 MP photo is wider than any hole in the 256x256
crops the reference model learned from; repaired at 0.25 MP it is about 30 pixels wide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # torch: not for `--help`
    from pconv_lightning.inference.predictor import Inpainter


def work_size(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """The largest (height, width) with the photo's aspect and at most ``max_pixels``."""
    if height * width <= max_pixels:
        return height, width
    scale = (max_pixels / (height * width)) ** 0.5
    return max(1, int(height * scale)), max(1, int(width * scale))


def downscaled_inpaint(
    inpainter: Inpainter, image: np.ndarray, mask: np.ndarray, max_pixels: int
) -> np.ndarray:
    """The composite, its holes repaired at :func:`work_size` (see the module docstring);
    the full-size repair when the photo is under the cap.

    Shape:
        - image: (H, W, 3) uint8, mask: (H, W), 1 = valid -> Output: (H, W, 3) uint8
    """
    height, width = mask.shape
    h, w = work_size(height, width, max_pixels)
    if (h, w) == (height, width):
        return inpainter(image, mask)
    small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    valid = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    small_mask = (valid >= 1.0 - 1e-6).astype(np.uint8)  # any hole pixel makes a hole
    if not small_mask.any():  # tiny valid specks vanished: keep them as valid
        small_mask = (valid > 0).astype(np.uint8)
    pred = inpainter(small, small_mask)
    up = cv2.resize(pred, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(mask[..., None] > 0, image, up)
