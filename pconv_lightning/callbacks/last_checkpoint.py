"""``last.ckpt``: one file, always the newest state of the run."""

from __future__ import annotations

from datetime import timedelta

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException


class LastCheckpoint(ModelCheckpoint):
    """Writes only ``<dirpath>/last.ckpt``, overwritten in place: every ``every_n_train_steps``
    steps (or ``train_time_interval``), after each validation during ``fit`` and when training
    ends, so it always holds the run's newest step. Any other ``ModelCheckpoint`` of the run
    (best by a metric) keeps ``save_last`` off, so no ``last-v1.ckpt`` appears. A run stopped
    by SIGTERM (Lightning stops it at the end of a batch) saves too, so a stopped run loses
    no steps.
    """

    def __init__(
        self,
        dirpath: str | None = None,
        every_n_train_steps: int | None = 500,
        train_time_interval: timedelta | None = None,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            save_last=True,
            save_top_k=0,
            every_n_train_steps=None if train_time_interval else every_n_train_steps,
            train_time_interval=train_time_interval,
            enable_version_counter=False,
        )

    def _save_newest(self, trainer: Trainer) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._save_newest(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._save_newest(trainer)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException) and trainer.training:
            self._save_newest(trainer)
