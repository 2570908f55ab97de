"""What a training run has spent, across every resume: images seen at each crop size and wall
time. A budget ("250,000 images, 25,000 of them at 256x256") is checked against these."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


class TrainingBudget(Callback):
    """Counts training images per crop side (all ranks) and training wall time, keeps both in
    checkpoints, and logs ``train/images_seen``, ``train/images_seen_<side>`` (``_128``, ...)
    and ``train/wall_hours``."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.seconds = 0.0  # wall time of earlier segments of the run (before the last resume)
        self._since: float | None = None

    @property
    def images(self) -> int:
        """Images seen at every size together."""
        return sum(self.counts.values())

    @property
    def wall_seconds(self) -> float:
        """Training wall time of the whole run so far."""
        running = 0.0 if self._since is None else time.monotonic() - self._since
        return self.seconds + running

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._since = time.monotonic()

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.seconds, self._since = self.wall_seconds, None

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        image = batch["image"]
        self.counts[int(image.shape[-1])] += int(image.shape[0]) * trainer.world_size
        logged = {f"train/images_seen_{side}": float(n) for side, n in self.counts.items()}
        logged["train/images_seen"] = float(self.images)
        logged["train/wall_hours"] = self.wall_seconds / 3600
        pl_module.log_dict(logged, on_step=True, on_epoch=False, batch_size=image.shape[0])

    def state_dict(self) -> dict[str, Any]:
        return {
            "counts": {str(side): n for side, n in self.counts.items()},
            "wall_seconds": self.wall_seconds,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.counts = Counter({int(side): int(n) for side, n in state_dict["counts"].items()})
        self.seconds = float(state_dict["wall_seconds"])
