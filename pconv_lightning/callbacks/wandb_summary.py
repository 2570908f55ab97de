"""W&B summarises each checkpoint-monitored metric the way its ModelCheckpoint ranks it.

By default a W&B run's summary holds the *last* logged value of a metric, while the best
checkpoint is chosen by the *maximum* of ``val/psnr``. This callback declares, for every
``ModelCheckpoint`` with a ``monitor``, ``define_metric(monitor, summary=mode)`` ("max" or
"min"), so the run summary, the W&B run table and a sweep over ``val/psnr`` report the number
the best checkpoint was chosen by.
"""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import WandbLogger


class CheckpointMetricSummary(Callback):
    """On setup, for every W&B logger: ``define_metric(cb.monitor, summary=cb.mode)`` for each
    monitoring :class:`~lightning.pytorch.callbacks.ModelCheckpoint` ``cb`` (offline runs too).

    The metric keeps Lightning's x-axis (``trainer/global_step``). Other ranks than 0 get
    Lightning's dummy experiment, where the call does nothing.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        monitored = {cb.monitor: cb.mode for cb in trainer.checkpoint_callbacks if cb.monitor}
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for name, mode in monitored.items():
                    logger.experiment.define_metric(
                        name, step_metric="trainer/global_step", summary=mode
                    )
