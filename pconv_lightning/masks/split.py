"""The NVIDIA irregular test masks split into a training half and a held-back evaluation half.

Files are numbered 00000, 00006, ... 11994 (every 6th of the 12,000); the k-th file in that
order (k = number / 6) goes to the even half when k is even and to the odd half when k is odd,
so every block of 1,000 (bucket x border group) splits into two halves of about 83 masks. The
odd half gets a ``manifest.csv`` for ``pconv evaluate --masks``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pconv_lightning.masks.manifest import MANIFEST_NAME, index_mask_folder


def split_even_odd(source: Path, even_dir: Path, odd_dir: Path) -> tuple[int, int]:
    """Copy the masks; returns the (even, odd) counts. ValueError names an unexpected file."""
    files = sorted(source.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no PNG masks in {source}")
    for folder in (even_dir, odd_dir):
        folder.mkdir(parents=True, exist_ok=True)
    counts = [0, 0]
    for path in files:
        if not path.stem.isdigit() or int(path.stem) % 6:
            raise ValueError(f"{path}: expected a 5-digit multiple of 6 as the file name")
        half = (int(path.stem) // 6) % 2
        shutil.copy2(path, (odd_dir if half else even_dir) / path.name)
        counts[half] += 1
    index_mask_folder(odd_dir)
    return counts[0], counts[1]


def ensure_split(source: Path, even_dir: Path, odd_dir: Path) -> bool:
    """Make the split unless ``odd_dir`` already has its manifest; True when it was made."""
    if (odd_dir / MANIFEST_NAME).is_file() and any(even_dir.glob("*.png")):
        return False
    split_even_odd(source, even_dir, odd_dir)
    return True
