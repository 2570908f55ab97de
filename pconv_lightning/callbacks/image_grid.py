"""Logs a grid of validation results: masked input | mask | raw output | composite | ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import Tensor
from torchvision.utils import make_grid, save_image

from pconv_lightning.losses import composite


def result_grid(image: Tensor, mask: Tensor, output: Tensor, max_images: int = 4) -> Tensor:
    """One row per image: masked input, mask, raw output, composite, ground truth.

    Shape:
        - image, output: (N, 3, H, W) in [0, 1]; mask: (N, 1, H, W), 1 = valid
        - Output: (3, rows * (H + 2) + 2, 5 * (W + 2) + 2) float in [0, 1]
    """
    image, mask, output = (t[:max_images].detach().float().cpu() for t in (image, mask, output))
    output = output.clamp(0, 1)
    columns = [image * mask, mask.expand_as(image), output, composite(output, image, mask), image]
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: image 0's five, then image 1's
    return make_grid(tiles, nrow=len(columns), padding=2, pad_value=1.0)


class ImageGridLogger(Callback):
    """From the first validation batch (fixed masks, so the same batch every epoch) it logs the
    grid to W&B or TensorBoard, whichever loggers are configured, and saves it as
    ``<default_root_dir>/samples/epoch_XXX.png`` and ``samples/latest.png``.

    It reuses the validation step's output: no extra forward pass and no train/eval switch
    (that would undo a frozen encoder BatchNorm).
    """

    def __init__(self, max_images: int = 4, key: str = "val/samples") -> None:
        self.max_images = max_images
        self.key = key

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx != 0 or dataloader_idx != 0 or trainer.sanity_checking:
            return
        grid = result_grid(batch["image"], batch["mask"], outputs, self.max_images)
        if trainer.is_global_zero:
            folder = Path(trainer.default_root_dir) / "samples"
            folder.mkdir(parents=True, exist_ok=True)
            save_image(grid, folder / f"epoch_{trainer.current_epoch:03d}.png")
            save_image(grid, folder / "latest.png")
        caption = "masked input | mask | raw output | composite | ground truth"
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(self.key, [grid], step=trainer.global_step, caption=[caption])
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(self.key, grid, trainer.global_step)
