"""Loading a trained network without unpickling code: Lightning checkpoints through
``torch.load(weights_only=True)``, or plain safetensors files.

The architecture is read from the weights themselves (the number of encoder stages, the
image channels, and a ``hole_fill`` buffer for the plain-convolution :class:`ConvUNet`), so any
checkpoint of either network loads without its config.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from pconv_lightning.errors import ConfigError, InputError, MissingInputError
from pconv_lightning.models import ConvUNet, PConvUNet

_ENCODER_STAGE = re.compile(r"^encoder\.(\d+)\.conv\.weight$")


class UnsafeCheckpointError(ValueError):
    """The checkpoint needs pickle (arbitrary code) to load, so it is refused."""


def network_state_dict(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Tensor]:
    """The network's weights from a Lightning ``.ckpt``, a ``.pt``/``.pth`` state dict or a
    ``.safetensors`` file, with any ``net.`` prefix removed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            state = load_file(path, device=str(map_location))
        else:
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"refusing {path}: it needs pickle to load (torch.load(weights_only=True) failed: "
            f"{str(err).splitlines()[0]}). Export its weights with safetensors, or load it "
            "yourself only if you trust its source."
        ) from err
    except Exception as err:  # truncated or corrupt: torch and safetensors raise many types
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise InputError(
            f"cannot read checkpoint {path} ({reason}); expected a complete .ckpt, .pth or "
            ".safetensors file (is it truncated?)"
        ) from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path} holds no state dict")
    if any(k.startswith("net.") for k in state):
        state = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    return state


def _describe(state: dict[str, Tensor]) -> str:
    """A PConvUNet's architecture as read from its weights (``layers=7, in/out channels 3/3``)."""
    stages = [int(m.group(1)) for k in state if (m := _ENCODER_STAGE.match(k))]
    if not stages:
        return f"not a PConvUNet ({len(state)} tensors, no encoder.N.conv.weight)"
    layers = max(stages) + 1
    last = state.get(f"decoder.{layers - 1}.conv.weight")
    out = "?" if last is None else last.shape[0]
    kind = "ConvUNet " if "hole_fill" in state else ""
    channels = f"in/out channels {state['encoder.0.conv.weight'].shape[1]}/{out}"
    return f"{kind}layers={layers}, {channels}"


def load_init_weights(net: torch.nn.Module, path: str | Path) -> None:
    """Copy the network weights of ``path`` into ``net`` (cast to its dtype), nothing else.

    ``path``: a Lightning ``.ckpt``, a ``.pth`` state dict, a ``.safetensors`` network (fp16
    too) or a folder of fp16 pieces (``pieces.json``, :mod:`pconv_lightning.checkpoints.pieces`).
    Raises :class:`~pconv_lightning.errors.ConfigError` naming both architectures when the
    file's tensors do not match ``net`` exactly (names and shapes).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise MissingInputError(
            f"--model.init_weights {path} does not exist (expected a .ckpt, .safetensors or "
            ".pth file, or a folder of fp16 pieces with pieces.json)"
        )
    if path.is_dir():
        from pconv_lightning.checkpoints.pieces import merge_pieces

        state = merge_pieces(path)[0]
    else:
        state = network_state_dict(path)
    own = net.state_dict()
    bad_shapes = [k for k in state.keys() & own.keys() if state[k].shape != own[k].shape]
    if state.keys() != own.keys() or bad_shapes:
        differ = sorted(state.keys() ^ own.keys()) + sorted(bad_shapes)
        raise ConfigError(
            f"--model.init_weights {path} holds another architecture ({_describe(state)}) than "
            f"the config's net ({_describe(own)}): {len(differ)} tensors differ, e.g. "
            f"{', '.join(differ[:3])}"
        )
    net.load_state_dict(state)


def network_from_state_dict(state: dict[str, Tensor]) -> PConvUNet:
    """A :class:`PConvUNet` (a :class:`ConvUNet` where ``state`` has ``hole_fill``) built to the
    shapes in ``state``, with those weights loaded."""
    stages = sorted(int(m.group(1)) for k in state if (m := _ENCODER_STAGE.match(k)))
    if not stages:
        raise ValueError("not a PConvUNet state dict: no encoder.N.conv.weight entries")
    layers = stages[-1] + 1
    shapes = {
        "layers": layers,
        "in_channels": state["encoder.0.conv.weight"].shape[1],
        "out_channels": state[f"decoder.{layers - 1}.conv.weight"].shape[0],
    }
    if "hole_fill" in state:
        net = ConvUNet(**shapes, fill=state["hole_fill"].float().flatten().tolist())
    else:
        net = PConvUNet(**shapes)
    net.load_state_dict(state)
    return net


def load_network(path: str | Path, map_location: str | torch.device = "cpu") -> PConvUNet:
    """The trained network of a checkpoint, in eval mode. Refuses files that need pickle."""
    return network_from_state_dict(network_state_dict(path, map_location)).eval()


def save_network(net: PConvUNet, path: str | Path) -> None:
    """Write the network's weights as safetensors (no code, loads anywhere)."""
    save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, str(path))
