"""The folder backend's map-style dataset and its epoch-aware sampler."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

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


class EpochSampler(DistributedSampler):
    """Yields this rank's ``(epoch, index)`` keys of an order shuffled per ``(seed, epoch)``.

    Lightning calls :meth:`set_epoch` at every epoch start, which is how the epoch reaches the
    dataset in every worker. The sampler shares the order among the ranks itself (rank ``r`` of
    ``R`` takes keys ``r, r + R, ...``, padded to equal shares as ``DistributedSampler`` does):
    Lightning leaves a ``DistributedSampler`` as it is, where it would wrap any other sampler in
    one that shuffles its keys again. So the keys every rank trained are always the first ones
    of the order, and a run resumed mid-epoch (:meth:`resume_at`) can start after them, with
    the same number of ranks or another. ``num_replicas`` and ``rank``: the process group's
    (one rank without one) unless given.
    """

    def __init__(
        self,
        length: int,
        shuffle: bool,
        seed: int,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        grouped = dist.is_available() and dist.is_initialized()
        super().__init__(
            range(length),
            num_replicas=num_replicas or (dist.get_world_size() if grouped else 1),
            rank=rank if rank is not None else (dist.get_rank() if grouped else 0),
            shuffle=shuffle,
            seed=seed,
        )
        self.length = length
        self.resume: tuple[int, int] = (0, 0)

    def resume_at(self, epoch: int, start: int) -> None:
        """Iterations of ``epoch`` begin at key ``start`` of its order (the keys of all ranks
        trained before the run stopped) and bring those at the end: each rank's share keeps the
        whole epoch's length, and Lightning, which counts the resumed epoch's batches from where
        it stopped, ends the epoch before the moved keys."""
        self.resume = (epoch, start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.length, generator=generator).tolist()
        else:
            order = list(range(self.length))
        start = self.resume[1] if self.resume[0] == self.epoch else 0
        order = order[start:] + order[:start]
        order = (order * math.ceil(self.total_size / max(1, self.length)))[: self.total_size]
        share = order[self.rank : self.total_size : self.num_replicas]
        return ((self.epoch, index) for index in share)
