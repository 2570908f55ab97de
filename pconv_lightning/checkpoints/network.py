"""Loading a trained network without unpickling code: Lightning checkpoints through
``torch.load(weights_only=True)``, or plain safetensors files.

:func:`read_weights_file` is the one reader of a weights file for every command (``inpaint``,
``app``, ``export``, ``evaluate``, and ``fit``/``validate``/``test``/``predict`` with
``--ckpt_path`` or ``--model.init_weights``): it tells the file's kind from its first bytes
(a zip archive written by ``torch.save``, a safetensors file, an old-style ``torch.save``
pickle, a plain pickle, or none of these) and raises one :class:`~pconv_lightning.errors.
InputError` naming the file and why: missing, empty, not a checkpoint (saying what it is
not), truncated or corrupt, or refused because loading it would run pickled code. Torch's own
advice to load such a file with ``weights_only=False`` is never repeated, and its warnings
about old pickles are not shown.

The architecture is read from the weights themselves (the number of encoder stages, the
image channels, and a ``hole_fill`` buffer for the plain-convolution :class:`ConvUNet`), so any
checkpoint of either network loads without its config.
"""

from __future__ import annotations

import pickle
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from pconv_lightning.errors import ConfigError, InputError, MissingInputError
from pconv_lightning.models import ConvUNet, PConvUNet

_ENCODER_STAGE = re.compile(r"^encoder\.(\d+)\.conv\.weight$")


class UnsafeCheckpointError(InputError):
    """The checkpoint needs pickle (arbitrary code) to load, so it is refused."""


ZIP_MAGIC = b"PK\x03\x04"  # torch.save since 1.6: a zip archive
# torch.save before 1.6 (_use_new_zipfile_serialization=False): a pickle of this magic number
LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
EXPECTED = "expected a Lightning .ckpt or a .pth of tensors (torch.save), or a .safetensors file"


def weights_kind(path: Path) -> str:
    """What a weights file is, from its first bytes: ``zip`` (``torch.save``), ``safetensors``,
    ``legacy`` (``torch.save`` before 1.6), ``pickle`` (any other pickle), ``empty`` or
    ``unknown``."""
    with open(path, "rb") as f:
        head = f.read(16)
    size = path.stat().st_size
    if not head:
        return "empty"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(LEGACY_MAGIC):
        return "legacy"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < size:
        return "safetensors"
    if head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO opcode and a protocol number
        return "pickle"
    return "unknown"


def _refused(what: str, path: Path, err: pickle.UnpicklingError) -> UnsafeCheckpointError:
    """The refusal of a file whose loading needs pickle: names the Python object it holds
    (from torch's message), not torch's advice to load it anyway."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    holds = f"it holds a {found.group(1)} object" if found else "it holds Python objects"
    return UnsafeCheckpointError(
        f"refusing {what} {path}: it needs pickle to load ({holds}, not only tensors), and "
        "unpickling can run any code; pconv loads weights without pickle: save the network's "
        "state dict of tensors, or a .safetensors file"
    )


def read_weights_file(
    path: str | Path,
    what: str = "checkpoint",
    map_location: str | torch.device = "cpu",
    mmap: bool = False,
) -> Any:
    """The contents of a weights file, read without running pickled code.

    Args:
        path: a ``torch.save`` file (zip or old-style) or a ``.safetensors`` file.
        what: how messages name the file (``checkpoint``, ``--ckpt_path``, ...).
        mmap: map a zip file's tensors instead of reading them (old-style files are read).

    Raises:
        MissingInputError: no such file.
        UnsafeCheckpointError: loading it needs pickle (a Python object other than tensors
            and plain data, or a plain pickle).
        InputError: empty, not a weights file (saying what it is not), truncated or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{what} {path} does not exist")
    if not path.is_file():
        raise InputError(f"{what} {path} is a folder, not a checkpoint file; {EXPECTED}")
    kind = weights_kind(path)
    if kind == "empty":
        raise InputError(f"{what} {path} is empty (0 bytes), not a checkpoint; {EXPECTED}")
    if kind == "unknown":
        raise InputError(
            f"{what} {path} is not a checkpoint: neither a zip archive written by torch.save, "
            f"nor an old-style torch.save file, nor a safetensors file; {EXPECTED}"
        )
    if kind == "pickle":
        raise UnsafeCheckpointError(
            f"refusing {what} {path}: it is a plain Python pickle, not a torch.save or "
            "safetensors file; it needs pickle to load, and unpickling can run any code; "
            f"{EXPECTED}"
        )
    try:
        if kind == "safetensors":
            return load_file(path, device=str(map_location))
        with warnings.catch_warnings():  # torch's notes on old pickle protocols
            warnings.simplefilter("ignore")
            return torch.load(
                path, map_location=map_location, weights_only=True, mmap=mmap and kind == "zip"
            )
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):
            raise _refused(what, path, err) from err
        raise _unreadable(what, path, kind) from err
    except Exception as err:  # truncated or corrupt: torch and safetensors raise many types
        raise _unreadable(what, path, kind) from err


def _unreadable(what: str, path: Path, kind: str) -> InputError:
    described = {
        "zip": "a zip archive (torch.save) that is incomplete or corrupt",
        "legacy": "an old-style torch.save file that is incomplete or corrupt",
        "safetensors": "a safetensors file that is incomplete or corrupt",
    }[kind]
    return InputError(f"cannot read {what} {path}: {described} (is it truncated?); {EXPECTED}")


def network_state_dict(
    path: str | Path, map_location: str | torch.device = "cpu", what: str = "checkpoint"
) -> dict[str, Tensor]:
    """The network's weights from a Lightning ``.ckpt``, a ``.pt``/``.pth`` state dict or a
    ``.safetensors`` file, with any ``net.`` prefix removed (:func:`read_weights_file`)."""
    path = Path(path)
    state = read_weights_file(path, what, map_location)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise InputError(f"{what} {path} holds no state dict")
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
        state = network_state_dict(path, what="--model.init_weights")
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
