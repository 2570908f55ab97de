"""Where each sample's mask comes from: a generator stream or a fixed evaluation set.

Shape:
    - :class:`MaskDraw` ``.mask``: uint8 ``(height, width)`` in {0, 1}, 1 = valid, 0 = hole.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pconv_lightning.data.transforms import fit_mask
from pconv_lightning.errors import MissingInputError
from pconv_lightning.masks import EvalMask, MaskGenerator, mask_rng, read_manifest
from pconv_lightning.masks.buckets import hole_ratio, ratio_bucket, touches_border
from pconv_lightning.masks.io import load_mask


@dataclass(frozen=True)
class MaskDraw:
    """One mask with its evaluation bucket (-1 when outside every bucket) and border flag."""

    mask: np.ndarray
    bucket: int
    touches_border: bool

    @classmethod
    def measure(cls, mask: np.ndarray) -> MaskDraw:
        """Wrap ``mask`` with bucket and border computed from its pixels."""
        return cls(mask, ratio_bucket(hole_ratio(mask)), touches_border(mask))


class MaskSource(ABC):
    """Gives the mask of sample ``index`` in ``epoch`` as a pure function of its arguments."""

    @abstractmethod
    def __call__(self, index: int, epoch: int, height: int, width: int) -> MaskDraw:
        """The mask for sample ``index`` of ``epoch``, fitted to ``(height, width)``."""


class TrainMasks(MaskSource):
    """A fresh mask per (seed, epoch, index): reproducible, yet different every epoch."""

    def __init__(self, generator: MaskGenerator, seed: int) -> None:
        self.generator = generator
        self.seed = seed

    def __call__(self, index: int, epoch: int, height: int, width: int) -> MaskDraw:
        rng = np.random.default_rng([self.seed, epoch, index])
        return MaskDraw.measure(fit_mask(self.generator(height, width, rng), height, width))


class FixedGeneratedMasks(MaskSource):
    """The same mask for sample ``index`` in every epoch: ``generator`` with ``mask_rng(seed, index)``."""

    def __init__(self, generator: MaskGenerator, seed: int) -> None:
        self.generator = generator
        self.seed = seed

    def __call__(self, index: int, epoch: int, height: int, width: int) -> MaskDraw:
        mask = self.generator(height, width, mask_rng(self.seed, index))
        return MaskDraw.measure(fit_mask(mask, height, width))


class ManifestMasks(MaskSource):
    """Sample ``index`` gets mask ``index mod M`` of a folder indexed by ``manifest.csv``.

    Bucket and border come from the manifest (they describe the mask at its stored size).
    Files follow the disk convention (white = hole unless ``hole_value=0``); masks of another
    size are resized by nearest neighbour, grey values thresholded. With ``by_cell`` the
    masks are taken from the manifest's hole-ratio bucket x border cells in turn (see
    :func:`interleave_cells`), so that the first N samples span every cell even where the
    manifest is sorted by hole ratio.
    """

    def __init__(self, folder: str | Path, hole_value: int = 255, by_cell: bool = False) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise MissingInputError(f"evaluation mask folder {self.folder} does not exist")
        self.entries = read_manifest(self.folder)
        if not self.entries:
            raise ValueError(f"evaluation mask manifest in {self.folder} lists no masks")
        if by_cell:
            self.entries = interleave_cells(self.entries)
        self.hole_value = hole_value

    def __call__(self, index: int, epoch: int, height: int, width: int) -> MaskDraw:
        entry = self.entries[index % len(self.entries)]
        mask = fit_mask(load_mask(entry.path, hole_value=self.hole_value), height, width)
        return MaskDraw(mask, entry.bucket, entry.touches_border)


def interleave_cells(entries: list[EvalMask]) -> list[EvalMask]:
    """``entries`` reordered to visit the (bucket, touches_border) cells in turn.

    Cells in sorted order, each keeping its manifest order: entry k is the (k // C)-th mask of
    cell k mod C while every one of the C cells still has masks; a cell that runs out is left
    out of the later rounds. Every entry is kept once.
    """
    cells: dict[tuple[int, bool], list[EvalMask]] = {}
    for entry in entries:
        cells.setdefault((entry.bucket, entry.touches_border), []).append(entry)
    queues = [cells[key] for key in sorted(cells)]
    return [
        queue[depth]
        for depth in range(max(map(len, queues)))
        for queue in queues
        if depth < len(queue)
    ]
