"""Per-image quality scores of a composited image, with torchmetrics.

- ``psnr``: torchmetrics PSNR, data range 1, per image.
- ``ssim``: torchmetrics SSIM, Gaussian window 11, sigma 1.5, per image (numbers differ from
  other SSIM implementations, e.g. scikit-image's uniform 7x7 default).
- ``l1``: mean absolute error over all pixels and channels, in percent of the range (the
  paper's "L1 (%)"); ``l1_hole``: the same over hole pixels only.
- ``lpips``: LPIPS-VGG (:class:`~pconv_lightning.vgg.lpips.LPIPSVGG`) with the ImageNet VGG16
  found offline (:func:`lpips_or_reason` says why it is skipped when the weights are missing).
- ``fid`` (torchmetrics, needs the torch-fidelity package and its Inception weights) per method
  over the whole run, only when both are present; nothing is downloaded for it:
  :func:`fid_unavailable` says why it is skipped.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from pconv_lightning.vgg.lpips import LPIPSVGG

METRICS = ("psnr", "ssim", "l1", "l1_hole")
FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"  # torch-fidelity's Inception v3


def image_scores(comp: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """PSNR, SSIM, L1 and hole L1 of every image of a batch.

    Shape:
        - comp, target: ``(N, 3, H, W)`` in [0, 1]; mask: ``(N, 1, H, W)``, 1 = valid
        - Output: each value ``(N,)``, float64 on the CPU
    """
    comp, target = comp.float(), target.float()
    diff = (comp - target).abs()
    hole = (mask < 0.5).expand_as(diff).float()
    scores = {
        "psnr": peak_signal_noise_ratio(
            comp, target, data_range=1.0, reduction="none", dim=(1, 2, 3)
        ),
        "ssim": structural_similarity_index_measure(
            comp, target, data_range=1.0, kernel_size=11, sigma=1.5, reduction="none"
        ),
        "l1": 100 * diff.mean((1, 2, 3)),
        "l1_hole": 100 * (diff * hole).sum((1, 2, 3)) / hole.sum((1, 2, 3)).clamp_min(1),
    }
    return {k: v.reshape(-1).double().cpu() for k, v in scores.items()}


def _hub_file(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def lpips_or_reason(device: str | torch.device) -> tuple[LPIPSVGG | None, str | None]:
    """LPIPS-VGG on ``device``, or None and why it is skipped (its VGG16 weights are missing)."""
    try:
        return LPIPSVGG().to(device), None
    except FileNotFoundError as err:
        return None, f"LPIPS skipped: {err}"


def fid_unavailable() -> str | None:
    """Why FID cannot run offline, or None when torch-fidelity and its weights are present."""
    if importlib.util.find_spec("torch_fidelity") is None:
        return "FID skipped: the torch-fidelity package is not installed"
    path = _hub_file(FID_WEIGHTS)
    if not path.is_file():
        return f"FID skipped: torch-fidelity's Inception weights are not in {path.parent}"
    return None


class FID:
    """FID of one method's composites against the ground truth over the whole run; build only
    when :func:`fid_unavailable` returns None."""

    def __init__(self, device: str | torch.device) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.metric = FrechetInceptionDistance(feature=2048, normalize=True).to(device)

    def update(self, comp: Tensor, target: Tensor) -> None:
        """Shape: comp, target ``(N, 3, H, W)`` in [0, 1]."""
        self.metric.update(target.float(), real=True)
        self.metric.update(comp.float(), real=False)

    def compute(self) -> float:
        return float(self.metric.compute())
