"""Stage 2 for the last fifth of a time-limited run, whatever the step rate turns out to be.

A time-budgeted GPU run is bounded by ``trainer.max_time``, while ``stage2.at_step``
is a step count estimated from the throughput table before the run. This callback moves the
run's :class:`~pconv_lightning.callbacks.Stage2Finetune` switch to the current step once
``fraction`` of ``max_time`` has passed (Lightning's ``Timer``), unless ``at_step`` came first;
so stage 2 starts at 4/5 of the time or of max_steps, whichever is earlier. scripts/gpu puts
this folder on PYTHONPATH and passes ``--trainer.callbacks+=timed_stage2.Stage2AtTimeFraction``.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_info

from pconv_lightning.callbacks import Stage2Finetune


class Stage2AtTimeFraction(Callback):
    """Brings the run's ``Stage2Finetune.at_step`` forward to now at ``fraction`` of
    ``max_time``; does nothing without a ``Timer`` (no max_time) or a ``Stage2Finetune``."""

    def __init__(self, fraction: float = 0.8) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        stage2 = next((c for c in trainer.callbacks if isinstance(c, Stage2Finetune)), None)
        if timer is None or stage2 is None or stage2.active:
            return
        elapsed, remaining = timer.time_elapsed(), timer.time_remaining()
        if remaining is None or elapsed < self.fraction * (elapsed + remaining):
            return
        step = trainer.global_step
        if stage2.at_step is None or stage2.at_step > step:
            rank_zero_info(
                f"stage 2 at step {step}: {self.fraction:.0%} of max_time "
                f"({elapsed + remaining:.0f} s) passed before stage2.at_step={stage2.at_step}"
            )
            stage2.at_step = step
