"""The folder backend's map-style dataset and its epoch-aware sampler."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler

from pconv_lightning.data.filelist import FileList
from pconv_lightning.data.images import MAX_PIXELS, UnreadableImageError, load_rgb
from pconv_lightning.data.samples import BadFileLog, Item, SampleBuilder
from pconv_lightning.errors import NoReadableImagesError

Key = int | tuple[int, int]


class ImageFolderDataset(Dataset[Item]):
    """Images of a :class:`FileList` with their masks.

    A key is an index or an ``(epoch, index)`` pair (what :class:`EpochSampler` yields); the
    mask is a function of both. An unreadable file is logged once and replaced by the next
    readable file in the list, while the mask stays the one of the requested index.
    With ``repeats`` > 1 every image appears that many times, each time with another mask:
    sample k is image ``k mod N`` with mask k (evaluation over many masks per image).
    """

    def __init__(self, files: FileList, build: SampleBuilder, repeats: int = 1) -> None:
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.files = files
        self.build = build
        self.repeats = repeats
        self.bad = BadFileLog()

    @property
    def skipped_files(self) -> set[str]:
        """Unreadable files met by this process (workers report theirs through the batches)."""
        return self.bad.skipped_files

    def __len__(self) -> int:
        return len(self.files) * self.repeats

    def __getitem__(self, key: Key) -> Item:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        skipped: list[str] = []
        for offset in range(len(self.files)):
            path = self.files[(index + offset) % len(self.files)]
            if path in self.bad:
                continue
            try:
                image = load_rgb(path, max_pixels=MAX_PIXELS)
            except UnreadableImageError as err:
                self.bad.record(path, err)
                skipped.append(path)
                continue
            return self.build(image, path, index, epoch, skipped)
        raise NoReadableImagesError(
            f"no readable image left under {self.files.label}: all files failed"
        )


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)`` keys, shuffled per ``(seed, epoch)`` when ``shuffle``.

    Lightning calls :meth:`set_epoch` at every epoch start (also through its DDP wrapper),
    which is how the epoch reaches the dataset in every worker. A run resumed mid-epoch
    starts that epoch's order where it stopped (:meth:`resume_at`).
    """

    def __init__(self, length: int, shuffle: bool, seed: int) -> None:
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.resume: tuple[int, int] = (0, 0)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and masks the next iteration yields."""
        self.epoch = epoch

    def resume_at(self, epoch: int, start: int) -> None:
        """Iterations of ``epoch`` begin at key ``start`` of its order (the keys before it were
        trained before the run stopped) and bring those at the end: the length stays the
        whole epoch's, Lightning counts the resumed epoch's batches from where it stopped and
        ends it before the moved keys, and Lightning's DDP wrapper, which indexes a list of
        the whole length, shards the rest of the order among the ranks."""
        self.resume = (epoch, start)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = torch.randperm(
                self.length, generator=torch.Generator().manual_seed(self.seed + self.epoch)
            )
        else:
            order = torch.arange(self.length)
        start = self.resume[1] if self.resume[0] == self.epoch else 0
        order = torch.cat([order[start:], order[:start]])
        return ((self.epoch, index) for index in order.tolist())
