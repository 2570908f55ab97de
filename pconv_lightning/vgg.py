"""Frozen VGG16 feature extractor for the perceptual and style losses (Liu et al. 2018, Sec. 3.4:
pool1, pool2 and pool3 of an ImageNet-pretrained VGG16)."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import VGG16_Weights
from torchvision.models.vgg import cfgs, make_layers

# Indices of pool1, pool2 and pool3 in torchvision's ``vgg16().features``.
POOL_INDICES = (4, 9, 16)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _load_state_dict(path: Path) -> dict[str, Tensor]:
    """A state dict from a local file: a full VGG16 or its ``features`` only."""
    if not path.is_file():
        raise FileNotFoundError(f"VGG16 weights file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a state dict (got {type(state).__name__})")
    return state


class VGG16Features(nn.Module):
    """VGG16 ``features`` up to pool3, frozen and always in eval mode.

    Args:
        weights: ``"imagenet"`` for torchvision's IMAGENET1K_V1 weights (downloaded and cached
            by torchvision on a connected machine), a path to a local VGG16 state dict (full
            model or ``features`` only), or ``None`` for random weights (tests only: warns).

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
            if weights == "imagenet":
                state = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
                source = "torchvision's VGG16_Weights.IMAGENET1K_V1"
            else:
                state, source = _load_state_dict(Path(weights)), str(weights)
            state = {k.removeprefix("features."): v for k, v in state.items()}
            state = {k: v for k, v in state.items() if k.split(".")[0].isdigit()}
            state = {k: v for k, v in state.items() if int(k.split(".")[0]) < len(features)}
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
