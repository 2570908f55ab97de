"""A progress bar that does not print ``Epoch 49/-2`` when only ``max_steps`` bounds the run."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class EpochProgressBar(RichProgressBar):
    """Lightning's rich bar, with ``Epoch N`` alone (no ``/max``) when ``max_epochs`` is -1 or
    None, and ``Epoch N/M`` (M = last epoch) otherwise."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch}"
        max_epochs = self.trainer.max_epochs
        if max_epochs is not None and max_epochs >= 1:
            description += f"/{max_epochs - 1}"
        width = len(self.validation_description)
        return f"{description:{width}}" if width > len(description) else description
