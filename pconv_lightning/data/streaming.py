"""The litdata backend's dataset: encoded images streamed from optimized shards.

Shards come from :func:`pconv_lightning.data.shards.write_shards` (records ``image``: the
encoded bytes, ``path``: the source file relative to the sharded folder). ``input_dir`` is a
local folder or an object-store URL (``s3://``, ``gs://``, ...; litdata downloads chunks into
its cache). litdata splits chunks across DDP ranks and workers, shuffles per epoch when asked,
and its :class:`litdata.StreamingDataLoader` can save and restore a mid-epoch position.
"""

from __future__ import annotations

from typing import Any

from litdata import StreamingDataset
from litdata.streaming.sampler import ChunkedIndex

from pconv_lightning.data.images import MAX_PIXELS, UnreadableImageError, load_rgb
from pconv_lightning.data.samples import BadFileLog, SampleBuilder


class StreamingImageDataset(StreamingDataset):
    """A :class:`litdata.StreamingDataset` of shard records turned into inpainting items.

    The mask of a record depends on its global index and litdata's ``current_epoch``. A record
    that fails to decode is logged once and replaced by the next record.
    """

    def __init__(
        self,
        input_dir: str,
        build: SampleBuilder,
        shuffle: bool,
        seed: int,
        cache_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_dir, cache_dir=cache_dir, shuffle=shuffle, seed=seed, **kwargs)
        self.build = build
        self.bad = BadFileLog()

    @property
    def skipped_files(self) -> set[str]:
        """Unreadable records met by this process (workers report theirs through the batches)."""
        return self.bad.skipped_files

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, ChunkedIndex | int):
            return super().__getitem__(index)
        position = index.index if isinstance(index, ChunkedIndex) else index
        record = super().__getitem__(index)
        skipped: list[str] = []
        for offset in range(1, len(self) + 1):
            try:
                image = load_rgb(record["image"], name=record["path"], max_pixels=MAX_PIXELS)
                return self.build(image, record["path"], position, self.current_epoch, skipped)
            except UnreadableImageError as err:
                self.bad.record(record["path"], err)
                skipped.append(record["path"])
                record = super().__getitem__((position + offset) % len(self))
        raise RuntimeError(
            f"no readable record in the shards at {self.input_dir.url or self.input_dir.path}"
        )
