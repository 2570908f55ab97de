"""``InpaintingDataModule``: images from folders or litdata shards, each with a mask."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset

from pconv_lightning.data.backends import BACKENDS
from pconv_lightning.data.masking import (
    FixedGeneratedMasks,
    ManifestMasks,
    MaskSource,
    TrainMasks,
)
from pconv_lightning.data.predict import PredictFolder
from pconv_lightning.data.samples import SampleBuilder
from pconv_lightning.data.transforms import eval_transform, train_transform
from pconv_lightning.errors import ConfigError
from pconv_lightning.masks import MaskGenerator, RandomShapesMaskGenerator

log = logging.getLogger(__name__)
RESUMED_WITHOUT_STATE = "You're resuming from a checkpoint that ended before the epoch ended"


class InpaintingDataModule(LightningDataModule):
    """Train/val/test images with masks, as dict batches.

    Batches: ``image`` float32 ``(B, 3, S, S)`` in [0, 1]; ``mask`` float32 ``(B, 1, S, S)``
    in {0, 1}, 1 = valid; ``path`` list of B str; val/test batches add ``bucket`` long
    ``(B,)`` (-1 = outside the paper's buckets) and ``touches_border`` bool ``(B,)``.
    Loaders also put ``skipped`` (paths of unreadable files met while building the batch) in
    each batch; :meth:`on_before_batch_transfer` removes it and adds it to
    :attr:`skipped_files`, which is how files skipped inside workers reach the main process.

    Args:
        train, val, test: sources: an image folder (``backend="folder"``) or a folder /
            object-store URL of litdata shards (``backend="litdata"``). None: no such split.
            ``train`` may list several folders (folder backend): one training set of them all.
        predict, predict_masks: ``pconv predict``'s image folder (whole images, one per batch)
            and mask folder (white = hole, matched by file stem).
        image_size: side of the square crops.
        mask_generator: training masks, a fresh one per (seed, epoch, index);
            None means ``RandomShapesMaskGenerator()``.
        eval_masks: folder with ``manifest.csv`` for val/test (image i gets mask i mod M).
        eval_masks_by_cell: take the ``eval_masks`` from the manifest's bucket x border cells
            in turn (sample i from cell i mod 12 where all 12 are present), so that a few
            validation images cover every hole size even when the manifest is sorted by hole
            ratio (as the odd NVIDIA half's is). False: manifest order.
        eval_mask_generator: val/test masks when ``eval_masks`` is None, fixed by
            ``eval_seed``; None means ``mask_generator``.
        backend: ``"folder"`` or ``"litdata"``.
        seed: seed of the training masks and of the folder backend's shuffling.
        max_train_samples, max_eval_samples: use at most this many images, evenly spread.
        eval_repeats: evaluate every val/test image with this many masks (sample k is image
            k mod N with eval mask k), e.g. to cover every hole-ratio bucket on a few images.
        cache_dir: where the folder backend caches file lists (default
            ``~/.cache/pconv_lightning``) and litdata caches downloaded chunks.
    """

    def __init__(
        self,
        train: str | list[str] | None = None,
        val: str | None = None,
        test: str | None = None,
        image_size: int = 256,
        batch_size: int = 6,
        num_workers: int = 4,
        mask_generator: MaskGenerator | None = None,
        eval_masks: str | None = None,
        eval_masks_by_cell: bool = False,
        eval_mask_generator: MaskGenerator | None = None,
        eval_seed: int = 0,
        backend: Literal["folder", "litdata"] = "folder",
        seed: int = 0,
        pin_memory: bool = True,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        eval_repeats: int = 1,
        cache_dir: str | None = None,
        predict: str | None = None,
        predict_masks: str | None = None,
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ConfigError(f"data.backend must be one of {sorted(BACKENDS)}, got {backend!r}")
        for name, value, least in (
            ("image_size", image_size, 1),
            ("batch_size", batch_size, 1),
            ("num_workers", num_workers, 0),
        ):
            if value < least:
                raise ConfigError(f"data.{name} must be >= {least}, got {value}")
        self.save_hyperparameters()
        self.mask_generator = mask_generator or RandomShapesMaskGenerator()
        self.eval_mask_generator = eval_mask_generator or self.mask_generator
        self.backend = BACKENDS[backend](seed=seed, cache_dir=cache_dir)
        self.datasets: dict[str, Dataset] = {}
        self.skipped_files: set[str] = set()
        # (epoch, its samples trained so far), saved in checkpoints: a run resumed mid-epoch
        # starts that epoch's order there instead of at its first batch again
        self.position: tuple[int, int] = (0, 0)

    def _eval_masks(self) -> MaskSource:
        if self.hparams.eval_masks is not None:
            return ManifestMasks(self.hparams.eval_masks, by_cell=self.hparams.eval_masks_by_cell)
        return FixedGeneratedMasks(self.eval_mask_generator, self.hparams.eval_seed)

    def _build(self, split: str, size: int | None = None) -> Dataset:
        """The dataset of ``split`` with crops of ``size`` (default ``image_size``)."""
        source = self.hparams[split]
        size = size or self.hparams.image_size
        if split == "train":
            build = SampleBuilder(
                train_transform(size), TrainMasks(self.mask_generator, self.hparams.seed), False
            )
            limit = self.hparams.max_train_samples
        else:
            build = SampleBuilder(eval_transform(size), self._eval_masks(), True)
            limit = self.hparams.max_eval_samples
        repeats = 1 if split == "train" else self.hparams.eval_repeats
        dataset = self.backend.dataset(source, build, split == "train", limit, repeats)
        if split == "train" and len(dataset) < self.hparams.batch_size:
            raise ValueError(
                f"train source {source} has {len(dataset)} images, fewer than batch_size="
                f"{self.hparams.batch_size} (the last partial training batch is dropped)"
            )
        return dataset

    def setup(self, stage: str) -> None:
        """Scan or open the sources the stage needs (``fit``: train and val; ``validate``,
        ``test``, ``predict``: their own, which must be given)."""
        if stage == "predict":
            if self.hparams.predict is None or self.hparams.predict_masks is None:
                raise ValueError(
                    "InpaintingDataModule: stage 'predict' needs --data.predict (image folder) "
                    "and --data.predict_masks (masks matched by file stem, white = hole)"
                )
            self.datasets["predict"] = PredictFolder(
                self.hparams.predict, self.hparams.predict_masks
            )
            return
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for split in splits.get(stage, ()):
            if split not in self.datasets and self.hparams[split] is not None:
                self.datasets[split] = self._build(split)
        needed = {"fit": "train", "validate": "val", "test": "test"}.get(stage)
        if needed is not None and needed not in self.datasets:
            raise ValueError(
                f"InpaintingDataModule: stage {stage!r} needs a `{needed}` source "
                f"(--data.{needed} FOLDER); it is not set"
            )

    def _loader(self, split: str, batch_size: int | None = None) -> DataLoader | list:
        if split not in self.datasets:
            if self.hparams[split] is None:
                return []
            raise RuntimeError(f"call setup() before requesting the {split} loader")
        return self.backend.loader(
            self.datasets[split],
            train=split == "train",
            batch_size=batch_size or self.hparams.batch_size,
            num_workers=self.hparams.num_workers,
            pin_memory=self.hparams.pin_memory and torch.cuda.is_available(),
            resume=self._resume() if split == "train" else (0, 0),
        )

    def _resume(self) -> tuple[int, int]:
        """:attr:`position` when the trainer resumes its epoch mid-way (said in the log; it
        replaces Lightning's warning about loaders without state), else ``(0, 0)``."""
        epoch, trained = self.position
        if self.trainer is None or epoch != self.trainer.current_epoch or not trained:
            return 0, 0
        rank_zero_info(f"Resuming epoch {epoch} of the training data at sample {trained:,}")
        warnings.filterwarnings("ignore", message=RESUMED_WITHOUT_STATE)
        return epoch, trained

    def train_dataloader(self) -> DataLoader | list:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        """Whole images of any size, one per batch."""
        return DataLoader(
            self.datasets["predict"], batch_size=1, num_workers=self.hparams.num_workers
        )

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count a training batch into :attr:`position` and move the batch's ``skipped``
        paths into :attr:`skipped_files`.

        They are also added to the main process's datasets, so workers started later (a new
        epoch without persistent workers) skip those files without decoding or reporting them
        again.
        """
        if self.trainer is not None and self.trainer.training and isinstance(batch, dict):
            epoch, trained = self.position
            if epoch != self.trainer.current_epoch:
                epoch, trained = self.trainer.current_epoch, 0
            # every rank's batch: the samples of the epoch's order trained, all ranks together
            self.position = (epoch, trained + len(batch["mask"]) * self.trainer.world_size)
        if isinstance(batch, dict) and "skipped" in batch:
            skipped = batch.pop("skipped")
            self.skipped_files.update(skipped)
            for dataset in self.datasets.values():
                dataset.skipped_files.update(skipped)
        return batch

    def teardown(self, stage: str) -> None:
        """Log how many unreadable files were skipped so far."""
        if self.skipped_files:
            log.warning(
                "%d unreadable image files were skipped: %s",
                len(self.skipped_files),
                ", ".join(sorted(self.skipped_files)[:10]),
            )

    def state_dict(self) -> dict[str, Any]:
        return {"skipped_files": sorted(self.skipped_files), "position": list(self.position)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped_files = set(state_dict["skipped_files"])
        # checkpoints written before the position was saved resume at the epoch's start
        self.position = tuple(state_dict.get("position", (0, 0)))
