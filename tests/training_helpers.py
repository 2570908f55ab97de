"""Tiny-budget overrides shared by the training tests: every run uses the shipped samples."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
CONFIGS = REPO / "experiments" / "configs"
# reference_cpu.yaml's training masks: the folder scripts/reference_cpu.sh makes in the user cache
USER_MASKS = ".cache/pconv_lightning/masks/nvidia_train_even"


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


def record_restored_state(monkeypatch) -> dict[str, Any]:
    """Copies, when training starts (after Lightning restored any checkpoint), the module's
    state dict and the state dicts of its optimizer and learning-rate scheduler."""
    from pconv_lightning.module import InpaintingModule

    seen: dict[str, Any] = {}

    def on_train_start(self) -> None:
        seen["state_dict"] = copy.deepcopy(self.state_dict())
        seen["optimizer"] = copy.deepcopy(self.trainer.optimizers[0].state_dict())
        seen["lr_schedulers"] = [
            copy.deepcopy(c.scheduler.state_dict()) for c in self.trainer.lr_scheduler_configs
        ]

    monkeypatch.setattr(InpaintingModule, "on_train_start", on_train_start)
    return seen


def assert_restored(seen: dict[str, Any], checkpoint: dict[str, Any]) -> None:
    """The network, optimizer and scheduler state ``seen`` at the start of a resumed run are
    the checkpoint's, tensor for tensor."""
    assert seen, "training never started"
    assert seen["state_dict"].keys() == checkpoint["state_dict"].keys()
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(seen["state_dict"][key], value), key
    (saved,) = checkpoint["optimizer_states"]
    assert saved["state"], "the checkpoint holds no optimizer moments"
    assert seen["optimizer"]["state"].keys() == saved["state"].keys()
    for index, moments in saved["state"].items():
        assert seen["optimizer"]["state"][index].keys() == moments.keys()
        for name, value in moments.items():
            assert torch.equal(seen["optimizer"]["state"][index][name], value), (index, name)
    assert seen["optimizer"]["param_groups"] == saved["param_groups"]
    assert seen["lr_schedulers"] == checkpoint.get("lr_schedulers", [])


def user_cache_masks(monkeypatch, home: Path) -> Path:
    """Make reference_cpu.yaml's user-cache mask folder from the shipped masks, under a temporary
    ``home`` (the VGG16 weights stay where they are)."""
    from pconv_lightning.vgg.derive import weights_dir

    monkeypatch.setenv("PCONV_WEIGHTS_DIR", str(weights_dir()))
    monkeypatch.setenv("HOME", str(home))
    return Path(shutil.copytree(SAMPLES / "eval_masks", home / USER_MASKS))
