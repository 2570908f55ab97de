"""Storage backends: how a source string becomes a dataset and a DataLoader.

The DataModule picks one by name through :data:`BACKENDS`; each class owns one storage kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from pconv_lightning.data.datasets import EpochSampler, ImageFolderDataset
from pconv_lightning.data.filelist import FileList, load_file_list, spread
from pconv_lightning.data.object_store import check_shards_url
from pconv_lightning.data.samples import SampleBuilder, collate
from pconv_lightning.errors import ConfigError, MissingInputError


class StorageBackend(ABC):
    """Builds datasets and loaders for one storage kind."""

    def __init__(self, seed: int, cache_dir: str | None) -> None:
        self.seed = seed
        self.cache_dir = cache_dir

    @abstractmethod
    def dataset(
        self,
        source: str | list[str],
        build: SampleBuilder,
        train: bool,
        limit: int | None,
        repeats: int = 1,
    ) -> Dataset:
        """The dataset of ``source`` (each image ``repeats`` times with other masks); raises
        naming ``source`` when it is missing or empty. A list of sources is one dataset."""

    @abstractmethod
    def loader(
        self,
        dataset: Dataset,
        train: bool,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        resume: tuple[int, int] = (0, 0),
    ) -> DataLoader:
        """A loader over ``dataset``: shuffled, dropping the last partial batch when ``train``;
        ``resume`` = (epoch, samples of it already trained) for a run resumed mid-epoch."""


class FolderBackend(StorageBackend):
    """Image files in folder trees, listed once and cached (see :mod:`.filelist`); several
    folders are joined in the order given."""

    def dataset(
        self,
        source: str | list[str],
        build: SampleBuilder,
        train: bool,
        limit: int | None,
        repeats: int = 1,
    ) -> Dataset:
        roots = [source] if isinstance(source, str) else source
        lists = [load_file_list(root, cache_dir=self.cache_dir) for root in roots]
        files = FileList.concat(lists).limit(limit)
        return ImageFolderDataset(files, build, repeats)

    def loader(
        self,
        dataset: Dataset,
        train: bool,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        resume: tuple[int, int] = (0, 0),
    ) -> DataLoader:
        sampler = EpochSampler(len(dataset), shuffle=train, seed=self.seed)
        sampler.resume_at(*resume)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            collate_fn=collate,
            pin_memory=pin_memory,
            drop_last=train,
            persistent_workers=num_workers > 0,
        )


class LitdataBackend(StorageBackend):
    """litdata shards in a local folder or at an object-store URL (see :mod:`.streaming`).

    Remote chunks are cached in ``cache_dir`` (litdata's default cache when None). litdata is
    imported only here, so the other backends run where it (or boto3) is not installed.
    """

    def dataset(
        self,
        source: str | list[str],
        build: SampleBuilder,
        train: bool,
        limit: int | None,
        repeats: int = 1,
    ) -> Dataset:
        from pconv_lightning.data.streaming import StreamingImageDataset

        if not isinstance(source, str):
            raise ConfigError(
                f"a list of sources ({', '.join(source)}) needs the folder backend; write one "
                "set of litdata shards from all of them (pconv shards)"
            )
        if repeats != 1:
            raise ValueError(
                f"eval_repeats={repeats} needs the folder backend; litdata shards stream each "
                "image once (write the evaluation images to a folder)"
            )
        if "://" not in source and not (Path(source) / "index.json").is_file():
            raise MissingInputError(f"no litdata shards (index.json) in {source}")
        check_shards_url(source)
        dataset = StreamingImageDataset(
            source, build, shuffle=train, seed=self.seed, cache_dir=self.cache_dir
        )
        if len(dataset) == 0:
            raise ValueError(f"the litdata shards in {source} hold no images")
        if limit is not None and limit < len(dataset):
            dataset = dataset.subset(spread(len(dataset), limit).tolist())
        return dataset

    def loader(
        self,
        dataset: Dataset,
        train: bool,
        batch_size: int,
        num_workers: int,
        pin_memory: bool,
        resume: tuple[int, int] = (0, 0),
    ) -> DataLoader:
        """``resume`` is not needed: a StreamingDataLoader has a ``state_dict``, which
        Lightning saves in checkpoints and restores itself."""
        from litdata import StreamingDataLoader

        return StreamingDataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=collate,
            pin_memory=pin_memory,
            drop_last=train,
        )


BACKENDS: dict[str, type[StorageBackend]] = {"folder": FolderBackend, "litdata": LitdataBackend}
