"""Progressive resizing: train on small crops first and on larger ones later.

Most of a CPU budget goes further at 128x128 (four times the images per second of 256x256);
the last part at the evaluation size teaches the network the larger holes, in pixels, that it
will meet there. The size changes at an epoch boundary: Lightning rebuilds the training loader
at every epoch start when ``trainer.reload_dataloaders_every_n_epochs`` is 1, and each rebuild
asks the trainer's global step which phase it is in (so a resumed run picks the right one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader

from pconv_lightning.data.datamodule import InpaintingDataModule
from pconv_lightning.errors import ConfigError


@dataclass(frozen=True)
class SizePhase:
    """From global step ``at_step`` on (at the next epoch start), train on ``image_size``
    crops in batches of ``batch_size``."""

    at_step: int
    image_size: int
    batch_size: int


class ProgressiveInpaintingDataModule(InpaintingDataModule):
    """:class:`InpaintingDataModule` whose training crops grow by phases.

    Training starts with ``image_size`` and ``batch_size``; each of ``phases`` takes over at the
    first epoch that starts at or after its ``at_step``. Validation and test keep
    ``image_size``. Needs ``trainer.reload_dataloaders_every_n_epochs: 1``.

    Args:
        phases: the later phases, in increasing ``at_step``.
        **kwargs: :class:`InpaintingDataModule`'s arguments.
    """

    def __init__(self, phases: list[SizePhase], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        steps = [phase.at_step for phase in phases]
        if not phases or steps != sorted(set(steps)) or steps[0] < 1:
            raise ConfigError(
                f"data.phases must be a non-empty list with at_step strictly increasing from "
                f">= 1, got at_step values {steps}"
            )
        for phase in phases:
            if phase.image_size < 1 or phase.batch_size < 1:
                raise ConfigError(f"data.phases: image_size and batch_size must be >= 1: {phase}")
        self.phases = phases
        self._train_size: int | None = None

    def phase(self, global_step: int) -> SizePhase:
        """The phase in force at ``global_step`` (the first is ``image_size``/``batch_size``)."""
        current = SizePhase(0, self.hparams.image_size, self.hparams.batch_size)
        for phase in self.phases:
            if global_step >= phase.at_step:
                current = phase
        return current

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.trainer is not None:
            every = self.trainer.reload_dataloaders_every_n_epochs
            if every != 1:
                raise ConfigError(
                    "data.phases change the crop size between epochs: set "
                    f"trainer.reload_dataloaders_every_n_epochs: 1 (it is {every})"
                )
        super().setup(stage)
        if "train" in self.datasets and self._train_size is None:
            self._train_size = self.hparams.image_size

    def train_dataloader(self) -> DataLoader | list:
        if self.hparams.train is None:
            return []
        step = self.trainer.global_step if self.trainer is not None else 0
        phase = self.phase(step)
        if phase.image_size != self._train_size:
            self.datasets["train"] = self._build("train", phase.image_size)
            self.datasets["train"].skipped_files.update(self.skipped_files)
            self._train_size = phase.image_size
        return self._loader("train", phase.batch_size)
