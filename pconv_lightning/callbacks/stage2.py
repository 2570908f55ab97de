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
    ``requires_grad`` changes mid-run that would upset DDP). The learning rate is set once, at
    the switch: ``lr`` on every parameter group and as every scheduler's base and last lr, so a
    scheduler (StepLR, cosine, ...) then decays it from ``lr``. The stage is saved in
    checkpoints: a run resumed in stage 2 freezes the statistics again but keeps the optimizer's
    and scheduler's restored lr (the scheduler may have decayed it since the switch).
    ``at_step=0`` starts a separate fine-tuning run from a stage-1 checkpoint straight in stage
    2. With neither ``at_step`` nor ``at_epoch`` the run stays in its current stage.
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

    def switch(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Enter stage 2: freeze the encoder statistics and set the learning rate (once)."""
        pl_module.net.freeze_encoder_bn = True
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = self.lr
                if "initial_lr" in group:
                    group["initial_lr"] = self.lr
        for config in trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            scheduler.base_lrs = [self.lr] * len(scheduler.base_lrs)
            scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
        self.active = True

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.active:  # resumed in stage 2: the restored lr stands
            pl_module.net.freeze_encoder_bn = True
        elif self._due(trainer):  # e.g. at_step=0 from a stage-1 checkpoint
            self.switch(trainer, pl_module)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self.active and self._due(trainer):
            self.switch(trainer, pl_module)
        pl_module.log("train/stage", 2.0 if self.active else 1.0, on_step=True, on_epoch=False)

    def state_dict(self) -> dict[str, Any]:
        return {"active": self.active}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.active = bool(state_dict["active"])
