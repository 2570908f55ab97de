"""Which image goes with which mask: a deterministic pairing that fills every bucket x border
cell of the paper's protocol.

Masks are resized to the evaluation size S by nearest neighbour and their cell (hole-ratio
bucket, holes touching the border or not) is measured again on those pixels, so a cell always
describes the mask as evaluated; masks that leave the (0.01, 0.6] range at S are dropped.

Pairing: images sorted by path, masks of each cell sorted by path; the k-th pair of a cell
(k = 0 .. per_cell - 1) is image ``k mod I`` with that cell's mask ``k mod M_cell``. With
``per_cell`` a multiple of the image count I, every cell sees every image equally often, so the
buckets differ only by their masks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pconv_lightning.data.filelist import scan_images, spread
from pconv_lightning.data.images import load_rgb
from pconv_lightning.data.transforms import eval_transform, fit_mask
from pconv_lightning.masks.buckets import BUCKET_NAMES
from pconv_lightning.masks.io import load_mask
from pconv_lightning.masks.manifest import EvalMask, describe_mask

CELLS: tuple[tuple[int, bool], ...] = tuple(
    (bucket, border) for bucket in range(len(BUCKET_NAMES)) for border in (False, True)
)


@dataclass(frozen=True)
class Pair:
    """One evaluation sample: an image, a mask and the mask's cell measured at the eval size."""

    index: int
    image: Path
    mask: Path
    hole_ratio: float
    bucket: int
    touches_border: bool


def list_images(root: str | Path, limit: int | None = None) -> list[Path]:
    """Sorted image files under ``root``; with ``limit``, that many spread evenly over them."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--images {root} is not a directory")
    files = [root / p for p in scan_images(root)]
    if not files:
        raise FileNotFoundError(f"--images {root} holds no JPEG/PNG/WebP files")
    if limit is not None and limit < len(files):
        files = [files[i] for i in spread(len(files), limit)]
    return files


def remeasure(rows: list[EvalMask], size: int) -> list[EvalMask]:
    """The manifest rows with ratio, bucket and border measured on the mask resized to ``size``;
    masks outside the buckets at that size are dropped with a warning."""
    kept, dropped = [], []
    for row in rows:
        ratio, bucket, border = describe_mask(fit_mask(load_mask(row.path), size, size))
        if bucket < 0:
            dropped.append(row.path.name)
        else:
            kept.append(EvalMask(row.path, ratio, bucket, border))
    if dropped:
        warnings.warn(
            f"{len(dropped)} mask(s) leave the (0.01, 0.6] hole range at {size}x{size} and are "
            f"not used: {', '.join(dropped[:5])}{' ...' if len(dropped) > 5 else ''}",
            stacklevel=2,
        )
    return kept


def make_pairs(images: list[Path], masks: list[EvalMask], per_cell: int) -> list[Pair]:
    """``per_cell`` pairs for every cell that has masks, cell by cell (bucket, then inner
    before border); see the module docstring for the rule."""
    if per_cell < 1:
        raise ValueError(f"--per-cell must be >= 1, got {per_cell}")
    pairs: list[Pair] = []
    for bucket, border in CELLS:
        cell = sorted(
            (m for m in masks if (m.bucket, m.touches_border) == (bucket, border)),
            key=lambda m: str(m.path),
        )
        for k in range(per_cell if cell else 0):
            mask = cell[k % len(cell)]
            pairs.append(
                Pair(
                    len(pairs), images[k % len(images)], mask.path, mask.hole_ratio, bucket, border
                )
            )
    if not pairs:
        raise ValueError("no evaluation masks in any bucket: check --masks")
    return pairs


def missing_cells(pairs: list[Pair]) -> list[str]:
    """Names of the cells without any pair, e.g. ``(0.5,0.6] border``."""
    seen = {(p.bucket, p.touches_border) for p in pairs}
    return [
        f"{BUCKET_NAMES[b]} {'border' if t else 'inner'}" for b, t in CELLS if (b, t) not in seen
    ]


class PairDataset(Dataset):
    """Items ``(image, mask, index)`` for a list of pairs.

    Shape:
        - image: ``(3, S, S)`` float32 in [0, 1], multiples of 1/255 (8-bit source pixels)
        - mask: ``(1, S, S)`` float32, 1 = valid, 0 = hole
    """

    def __init__(self, pairs: list[Pair], size: int) -> None:
        self.pairs = pairs
        self.size = size
        self.transform = eval_transform(size)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        pair = self.pairs[index]
        image = self.transform(load_rgb(pair.image))
        mask = fit_mask(load_mask(pair.mask), self.size, self.size)
        return image, torch.from_numpy(mask.astype(np.float32))[None], index


def pairs_description(count: int, images: int, per_cell: int) -> str:
    """One sentence for the report saying how the pairs were formed."""
    return (
        f"{count} pairs, {per_cell} per bucket x border cell; the k-th pair of a cell is image "
        f"k mod {images} (sorted by path) with the cell's mask k mod M (sorted by path)"
    )
