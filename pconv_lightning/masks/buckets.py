"""The paper's evaluation protocol: hole-to-image area ratio buckets, with and without
holes touching the image border (Liu et al. 2018, Sec. 4.1 and Table 1)."""

from __future__ import annotations

import itertools

import numpy as np

BUCKET_EDGES: tuple[float, ...] = (0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def bucket_label(index: int) -> str:
    """``10-20`` for bucket 1, (0.1, 0.2]: percent of the image that is hole. The one label of
    a bucket in every table, plot, message and metric name (``val/psnr_10-20``)."""
    lo, hi = BUCKET_EDGES[index], BUCKET_EDGES[index + 1]
    return f"{round(lo * 100)}-{round(hi * 100)}"


BUCKET_NAMES: tuple[str, ...] = tuple(bucket_label(i) for i in range(len(BUCKET_EDGES) - 1))


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of pixels that are holes in a 1 = valid mask."""
    return float((mask == 0).mean())


def ratio_bucket(ratio: float) -> int:
    """Index 0-5 of the bucket ``(lo, hi]`` holding ``ratio``; -1 if outside (0.01, 0.6]."""
    for index, (lo, hi) in enumerate(itertools.pairwise(BUCKET_EDGES)):
        if lo < ratio <= hi:
            return index
    return -1


def touches_border(mask: np.ndarray) -> bool:
    """True when any hole pixel lies on the first or last row or column."""
    return bool(
        (mask[0] == 0).any()
        or (mask[-1] == 0).any()
        or (mask[:, 0] == 0).any()
        or (mask[:, -1] == 0).any()
    )
