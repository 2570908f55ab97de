"""A network's weights as fp16 safetensors split into pieces of bounded size, and back.

A GPU machine may return only files of at most 16 MB, so the trained weights travel as
``piece-001.safetensors`` ... plus ``pieces.json`` (step, images seen, piece names and the
SHA-256 of every piece). :func:`merge_pieces` checks the hashes and writes one file that
:func:`pconv_lightning.checkpoints.network.load_network` reads.

    python -m pconv_lightning.checkpoints.pieces MERGE_DIR OUT.safetensors
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

MANIFEST = "pieces.json"


def half_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Floating tensors as contiguous fp16 on the CPU; integer buffers unchanged."""
    return {
        k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in state.items()
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_pieces(
    state: dict[str, Tensor], folder: str | Path, piece_bytes: int, info: dict[str, Any]
) -> list[str]:
    """Write ``state`` into ``folder`` as consecutive pieces of at most ``piece_bytes`` of
    tensor data each (a tensor larger than that gets a piece of its own) and the manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups: list[dict[str, Tensor]] = [{}]
    size = 0
    for key, value in state.items():
        nbytes = value.numel() * value.element_size()
        if groups[-1] and size + nbytes > piece_bytes:
            groups.append({})
            size = 0
        groups[-1][key] = value
        size += nbytes
    names = [f"piece-{i + 1:03d}.safetensors" for i in range(len(groups))]
    for name, group in zip(names, groups, strict=True):
        save_file(group, str(folder / name))
    hashes = {name: _sha256(folder / name) for name in names}
    manifest = {**info, "pieces": names, "sha256": hashes, "tensors": len(state)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return names


def merge_pieces(folder: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The state dict and manifest of the pieces in ``folder``; ValueError names a piece that is
    missing or whose SHA-256 differs from the manifest."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {folder}")
    manifest = json.loads((folder / MANIFEST).read_text())
    state: dict[str, Tensor] = {}
    for name in manifest["pieces"]:
        path = folder / name
        if not path.is_file() or _sha256(path) != manifest["sha256"][name]:
            raise ValueError(f"weight piece {path} is missing or corrupt (SHA-256 mismatch)")
        state |= load_file(str(path))
    if len(state) != manifest["tensors"]:
        raise ValueError(
            f"{folder}: pieces hold {len(state)} tensors, manifest says {manifest['tensors']}"
        )
    return state, manifest


def _holds(path: Path, state: dict[str, Tensor], metadata: dict[str, str]) -> bool:
    """Whether the safetensors file ``path`` exists with exactly these tensors and metadata."""
    if not path.is_file():
        return False
    with safe_open(str(path), "pt") as f:
        if (f.metadata() or {}) != metadata or set(f.keys()) != set(state):
            return False
        for k, v in state.items():
            held = f.get_tensor(k)
            if held.dtype != v.dtype or not torch.equal(held, v):
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line: merge a folder of pieces into one fp16 safetensors file."""
    parser = argparse.ArgumentParser(
        prog="python -m pconv_lightning.checkpoints.pieces",
        description="Merge fp16 weight pieces into one file.",
    )
    parser.add_argument("folder", help="folder with pieces.json and piece-NNN.safetensors")
    parser.add_argument("out", help="the merged .safetensors file to write")
    args = parser.parse_args(argv)
    try:
        state, manifest = merge_pieces(args.folder)
    except (OSError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    metadata = {k: str(v) for k, v in manifest.items() if k not in ("pieces", "sha256")}
    if _holds(Path(args.out), state, metadata):  # its bytes would differ: metadata order varies
        print(f"kept {args.out}: it holds these weights and metadata already")
        return 0
    save_file(state, args.out, metadata=metadata)
    print(f"merged {len(manifest['pieces'])} pieces ({len(state)} tensors) into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
