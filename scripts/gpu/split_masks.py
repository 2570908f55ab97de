"""Split the NVIDIA irregular test masks into a training half and an evaluation half
(:mod:`pconv_lightning.masks.split`).

    python scripts/gpu/split_masks.py ../shared/data/nvidia_irregular_masks_test .gpu/masks_train \
        outputs/masks_eval_odd
"""

from __future__ import annotations

import sys
from pathlib import Path

from pconv_lightning.masks.split import split_even_odd

if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    even, odd = split_even_odd(*map(Path, sys.argv[1:]))
    print(f"{even} training masks in {sys.argv[2]}, {odd} evaluation masks in {sys.argv[3]}")
