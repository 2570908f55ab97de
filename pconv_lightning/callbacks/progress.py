"""Progress bars that read the logged metrics only at logging steps, and that do not print
``Epoch 49/-2`` when only ``max_steps`` bounds the run.

Reading a logged tensor for display is a host sync: Lightning's bars do it after every
training batch, which keeps a GPU from running ahead of the CPU. These bars count every batch
but refresh the metrics they show every ``trainer.log_every_n_steps`` steps (and outside
training, as Lightning's bars do).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar


class MetricsAtLoggingSteps:
    """Mixin for a Lightning progress bar: ``get_metrics`` reads the metrics at logging steps
    and otherwise shows the last values read."""

    _shown: dict[str, Any] | None = None

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        stale = trainer.training and trainer.global_step % trainer.log_every_n_steps != 0
        if self._shown is None or not stale:
            self._shown = super().get_metrics(trainer, pl_module)
        return self._shown


class EpochProgressBar(MetricsAtLoggingSteps, RichProgressBar):
    """Lightning's rich bar, with ``Epoch N`` alone (no ``/max``) when ``max_epochs`` is -1 or
    None, and ``Epoch N/M`` (M = last epoch) otherwise."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch}"
        max_epochs = self.trainer.max_epochs
        if max_epochs is not None and max_epochs >= 1:
            description += f"/{max_epochs - 1}"
        width = len(self.validation_description)
        return f"{description:{width}}" if width > len(description) else description


class StepProgressBar(MetricsAtLoggingSteps, TQDMProgressBar):
    """Lightning's tqdm bar (where ``rich`` is not installed)."""
