"""Frozen VGG16 feature extractor for the perceptual and style losses (Liu et al. 2018, Sec. 3.4:
pool1, pool2 and pool3 of an ImageNet-pretrained VGG16)."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.vgg import cfgs, make_layers

from pconv_lightning.vgg.resolve import vgg16_state_dict

# Indices of pool1, pool2 and pool3 in torchvision's ``vgg16().features``.
POOL_INDICES = (4, 9, 16)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """VGG16 ``features`` up to pool3, frozen and always in eval mode.

    Args:
        weights: ``"imagenet"`` for torchvision's IMAGENET1K_V1 weights, found offline as
            :mod:`pconv_lightning.vgg.resolve` describes (``pconv weights vgg16`` derives
            them), a path to a local VGG16 state dict (full model or ``features`` only), or
            ``None`` for random weights (structure tests and timing only: warns).

    Shape:
        - Input: (N, 3, H, W) in [0, 1]; ImageNet mean/std normalisation is applied inside.
        - Output: list of the pool1, pool2, pool3 maps: (N, 64, H/2, W/2), (N, 128, H/4, W/4),
          (N, 256, H/8, W/8).
    """

    def __init__(self, weights: str | Path | None = "imagenet") -> None:
        super().__init__()
        # Only the layers up to pool3 are built: the classifier's 120M parameters never are.
        features = make_layers(cfgs["D"][:10])  # conv1_1 .. pool3
        if weights is None:
            warnings.warn(
                "VGG16Features(weights=None) uses random weights: perceptual and style losses "
                "are meaningless for training (use 'imagenet' or a local .pth)",
                stacklevel=2,
            )
        else:
            state, source = vgg16_state_dict(weights, len(features))
            try:
                features.load_state_dict(state)
            except RuntimeError as err:
                raise ValueError(f"{source} is not a VGG16 state dict: {err}") from err
        bounds = (0, *(i + 1 for i in POOL_INDICES))
        self.slices = nn.ModuleList(features[a:b] for a, b in itertools.pairwise(bounds))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        """Stays in eval mode whatever the parent does."""
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        feats = []
        for block in self.slices:
            x = block(x)
            feats.append(x)
        return feats
