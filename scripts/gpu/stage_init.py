"""Stage the weights the GPU training starts from (network weights only) in the git-ignored
``.gpu_init/``, a part of the bundle apart from ``.gpu/`` (each can travel on its own), and
describe them in ``.gpu/init.json``, which tells the GPU host's scripts to wait for them.

Sources, ``--source auto`` taking the newest by modification time of those that exist:
- the released ``weights/reference_256.safetensors`` (fp16, one file);
- the CPU run's newest fp16 export (``<cpu-run>/weights/$(cat LATEST)/``: ``pieces.json`` and
  ``piece-*.safetensors``, SHA-256 checked).
``--source none`` stages nothing (the GPU run trains from scratch); ``--source PATH`` takes
that file or pieces folder. The weights must be the 7-layer PConvUNet of reference_256.yaml
(every tensor name and shape), and ``pconv fit`` must know ``--model.init_weights``.

    python scripts/gpu/stage_init.py [--source auto|none|PATH] [--cpu-run DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file

from pconv_lightning.checkpoints.pieces import MANIFEST, merge_pieces

RELEASE = Path("weights/reference_256.safetensors")
CPU_RUN = Path("~/.cache/pconv_lightning/runs/reference_cpu").expanduser()


def init_weights_supported() -> bool:
    """Whether this checkout's InpaintingModule takes ``init_weights``."""
    from pconv_lightning.module import InpaintingModule

    return "init_weights" in inspect.signature(InpaintingModule.__init__).parameters


def candidates(release: Path, cpu_run: Path) -> list[Path]:
    """Existing sources: the release file and the CPU run's LATEST export folder."""
    found = [release] if release.is_file() else []
    latest = cpu_run / "weights" / "LATEST"
    if latest.is_file():
        folder = cpu_run / "weights" / latest.read_text().strip()
        if (folder / MANIFEST).is_file():
            found.append(folder)
    return found


def _mtime(path: Path) -> float:
    return (path / MANIFEST if path.is_dir() else path).stat().st_mtime


def load_state(path: Path) -> dict:
    """The tensors of a .safetensors file or a pieces folder (hashes checked)."""
    return merge_pieces(path)[0] if path.is_dir() else load_file(path)


def check_architecture(state: dict, layers: int = 7) -> None:
    """ValueError unless ``state`` is exactly a ``layers``-layer PConvUNet's tensors."""
    from pconv_lightning import PConvUNet

    own = {k: tuple(v.shape) for k, v in PConvUNet(layers).state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state.items()}
    if own != theirs:
        differ = sorted(set(own) ^ set(theirs)) + sorted(
            k for k in set(own) & set(theirs) if own[k] != theirs[k]
        )
        raise ValueError(
            f"not the {layers}-layer PConvUNet of reference_256.yaml: {len(differ)} tensors "
            f"differ, e.g. {', '.join(differ[:3])}"
        )


def stage(source: Path, dest: Path, info_path: Path, layers: int = 7) -> dict:
    """Copy ``source`` into ``dest`` (emptied first) and write ``info_path``; returns the info."""
    state = load_state(source)
    check_architecture(state, layers)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if source.is_dir():
        manifest = json.loads((source / MANIFEST).read_text())
        for name in [*manifest["pieces"], MANIFEST]:
            shutil.copy2(source / name, dest / name)
        kind, extra = "pieces", {"step": manifest.get("step"), "images_seen": manifest.get("images_seen")}  # fmt: skip
    else:
        shutil.copy2(source, dest / "reference_256.safetensors")
        kind, extra = "safetensors", {}
    files = sorted(p for p in dest.iterdir() if p.is_file())
    info = {
        "source": str(source), "kind": kind, **extra,
        "bytes": sum(p.stat().st_size for p in files),
        "sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
    }  # fmt: skip
    info_path.parent.mkdir(parents=True, exist_ok=True)
    info_path.write_text(json.dumps(info, indent=1))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="auto", help="auto, none or a file / pieces folder")
    parser.add_argument("--release", type=Path, default=RELEASE)
    parser.add_argument("--cpu-run", type=Path, default=CPU_RUN)
    parser.add_argument("--dest", type=Path, default=Path(".gpu_init"))
    parser.add_argument("--info", type=Path, default=Path(".gpu/init.json"))
    args = parser.parse_args()
    args.info.unlink(missing_ok=True)
    if args.dest.exists():
        shutil.rmtree(args.dest)
    if args.source == "none":
        print("no reference weights staged: the GPU run trains from scratch")
        return
    if args.source == "auto":
        found = candidates(args.release, args.cpu_run)
        if not found:
            print(f"no reference weights ({args.release}, {args.cpu_run}/weights/LATEST): "
                  "the GPU run trains from scratch")  # fmt: skip
            return
        source = max(found, key=_mtime)
        print("reference weights found:", ", ".join(map(str, found)), "-> newest:", source)
    else:
        source = Path(args.source)
    if not init_weights_supported():
        raise SystemExit(
            "error: this checkout's InpaintingModule has no init_weights (--model.init_weights);"
            " stage with --source none to train from scratch, or merge that change first"
        )
    info = stage(source, args.dest, args.info)
    print(f"staged {source} in {args.dest} ({info['bytes'] / 2**20:.1f} MiB, {info['kind']})")


if __name__ == "__main__":
    main()
