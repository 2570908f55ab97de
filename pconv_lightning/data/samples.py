"""Building batch items, keeping track of unreadable files, and collating.

An item is a dict: ``image`` float32 ``(3, S, S)`` in [0, 1], ``mask`` float32 ``(1, S, S)``
in {0, 1} (1 = valid), ``path`` str, ``skipped`` (paths found unreadable while producing
this item) and, for evaluation, ``bucket`` int (-1 = unknown) and ``touches_border`` bool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from PIL import Image
from torch.utils.data import default_collate

from pconv_lightning.data.masking import MaskSource

log = logging.getLogger(__name__)

Item = dict[str, Any]


class SampleBuilder:
    """Applies the image transform and attaches the mask of (index, epoch)."""

    def __init__(
        self, transform: Callable[[Image.Image], torch.Tensor], masks: MaskSource, evaluation: bool
    ) -> None:
        self.transform = transform
        self.masks = masks
        self.evaluation = evaluation

    def __call__(
        self, image: Image.Image, path: str, index: int, epoch: int, skipped: list[str]
    ) -> Item:
        """The item for ``image``; the mask depends only on ``(index, epoch)``."""
        tensor = self.transform(image)
        draw = self.masks(index, epoch, tensor.shape[-2], tensor.shape[-1])
        item: Item = {
            "image": tensor,
            "mask": torch.from_numpy(draw.mask).to(torch.float32).unsqueeze(0),
            "path": path,
            "skipped": skipped,
        }
        if self.evaluation:
            item["bucket"] = draw.bucket
            item["touches_border"] = draw.touches_border
        return item


class BadFileLog:
    """The unreadable files seen by this process; each is reported once, when first seen."""

    def __init__(self) -> None:
        self.skipped_files: set[str] = set()

    def __contains__(self, path: str) -> bool:
        return path in self.skipped_files

    def record(self, path: str, error: Exception) -> None:
        """Remember ``path`` and log a warning naming it (once per path)."""
        if path not in self.skipped_files:
            self.skipped_files.add(path)
            log.warning("skipping unreadable image %s (replaced by the next one): %s", path, error)


def collate(items: list[Item]) -> Item:
    """Stack items into a batch; ``skipped`` becomes one flat list of paths.

    Shape:
        - image: ``(B, 3, S, S)``; mask: ``(B, 1, S, S)``; bucket: ``(B,)`` long;
          touches_border: ``(B,)`` bool; path: list of B str.
    """
    skipped = [path for item in items for path in item.pop("skipped")]
    batch = default_collate(items)
    batch["skipped"] = skipped
    return batch
