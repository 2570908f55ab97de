"""Copies of one photo found from pixels: re-encoded, re-resized and centre-cropped versions.

Two images are copies when the 32x32 grayscale thumbnails of their centre squares (box
resampling) differ by less than :data:`COPY_THRESHOLD` grey levels (mean absolute difference,
0-255 scale). Between the project's training folders, copies of one photo differ by at most
3.0 and two different photos by at least 11.8, so the threshold sits between them. Within a
folder no threshold tells them apart: consecutive video frames of ``train_pool_256`` differ by
1.0-5.9, so :func:`first_of_copies` compares photos of different folders only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

COPY_THRESHOLD = 6.0
THUMB = 32


def thumbnail(image: Image.Image) -> np.ndarray:
    """``(THUMB * THUMB,)`` float32 grayscale thumbnail of ``image``'s centre square."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.convert("L").crop((left, top, left + side, top + side))
    small = square.resize((THUMB, THUMB), Image.Resampling.BOX)
    return np.asarray(small, np.float32).reshape(-1)


def thumbnails(paths: Sequence[Path]) -> np.ndarray:
    """``(N, THUMB * THUMB)`` thumbnails (:func:`thumbnail`) of the image files ``paths``."""
    out = np.empty((len(paths), THUMB * THUMB), np.float32)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            out[i] = thumbnail(img)
    return out


def find_copies(chosen: Sequence[Path], others: Sequence[Path]) -> list[list[Path]]:
    """For each file of ``chosen``, the files of ``others`` that are copies of it."""
    if not others:
        return [[] for _ in chosen]
    pool = thumbnails(others)
    return [
        [others[j] for j in np.flatnonzero(np.abs(pool - row).mean(axis=1) < COPY_THRESHOLD)]
        for row in thumbnails(chosen)
    ]


def first_of_copies(
    thumbs: np.ndarray,
    groups: Sequence[int] | None = None,
    threshold: float = COPY_THRESHOLD,
    chunk: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep each photo once, the first of its copies in order: ``(original, distance)``.

    ``groups``: photos of one group (a folder) are never taken for copies of each other: a
    folder's own photos can be as close as copies (consecutive video frames differ by 1-6 grey
    levels), so only a photo that stands in two groups is left out. None: every photo on its own.
    ``original[i]`` is -1 for a photo kept, else the index of the earlier kept photo it is a
    copy of (the nearest one); ``distance[i]`` is the distance to that photo, or for a kept
    photo to the nearest earlier one of another group (``inf`` for none): the margin from the
    threshold.
    """
    rows = torch.from_numpy(np.ascontiguousarray(thumbs, np.float32))
    n = len(rows)
    group = torch.as_tensor(range(n) if groups is None else groups)
    nearest = np.full(n, np.inf)
    candidates: list[list[tuple[float, int]]] = [[] for _ in range(n)]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        dist = torch.cdist(rows[start:stop], rows[:stop], p=1) / rows.shape[1]
        earlier = torch.arange(stop)[None, :] < torch.arange(start, stop)[:, None]
        other = group[None, :stop] != group[start:stop, None]
        dist = torch.where(earlier & other, dist, torch.inf)
        nearest[start:stop] = dist.min(dim=1).values.double().numpy()
        for i, j in torch.nonzero(dist < threshold).tolist():
            candidates[start + i].append((dist[i, j].item(), j))
    original = np.full(n, -1)
    distance = nearest.copy()
    for i in range(n):
        kept = [(d, j) for d, j in candidates[i] if original[j] < 0]
        if kept:
            distance[i], original[i] = min(kept)
    return original, distance
