"""Tiny-budget overrides shared by the training tests: every run uses the shipped samples."""

from __future__ import annotations

from pathlib import Path

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
