"""LPIPS with the VGG16 backbone (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", eq. 1), offline.

    d(x, x0) = sum_l 1/(H_l W_l) sum_{h,w} || w_l ⊙ (ŷ_l - ŷ0_l)_{hw} ||_2^2

ŷ_l are the relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 maps of VGG16 (ImageNet weights,
resolved like the loss's: :mod:`pconv_lightning.vgg.resolve`), each unit-normalised over
channels; w_l are the learned linear heads "v0.1" that torchmetrics ships inside its wheel
(``torchmetrics/functional/image/lpips_models/vgg.pth``, the LPIPS project's file). Inputs are
mapped from [0, 1] to [-1, 1] and scaled as the LPIPS project does.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lightning.vgg.resolve import vgg16_state_dict

# Indices in ``vgg16().features`` of the convolutions of each block; a block ends at its ReLU.
BLOCKS = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10  # the LPIPS project's normalize_tensor


def heads_file() -> Path:
    """The linear heads' state dict inside the installed torchmetrics."""
    return Path(str(files("torchmetrics.functional.image") / "lpips_models" / "vgg.pth"))


class LPIPSVGG(nn.Module):
    """Per-image LPIPS-VGG distance; frozen, with every weight a non-persistent buffer (nothing
    added to checkpoints, moved by ``.to()``).

    Args:
        backbone: ``"imagenet"`` or a local VGG16 state dict, as for
            :class:`~pconv_lightning.vgg.features.VGG16Features`.
        heads: the linear heads' file (default: torchmetrics' copy).

    Shape:
        - x, y: (N, 3, H, W) in [0, 1], H and W at least 16
        - Output: (N,), float32
    """

    def __init__(self, backbone: str | Path = "imagenet", heads: Path | None = None) -> None:
        super().__init__()
        state, source = vgg16_state_dict(backbone, 30)
        head_path = heads or heads_file()
        lins = torch.load(head_path, map_location="cpu", weights_only=True)
        for index in (i for block in BLOCKS for i in block):
            for kind in ("weight", "bias"):
                if f"{index}.{kind}" not in state:
                    raise ValueError(f"{source} has no key {index}.{kind} (VGG16 features)")
                value = state[f"{index}.{kind}"]
                if value.dim() == 4:  # the convolutions run channels-last (see features)
                    value = value.contiguous(memory_format=torch.channels_last)
                self.register_buffer(f"{kind}_{index}", value, persistent=False)
        for k in range(len(BLOCKS)):
            if f"lin{k}.model.1.weight" not in lins:
                raise ValueError(f"{head_path} has no key lin{k}.model.1.weight (LPIPS heads)")
            self.register_buffer(f"lin_{k}", lins[f"lin{k}.model.1.weight"], persistent=False)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def features(self, x: Tensor) -> list[Tensor]:
        """The five ReLU maps of ``x`` (N, 3, H, W) in [0, 1], each divided by its per-pixel
        channel norm; fp32 whatever autocast says, channels-last (faster on CPUs, same values
        to 1e-7)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            h = ((2 * x.float() - 1 - self.shift) / self.scale).contiguous(
                memory_format=torch.channels_last
            )
            feats = []
            for b, block in enumerate(BLOCKS):
                if b:
                    h = F.max_pool2d(h, kernel_size=2, stride=2)
                for index in block:
                    weight = getattr(self, f"weight_{index}")
                    h = F.relu(F.conv2d(h, weight, getattr(self, f"bias_{index}"), padding=1))
                feats.append(h / (h.square().sum(1, keepdim=True).sqrt() + EPS))
        return feats

    @torch.no_grad()
    def distance(self, x: Tensor, target_features: list[Tensor]) -> Tensor:
        """LPIPS of ``x`` to images whose :meth:`features` are given: score several images
        against one target at the cost of one backbone pass each.

        Shape:
            - x: (N, 3, H, W) in [0, 1]; target_features: :meth:`features` of (N, 3, H, W)
            - Output: (N,), float32
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            return sum(
                F.conv2d((f - t).square(), getattr(self, f"lin_{k}")).mean((1, 2, 3))
                for k, (f, t) in enumerate(zip(self.features(x), target_features, strict=True))
            )

    @torch.no_grad()
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.distance(x, self.features(y))
