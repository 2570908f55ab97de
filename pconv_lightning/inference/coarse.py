"""The coarse pass: the image shrunk by an integer factor, holes and all, and its prediction
read back at chosen full-size pixels.

Shrinking averages each ``factor x factor`` block over its valid pixels only; a block is
valid when it holds at least one valid pixel, so no valid information is lost and a shrunken
image keeps a valid pixel as long as the original has one. Reading back is bilinear between
block centres (the sampling of ``cv2.resize(..., INTER_LINEAR)``), only at the pixels asked
for and a strip of rows at a time, so no full-size float copy of the image is made.
"""

from __future__ import annotations

import numpy as np

STRIP = 256  # full-size rows read back at a time


def shrink(image: np.ndarray, mask: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the valid pixels of every ``factor x factor`` block (edge blocks may be
    smaller); a block with no valid pixel is a hole.

    Shape:
        - image: (H, W, 3) uint8, mask: (H, W), 1 = valid
        - Output: (ceil(H / f), ceil(W / f), 3) uint8 and (ceil(H / f), ceil(W / f)) uint8
    """
    height, width = mask.shape
    h, w = -(-height // factor), -(-width // factor)
    cols = np.arange(0, width, factor)
    small = np.zeros((h, w, 3), np.uint8)
    small_mask = np.zeros((h, w), np.uint8)
    for i in range(h):
        rows = slice(i * factor, (i + 1) * factor)
        valid = (mask[rows] > 0).astype(np.float64)
        count = np.add.reduceat(valid.sum(axis=0), cols)
        total = np.add.reduceat((image[rows] * valid[..., None]).sum(axis=0), cols, axis=0)
        hit = count > 0
        small[i, hit] = np.rint(total[hit] / count[hit, None])
        small_mask[i] = hit
    return small, small_mask


def _axis(coords: np.ndarray, factor: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear neighbours and weight along one axis: full-size pixel ``c`` sits at
    ``(c + 0.5) / factor - 0.5`` in block units, clamped to the edge blocks."""
    pos = np.clip((coords + 0.5) / factor - 0.5, 0, size - 1)
    low = np.floor(pos).astype(np.intp)
    return low, np.minimum(low + 1, size - 1), (pos - low).astype(np.float32)


def fill_from(
    small: np.ndarray,
    factor: int,
    target: np.ndarray,
    where: np.ndarray,
    weights: np.ndarray | None = None,
) -> None:
    """Write the bilinear upsampling of ``small`` into ``target`` at the pixels ``where``;
    with ``weights``, complete a blend instead: ``target`` holds a weighted sum whose weights
    add up to ``weights`` (below 1), and the upsampling is added with weight ``1 - weights``.

    Shape:
        - small: (3, h, w) float32, target: (3, H, W) float32, where: (H, W) bool,
          weights: (H, W) float32
    """
    _, h, w = small.shape
    for top in range(0, where.shape[0], STRIP):
        ys, xs = np.nonzero(where[top : top + STRIP])
        if not len(ys):
            continue
        ys += top
        y0, y1, wy = _axis(ys, factor, h)
        x0, x1, wx = _axis(xs, factor, w)
        upper = small[:, y0, x0] * (1 - wx) + small[:, y0, x1] * wx
        lower = small[:, y1, x0] * (1 - wx) + small[:, y1, x1] * wx
        up = upper * (1 - wy) + lower * wy
        if weights is None:
            target[:, ys, xs] = up
        else:
            target[:, ys, xs] += np.maximum(1 - weights[ys, xs], 0) * up
