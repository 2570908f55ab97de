"""Logs a grid of validation results with a labelled header row: masked input | mask |
raw output | composite | ground truth. Holes are white in the input and mask columns, as masks
are on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import make_grid

from pconv_lightning.losses import composite

COLUMNS = ("input", "mask", "output", "composite", "truth")
CAPTION = (
    "masked input (white = hole) | mask (white = hole) | raw output | composite | ground truth"
)
HEADER = 14  # pixels of the label row
PADDING = 2


def result_grid(image: Tensor, mask: Tensor, output: Tensor, max_images: int = 4) -> Tensor:
    """One row per image: masked input (holes white), mask (white = hole), raw output,
    composite, ground truth.

    Shape:
        - image, output: (N, 3, H, W) in [0, 1]; mask: (N, 1, H, W), 1 = valid
        - Output: (3, rows * (H + 2) + 2, 5 * (W + 2) + 2) float in [0, 1]
    """
    image, mask, output = (t[:max_images].detach().float().cpu() for t in (image, mask, output))
    output = output.clamp(0, 1)
    hole = (1 - mask).expand_as(image)
    columns = [image * mask + hole, hole, output, composite(output, image, mask), image]
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: image 0's five, then image 1's
    return make_grid(tiles, nrow=len(columns), padding=PADDING, pad_value=1.0)


def to_uint8(grid: Tensor) -> np.ndarray:
    """A [0, 1] image as ``torchvision.utils.save_image`` rounds it.

    Shape: (3, H, W) float -> (H, W, 3) uint8.
    """
    scaled = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0)
    return scaled.to("cpu", torch.uint8).numpy()


def labelled(picture: np.ndarray, labels: tuple[str, ...] = COLUMNS) -> np.ndarray:
    """``picture`` (a :func:`result_grid` of ``len(labels)`` columns, as uint8) under a white
    header row with each column's label centred over it.

    Shape: (H, W, 3) uint8 -> (H + 14, W, 3) uint8.
    """
    width = picture.shape[1]
    header = Image.new("RGB", (width, HEADER), "white")
    draw = ImageDraw.Draw(header)
    font = ImageFont.load_default()
    step = (width - PADDING) / len(labels)
    for index, label in enumerate(labels):
        centre = PADDING + step * (index + 0.5)
        draw.text((centre, HEADER / 2), label, fill="black", font=font, anchor="mm")
    return np.concatenate([np.asarray(header), picture], axis=0)


class ImageGridLogger(Callback):
    """From each validation it saves the labelled grid of ``samples`` (indices into the
    validation set, fixed masks, so the same pairs every time; default: the first
    ``max_images``; the first pairs instead when the set is too short for every index),
    gathered over as many batches as they span, as
    ``<default_root_dir>/samples/step_XXXXXXX.png`` (global step) and ``samples/latest.png``,
    and logs the same uint8 picture to W&B or TensorBoard, whichever loggers are configured.

    It reuses the validation step's output: no extra forward pass and no train/eval switch
    (that would undo a frozen encoder BatchNorm).
    """

    def __init__(
        self, max_images: int = 4, key: str = "val/samples", samples: list[int] | None = None
    ) -> None:
        self.max_images = max_images
        self.key = key
        self.samples = list(samples) if samples else list(range(max_images))
        self._rows: dict[int, tuple[Tensor, ...]] = {}
        self._seen, self._saved = 0, False

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._rows, self._seen, self._saved = {}, 0, False

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx != 0 or trainer.sanity_checking or self._saved:
            return
        first, self._seen = self._seen, self._seen + len(batch["image"])
        row = (batch["image"], batch["mask"], outputs)
        for index in range(first, self._seen):
            if index in self.samples or index < len(self.samples):  # chosen, or a fallback
                self._rows[index] = tuple(t[index - first : index - first + 1] for t in row)
        if all(index in self._rows for index in self.samples):
            self._save(trainer, self.samples)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._rows and not self._saved:  # a validation set too short for every index
            self._save(trainer, sorted(self._rows)[: len(self.samples)])

    def _save(self, trainer: Trainer, indices: list[int]) -> None:
        image, mask, output = (torch.cat([self._rows[i][k] for i in indices]) for k in range(3))
        self._saved = True
        grid = result_grid(image, mask, output, len(image))
        picture = labelled(to_uint8(grid))
        step = trainer.global_step
        if trainer.is_global_zero:
            folder = Path(trainer.default_root_dir) / "samples"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(picture).save(folder / f"step_{step:07d}.png")
            Image.fromarray(picture).save(folder / "latest.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(self.key, [picture], step=step, caption=[CAPTION])
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(self.key, picture, step, dataformats="HWC")
