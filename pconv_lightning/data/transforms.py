"""Image transforms (torchvision v2) and mask fitting.

Shape:
    - Image transforms: RGB PIL image -> float32 ``(3, S, S)`` in [0, 1], ``S = image_size``.
    - :func:`fit_mask`: ``(h, w)`` array -> uint8 ``(height, width)`` in {0, 1}.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.transforms import v2


def train_transform(image_size: int) -> v2.Transform:
    """Random resized crop to ``image_size`` and a random horizontal flip."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(image_size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def eval_transform(image_size: int) -> v2.Transform:
    """Shorter side resized to ``image_size``, then the centre ``image_size`` square."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def fit_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Binarise a 1 = valid mask and resize it to ``(height, width)`` by nearest neighbour.

    Masks in {0, 1} pass unchanged; other values are thresholded at half the range: at 0.5
    when the maximum is at most 1, else at 127.5 (a 0-255 mask), values above meaning valid.
    Nearest-neighbour resizing keeps the mask binary (bilinear would leave grey edges).
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    if mask.dtype != np.uint8 or mask.max(initial=0) > 1:
        cut = 0.5 if mask.max(initial=0) <= 1 else 127.5
        mask = (mask > cut).astype(np.uint8)
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return mask
