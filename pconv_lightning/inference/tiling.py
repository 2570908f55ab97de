"""Overlapping tiles with feathered weights, normalised per pixel.

Each tile's prediction is weighted by a smooth window (a raised-cosine ramp over the
``overlap`` pixels at every side that borders another tile, 1 elsewhere, never 0); the
image accumulates ``sum(weight * prediction)`` and ``sum(weight)`` and divides per pixel, so
any number of overlapping tiles blends without seams or pairwise averaging. A tile with no
hole is not run: its pixels are all valid or are covered by a tile that has a hole.

A tile's prediction counts only where it can be trusted (:func:`trust`): where the
network's final mask says that a valid pixel of the tile reached it
(:func:`pconv_lightning.models.reach.reach`; elsewhere a partial-convolution network outputs 0,
black, whatever its weights), and only near those valid pixels. Reach is not enough: the
released 7-layer model reaches hundreds of pixels into a hole, but its prediction darkens
from about ``2**layers / 2`` pixels away from the nearest valid pixel and is black (all
channels negative, clipped to 0) about ``2**layers`` pixels away, also at a tile's edge deep
inside a hole (measured on Kodak photos: bands 32 to 128 pixels wide come back at the photo's
brightness, 160 at about half of it, 256 at 15 %). So a run's weight is 1 up to
:data:`NEAR` ``* 2**layers`` pixels from a valid pixel of its window and falls to 0 at
:data:`FAR` ``* 2**layers``, where the darkening begins. A tile with no valid pixel is not
run. Holes where the weight sum is below 1 take the rest from a coarser pass (see
:class:`pconv_lightning.inference.predictor.Inpainter`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from pconv_lightning.inference.padding import padded_size, window
from pconv_lightning.models.reach import reach

Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
NEAR = 0.375  # full trust up to NEAR * 2**layers pixels from a valid pixel of the window
FAR = 0.5  # no trust from FAR * 2**layers pixels on (the released model: 48 and 64 pixels)


@dataclass(frozen=True)
class Tile:
    """One window: its corner, its size (a multiple of the network's), and its blend weights."""

    top: int
    left: int
    height: int
    width: int
    weight: np.ndarray  # (height, width) float32, > 0


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of length ``tile`` covering ``size`` pixels with at least ``overlap``
    pixels shared between neighbours; the last tile ends at the image edge."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
    return [*starts, size - tile]


def feather(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """1-D blend weights: a raised-cosine ramp over ``overlap`` pixels at each side that has
    a neighbour, 1 elsewhere; every value is in (0, 1].

    Shape:
        - Output: (length,) float32
    """
    w = np.ones(length, np.float64)
    n = min(overlap, length)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
        if ramp_start:
            w[:n] *= ramp
        if ramp_end:
            w[length - n :] *= ramp[::-1]
    return w.astype(np.float32)


def tiles(height: int, width: int, tile: int, overlap: int, multiple: int) -> Iterator[Tile]:
    """The tiles of an image. Along a side longer than ``tile`` the tiles are ``tile`` long
    and overlap; a shorter side is one tile padded to ``multiple``."""
    if tile % multiple or tile <= 0:
        raise ValueError(f"tile size must be a positive multiple of {multiple}, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile size {tile}), got {overlap}")
    axes = []
    for size in (height, width):
        length = tile if size > tile else padded_size(size, multiple)
        starts = tile_starts(size, length, overlap)
        axes.append(
            [(s, length, feather(length, overlap, s > 0, s + length < size)) for s in starts]
        )
    for top, th, wy in axes[0]:
        for left, tw, wx in axes[1]:
            yield Tile(top, left, th, tw, np.outer(wy, wx))


def reached(mask: np.ndarray, multiple: int) -> np.ndarray:
    """Where a PConvUNet with ``2**layers = multiple`` outputs a real prediction for a window.

    Shape:
        - mask: (1, 1, h, w) float32, 1 = valid; h, w multiples of ``multiple``
        - Output: (h, w) bool
    """
    layers = multiple.bit_length() - 1
    return reach(torch.from_numpy(mask), layers)[0, 0].numpy() > 0


def trust(mask: np.ndarray, multiple: int) -> np.ndarray:
    """How far a PConvUNet's prediction for a window is trusted, per pixel: 1 at valid pixels
    and at holes up to ``NEAR * multiple`` pixels (Euclidean) from a valid pixel of the window,
    falling linearly to 0 at ``FAR * multiple``, and 0 wherever :func:`reached` is false.

    Shape:
        - mask: (1, 1, h, w) float32, 1 = valid; h, w multiples of ``multiple``
        - Output: (h, w) float32 in [0, 1]
    """
    hole = (mask[0, 0] <= 0).astype(np.uint8)
    if not hole.any():
        return np.ones(hole.shape, np.float32)
    if hole.all():
        return np.zeros(hole.shape, np.float32)
    distance = cv2.distanceTransform(hole, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    near, far = NEAR * multiple, FAR * multiple
    weight = np.clip((far - distance) / (far - near), 0.0, 1.0).astype(np.float32)
    return weight * reached(mask, multiple)


def predict_tiled(
    predict: Predict,
    image: np.ndarray,
    mask: np.ndarray,
    tile: int,
    overlap: int,
    multiple: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend the network's predictions over every tile that contains a hole and a valid
    pixel, each weighted by its feather and its :func:`trust`.

    Args:
        predict: the network, ``(1, 3, h, w), (1, 1, h, w) -> (1, 3, h, w)`` float32.
        image: uint8 RGB; mask: 1 = valid, 0 = hole.

    Shape:
        - image: (H, W, 3), mask: (H, W)
        - Output: ``sum(weight * prediction)`` (3, H, W) and ``sum(weight)`` (H, W), float32;
          the weight sum is positive exactly at the pixels that some tile run trusts, and at
          least 1 where every tile covering it ran and trusts it fully.
    """
    height, width = mask.shape
    acc = np.zeros((3, height, width), np.float32)
    weights = np.zeros((height, width), np.float32)
    for t in tiles(height, width, tile, overlap, multiple):
        rows = slice(t.top, min(t.top + t.height, height))
        cols = slice(t.left, min(t.left + t.width, width))
        if mask[rows, cols].all() or not mask[rows, cols].any():
            continue
        x, m = window(image, mask, t.top, t.left, t.height, t.width)
        h, w = rows.stop - rows.start, cols.stop - cols.start
        pred = predict(x, m)[0, :, :h, :w]
        weight = t.weight[:h, :w] * trust(m, multiple)[:h, :w]
        acc[:, rows, cols] += pred * weight
        weights[rows, cols] += weight
    return acc, weights
