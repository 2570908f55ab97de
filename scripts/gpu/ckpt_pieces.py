"""After collect.sh stopped the training at its deadline (SIGTERM: Lightning writes last.ckpt at
the end of the batch, but the fp16 export runs only at a normal end): export last.ckpt's network
as fp16 pieces (``weights/step-NNNNNNN/`` + ``LATEST``, as HalfWeightsExport does) when it is
newer than the newest export; else leave everything as it is.

    python3 scripts/gpu/ckpt_pieces.py outputs/reference_256 [--piece-mb 15]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from pconv_lightning.checkpoints.pieces import MANIFEST, half_state, save_pieces


def export_newer(run: Path, piece_mb: float = 15.0) -> Path | None:
    """The new export's folder, or None when last.ckpt is missing or not newer."""
    ckpt_path = run / "checkpoints" / "last.ckpt"
    weights = run / "weights"
    if not ckpt_path.is_file():
        return None
    latest = weights / "LATEST"
    exported = -1
    if latest.is_file():
        exported = json.loads((weights / latest.read_text() / MANIFEST).read_text())["step"]
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    step = int(ckpt["global_step"])
    if step <= exported:
        return None
    state = {k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    if not state:
        raise ValueError(f"{ckpt_path} holds no net.* tensors")
    folder = weights / f"step-{step:07d}"
    info = {
        "step": step, "epoch": ckpt.get("epoch"), "dtype": "float16",
        "source": "last.ckpt, written when collect.sh stopped the run at its deadline",
    }  # fmt: skip
    save_pieces(half_state(state), folder, int(piece_mb * 1e6), info)
    (weights / "LATEST.tmp").write_text(folder.name)
    os.replace(weights / "LATEST.tmp", latest)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--piece-mb", type=float, default=15.0)
    args = parser.parse_args()
    folder = export_newer(args.run, args.piece_mb)
    print(f"exported last.ckpt to {folder}" if folder else "the newest export is current")


if __name__ == "__main__":
    main()
