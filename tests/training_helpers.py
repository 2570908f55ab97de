"""Tiny-budget overrides shared by the training tests: every run uses the shipped samples."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
CONFIGS = REPO / "experiments" / "configs"


def tiny_args(root: Path, steps: int = 2, size: int = 64, layers: int = 6) -> list[str]:
    """Overrides that make any experiment a few CPU steps on the shipped photos."""
    return [
        f"--trainer.default_root_dir={root}",
        f"--trainer.max_steps={steps}",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.strategy=auto",
        "--trainer.limit_val_batches=1",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--data.train={SAMPLES / 'train'}",
        f"--data.val={SAMPLES / 'val'}",
        f"--data.eval_masks={SAMPLES / 'eval_masks'}",
        f"--data.image_size={size}",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--data.max_eval_samples=2",
        f"--model.net.init_args.layers={layers}",
    ]


def pytorch_default_init(net: nn.Module) -> nn.Module:
    """Re-initialise every convolution as PyTorch does by default (uniform weights and
    non-zero biases), instead of the project's He-normal with zero biases: a random network
    whose raw prediction is small and never exactly 0 where a valid pixel reaches."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()
    return net


class StartState(Callback):
    """Records what a run starts from (at ``on_train_start``): the network's tensors, the
    global step, the optimizer's state and learning rate, and the stage-2 flag."""

    last: StartState | None = None  # the newest instance, for tests that build it by class path

    def __init__(self) -> None:
        StartState.last = self
        self.net: dict[str, torch.Tensor] = {}
        self.step = self.optimizer_state = self.lr = self.frozen_bn = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.net = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}
        self.step = trainer.global_step
        optimizer = trainer.optimizers[0]
        self.optimizer_state = len(optimizer.state)
        self.lr = optimizer.param_groups[0]["lr"]
        self.frozen_bn = pl_module.net.freeze_encoder_bn
