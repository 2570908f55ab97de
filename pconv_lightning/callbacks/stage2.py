"""The paper's fine-tuning stage (Liu et al. 2018, Sec. 4.2): after the initial stage, freeze
the encoder's BatchNorm statistics (hole pixels no longer pollute them) and continue with a
learning rate of 5e-5."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


class Stage2Finetune(Callback):
    """Switches to stage 2 at ``at_step`` (global step) or ``at_epoch``, whichever comes first.

    Stage 2 puts every encoder BatchNorm in eval mode through the network's
    ``freeze_encoder_bn`` flag (so ``.train()`` after validation keeps them frozen, and no
    ``requires_grad`` changes mid-run that would upset DDP) and sets ``lr`` on every parameter
    group and every scheduler's base learning rates. The stage is saved in checkpoints, so a
    resumed run stays in stage 2; ``at_step=0`` starts a separate fine-tuning run from a
    stage-1 checkpoint straight in stage 2. With neither ``at_step`` nor ``at_epoch`` the run
    stays in its current stage.
    """

    def __init__(self, at_step: int | None = None, at_epoch: int | None = None, lr: float = 5e-5):
        self.at_step = at_step
        self.at_epoch = at_epoch
        self.lr = lr
        self.active = False

    def _due(self, trainer: Trainer) -> bool:
        by_step = self.at_step is not None and trainer.global_step >= self.at_step
        by_epoch = self.at_epoch is not None and trainer.current_epoch >= self.at_epoch
        return by_step or by_epoch

    def apply(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Enter stage 2 (idempotent)."""
        pl_module.net.freeze_encoder_bn = True
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.lr
                if "initial_lr" in group:
                    group["initial_lr"] = self.lr
        for config in trainer.lr_scheduler_configs:
            config.scheduler.base_lrs = [self.lr] * len(config.scheduler.base_lrs)
        self.active = True

    def _maybe_switch(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.active or self._due(trainer):
            self.apply(trainer, pl_module)
        pl_module.log("train/stage", 2.0 if self.active else 1.0, on_step=True, on_epoch=False)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.active or self._due(trainer):  # resumed in stage 2, or due right away
            self.apply(trainer, pl_module)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._maybe_switch(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"active": self.active}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.active = bool(state_dict["active"])
