"""Padding to the network's size multiple: windows cut from an image, holes beyond its edges.

The PConv UNet needs sides that are multiples of ``2**layers``. A window that reaches past
the image is filled with zeros and its mask there is 0 (hole), so the partial convolutions
ignore the padding instead of reading it as black pixels; the prediction is cropped back.
"""

from __future__ import annotations

import numpy as np


def padded_size(size: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is at least ``size`` (and at least one)."""
    return max(multiple, -(-size // multiple) * multiple)


def window(
    image: np.ndarray, mask: np.ndarray, top: int, left: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The network inputs for one window of the image; parts outside the image are holes.

    Args:
        image: uint8 RGB image.
        mask: uint8 or bool, 1 = valid, 0 = hole.
        top, left: the window's corner inside the image.
        height, width: the window's size; it may reach past the bottom and right edges.

    Shape:
        - image: (H, W, 3), mask: (H, W)
        - Output: image (1, 3, height, width) float32 in [0, 1] and mask (1, 1, height,
          width) float32, both zero outside the image.
    """
    rows = max(0, min(height, image.shape[0] - top))
    cols = max(0, min(width, image.shape[1] - left))
    x = np.zeros((1, 3, height, width), np.float32)
    m = np.zeros((1, 1, height, width), np.float32)
    x[0, :, :rows, :cols] = image[top : top + rows, left : left + cols].transpose(2, 0, 1)
    x *= np.float32(1 / 255)
    m[0, 0, :rows, :cols] = mask[top : top + rows, left : left + cols]
    return x, m
