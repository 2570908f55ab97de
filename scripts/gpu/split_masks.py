"""Split the NVIDIA irregular test masks into a training half and an evaluation half.

Files are numbered 00000, 00006, ... 11994 (every 6th of the 12,000); the k-th file in that
order (k = number / 6) goes to EVEN_DIR when k is even and to ODD_DIR when k is odd, so every
block of 1,000 (bucket x border group) is split in two halves of about 83 masks. ODD_DIR gets a
manifest.csv (``pconv masks index``) for ``pconv evaluate --masks ODD_DIR``.

    python scripts/gpu/split_masks.py ../shared/data/nvidia_irregular_masks_test .gpu/masks_train \
        outputs/masks_eval_odd
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pconv_lightning.masks import index_mask_folder


def split(source: Path, even_dir: Path, odd_dir: Path) -> tuple[int, int]:
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


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    even, odd = split(*map(Path, sys.argv[1:]))
    print(f"{even} training masks in {sys.argv[2]}, {odd} evaluation masks in {sys.argv[3]}")
