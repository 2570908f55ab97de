"""``pconv predict``'s output: one composite PNG per input image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch import Tensor

from pconv_lightning.callbacks.image_grid import to_uint8


class PredictionWriter(BasePredictionWriter):
    """Writes each predicted composite as ``<output_dir>/<stem>.png`` (the input's file stem),
    at the input's size. ``output_dir`` defaults to ``<default_root_dir>/predictions``."""

    def __init__(self, output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.written: list[Path] = []

    def folder(self, trainer: Trainer) -> Path:
        return Path(self.output_dir or Path(trainer.default_root_dir) / "predictions")

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Tensor,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        folder = self.folder(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        for picture, path in zip(prediction, batch["path"], strict=True):
            target = folder / f"{Path(path).stem}.png"
            Image.fromarray(to_uint8(picture)).save(target)
            self.written.append(target)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            print(f"wrote {len(self.written)} composite(s) to {self.folder(trainer)}")
