"""A fixed, seeded evaluation mask set covering the paper's 6 hole-ratio buckets x {holes
touching the border, not} (Liu et al. 2018, Sec. 4.1), N masks per cell.

Each mask starts from a generator's output and is fitted to its cell: for the no-border cells
the holes are cleared from a frame along the edge; the hole is then grown (dilated) or shrunk
(eroded) by a distance-transform threshold to a ratio drawn uniformly inside the bucket, so
even (0.5, 0.6] without border contact is reachable; border cells whose holes miss the edge
are shifted until the nearest hole touches it. Every mask's cell is re-derived from its pixels
before it is written.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pconv_lightning.masks.base import MaskGenerator
from pconv_lightning.masks.buckets import BUCKET_EDGES, BUCKET_NAMES, touches_border
from pconv_lightning.masks.io import save_mask
from pconv_lightning.masks.manifest import MANIFEST_NAME, EvalMask, describe_mask, write_manifest
from pconv_lightning.masks.mixture import MixtureMaskGenerator
from pconv_lightning.masks.shapes import RandomShapesMaskGenerator
from pconv_lightning.masks.strokes import StrokeMaskGenerator

FRAME = 0.03  # width of the hole-free frame of no-border masks, as a fraction of min(H, W)


def default_generator() -> MaskGenerator:
    """Keras-PConv shapes and LaMa thin/medium/thick strokes in equal parts."""
    strokes = [StrokeMaskGenerator(preset) for preset in ("thin", "medium", "thick")]
    return MixtureMaskGenerator([RandomShapesMaskGenerator(), *strokes])


def _threshold_count(values: np.ndarray, count: int) -> float:
    """The ``count``-th smallest entry of ``values`` (1-based)."""
    return float(np.partition(values.ravel(), count - 1)[count - 1])


def fit_to_cell(
    hole: np.ndarray, bucket: int, border: bool, rng: np.random.Generator
) -> np.ndarray | None:
    """Reshape a boolean hole map towards a ratio drawn in ``bucket`` and the ``border`` rule.

    Returns a 1 = valid uint8 mask, or None when the start has no hole to grow from.

    Shape:
        - hole: ``(H, W)`` bool, True = hole.
        - Output: ``(H, W)`` uint8, 1 = valid, 0 = hole.
    """
    height, width = hole.shape
    lo, hi = BUCKET_EDGES[bucket], BUCKET_EDGES[bucket + 1]
    target = int(
        np.clip(round(rng.uniform(lo, hi) * hole.size), lo * hole.size + 1, hi * hole.size)
    )
    allowed = np.ones_like(hole)
    if not border:
        frame = max(1, round(FRAME * min(height, width)))
        allowed[:frame] = allowed[-frame:] = allowed[:, :frame] = allowed[:, -frame:] = False
    hole = hole & allowed
    count = int(hole.sum())
    if count == 0:
        return None
    if count < target:  # grow: distance of every valid pixel to the nearest hole
        distance = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5)
        distance[~allowed] = np.inf
        hole = distance <= _threshold_count(distance, target)
    elif count > target:  # shrink: keep the pixels deepest inside the holes
        depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
        hole = depth >= -_threshold_count(-depth, target)
    if border and not touches_border(~hole):
        rows, cols = np.flatnonzero(hole.any(1)), np.flatnonzero(hole.any(0))
        top, bottom = rows[0], height - 1 - rows[-1]
        left, right = cols[0], width - 1 - cols[-1]
        # (gap, shift) per edge: move the holes until the nearest one reaches that edge
        _, shift = min(
            [(top, (-top, 0)), (bottom, (bottom, 0)), (left, (0, -left)), (right, (0, right))]
        )
        hole = np.roll(hole, shift, axis=(0, 1))
    return (~hole).astype(np.uint8)


def make_evaluation_set(
    out_dir: str | Path,
    per_cell: int = 100,
    size: int | tuple[int, int] = (256, 256),
    seed: int = 0,
    generator: MaskGenerator | None = None,
    max_tries: int = 50,
) -> Path:
    """Write ``per_cell`` masks for each bucket x border cell as ``b{bucket}_{border|inner}_{i}.png``
    (white = hole) plus ``manifest.csv`` into ``out_dir``; returns the manifest path.

    Cell ``(bucket, border)`` draws from ``np.random.default_rng([seed, bucket, border])``, so
    the set depends only on the arguments and a larger ``per_cell`` extends a smaller one.
    """
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if per_cell < 1:
        raise ValueError(f"per_cell must be >= 1, got {per_cell}")
    if min(height, width) < 16:
        raise ValueError(f"size must be at least 16x16, got {height}x{width}")
    generator = default_generator() if generator is None else generator
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for bucket in range(len(BUCKET_NAMES)):
        for border in (True, False):
            rng = np.random.default_rng([seed, bucket, int(border)])
            for index in range(per_cell):
                for _ in range(max_tries):
                    mask = fit_to_cell(generator(height, width, rng) == 0, bucket, border, rng)
                    if mask is not None and describe_mask(mask)[1:] == (bucket, border):
                        break
                else:
                    raise RuntimeError(
                        f"{generator!r} gave no mask for bucket {BUCKET_NAMES[bucket]}, "
                        f"touches_border={border} at {height}x{width} in {max_tries} tries"
                    )
                path = out_dir / f"b{bucket}_{'border' if border else 'inner'}_{index:04d}.png"
                save_mask(path, mask)
                rows.append(EvalMask(path, *describe_mask(mask)))
    return write_manifest(out_dir / MANIFEST_NAME, rows)
