"""The NVIDIA irregular test masks split into a training half and a held-back evaluation half.

Files are numbered 00000, 00006, ... 11994 (every 6th of the 12,000); the k-th file in that
order (k = number / 6) goes to the even half when k is even and to the odd half when k is odd,
so every block of 1,000 (bucket x border group) splits into two halves of about 83 masks. The
odd half gets a ``manifest.csv`` for ``pconv evaluate --masks``.

Every node of a job (or every rank) may make the split at the same instant: each process
copies into temporary folders beside the targets and renames them into place, and a target
that another process placed first is kept, so a half is never seen part-written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path

from pconv_lightning.masks.manifest import MANIFEST_NAME, index_mask_folder


def split_even_odd(source: Path, even_dir: Path, odd_dir: Path) -> tuple[int, int]:
    """Copy the masks; returns the (even, odd) counts. ValueError names an unexpected file."""
    files = sorted(source.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no PNG masks in {source}")
    suffix = f".partial-{socket.gethostname()}-{os.getpid()}"
    made = [even_dir.with_name(even_dir.name + suffix), odd_dir.with_name(odd_dir.name + suffix)]
    try:
        for folder in made:
            folder.mkdir(parents=True)
        counts = [0, 0]
        for path in files:
            if not path.stem.isdigit() or int(path.stem) % 6:
                raise ValueError(f"{path}: expected a 5-digit multiple of 6 as the file name")
            half = (int(path.stem) // 6) % 2
            shutil.copy2(path, made[half] / path.name)
            counts[half] += 1
        index_mask_folder(made[1])
        _place(made[0], even_dir)
        _place(made[1], odd_dir)  # last: its manifest says the split is complete
    finally:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
    return counts[0], counts[1]


def _place(made: Path, target: Path) -> None:
    """Rename ``made`` to ``target`` (an empty target is replaced); where another process
    placed its identical half first, ``made`` is left for the caller to delete."""
    with contextlib.suppress(OSError):  # OSError: the target holds files
        made.rename(target)


def ensure_split(source: Path, even_dir: Path, odd_dir: Path) -> bool:
    """Make the split unless ``odd_dir`` already has its manifest; True when it was made."""
    if (odd_dir / MANIFEST_NAME).is_file() and any(even_dir.glob("*.png")):
        return False
    split_even_odd(source, even_dir, odd_dir)
    return True
