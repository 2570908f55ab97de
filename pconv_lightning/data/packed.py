"""Training from a photo pack held on the accelerator, augmented there with kornia.

The GPU never waits for JPEG decoding: the pack (see :mod:`.pack`) is decoded once into a
uint8 tensor and moved to the training device on the first batch. DataLoader workers only
draw masks (the CPU-heavy part: file masks are dilated, rotated and cropped); a batch carries
photo indices and uint8 masks, and :meth:`PackedInpaintingDataModule.on_after_batch_transfer`
gathers the photos on the device and applies a random resized crop and a horizontal flip
(``kornia.augmentation``, other parameters per sample). Validation and test read folders as
in :class:`InpaintingDataModule`.

Shape:
    - Train batch from the loader: ``index`` long ``(B,)``, ``mask`` uint8 ``(B, 1, S, S)``.
    - After transfer: ``image`` float32 ``(B, 3, S, S)`` in [0, 1], ``mask`` float32
      ``(B, 1, S, S)`` in {0, 1}, 1 = valid.
"""

from __future__ import annotations

from typing import Any

import kornia.augmentation as K
import torch
from torch.utils.data import Dataset

from pconv_lightning.data.datamodule import InpaintingDataModule
from pconv_lightning.data.filelist import spread
from pconv_lightning.data.masking import MaskSource, TrainMasks
from pconv_lightning.data.pack import load_images


class PackMaskDataset(Dataset):
    """Sample ``(epoch, k)``: photo ``k mod N`` of the pack (by number) and mask ``k``.

    With ``repeats`` R, an epoch has R x N samples: every photo R times, each time with its
    own mask.
    """

    def __init__(
        self, names: list[str], masks: MaskSource, image_size: int, repeats: int = 1
    ) -> None:
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.names = names
        self.masks = masks
        self.image_size = image_size
        self.repeats = repeats
        self.skipped_files: set[str] = set()  # nothing is decoded here, nothing is skipped

    def __len__(self) -> int:
        return len(self.names) * self.repeats

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, sample = key if isinstance(key, tuple) else (0, key)
        index = sample % len(self.names)
        draw = self.masks(sample, epoch, self.image_size, self.image_size)
        mask = torch.from_numpy(draw.mask).unsqueeze(0)
        return {"index": index, "mask": mask, "path": self.names[index], "skipped": []}


class PackedInpaintingDataModule(InpaintingDataModule):
    """:class:`InpaintingDataModule` whose ``train`` is a photo pack decoded onto the device.

    Chosen by class path in a config (``data: {class_path:
    pconv_lightning.data.packed.PackedInpaintingDataModule, init_args: {train: X.pack}}``).

    Args:
        crop_scale, crop_ratio: area fraction and aspect ratio ranges of kornia's
            ``RandomResizedCrop``, whose output is ``image_size`` square.
        flip: also flip horizontally with probability 0.5.
        repeats: passes over the pack per epoch (each with other masks and crops). A pack
            of a few thousand photos makes epochs of seconds on a GPU; each epoch's end
            drains the loader's workers and the next epoch waits for their first batch
            (``benchmarks/epoch_boundary.py``), so long runs take long epochs.
        **kwargs: :class:`InpaintingDataModule`'s arguments; ``train`` is a pack file (or an
            image folder, centre-cropped to ``image_size`` and decoded at setup),
            ``max_train_samples`` keeps that many photos spread over it.
    """

    def __init__(
        self,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        repeats: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(
                f"crop_scale must be (lo, hi) with 0 < lo <= hi <= 1, got {crop_scale}"
            )
        size = self.hparams.image_size
        crop = K.RandomResizedCrop((size, size), scale=tuple(crop_scale), ratio=tuple(crop_ratio))
        self.augment = K.AugmentationSequential(crop, K.RandomHorizontalFlip(p=0.5 if flip else 0))
        self.pack: torch.Tensor | None = None  # uint8 (N, 3, P, P), on the device after batch 1

    def _build(self, split: str) -> Dataset:
        if split != "train":
            return super()._build(split)
        names, self.pack = load_images(self.hparams.train, self.hparams.image_size)
        limit = self.hparams.max_train_samples
        if limit is not None and limit < len(names):
            keep = torch.from_numpy(spread(len(names), limit))
            names, self.pack = [names[i] for i in keep], self.pack[keep]
        if len(names) < self.hparams.batch_size:
            raise ValueError(
                f"photo pack {self.hparams.train} has {len(names)} images, fewer than "
                f"batch_size={self.hparams.batch_size}"
            )
        masks = TrainMasks(self.mask_generator, self.hparams.seed)
        return PackMaskDataset(names, masks, self.hparams.image_size, self.hparams.repeats)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches: gather the photos on the batch's device and augment them there."""
        if not isinstance(batch, dict) or "index" not in batch:
            return batch
        if self.pack is None:
            raise RuntimeError("call setup('fit') before transferring training batches")
        device = batch["mask"].device
        if self.pack.device != device:
            self.pack = self.pack.to(device)
        images = self.pack[batch["index"].to(device)].float().div_(255)
        batch["image"] = self.augment(images).clamp_(0, 1).contiguous()
        batch["mask"] = batch["mask"].float()
        return batch
