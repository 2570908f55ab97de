"""Masks per second per generator at 256 and 512 px on one core.

Target: >= 1,000 masks/s at 512x512 for the stroke and shapes generators, so mask
generation never limits a GPU. Run: ``.venv/bin/python benchmarks/masks.py [--seconds 1]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv_lightning.masks import (
    BoxMaskGenerator,
    FileMaskGenerator,
    HoleRatioConstraint,
    MaskGenerator,
    RandomShapesMaskGenerator,
    StrokeMaskGenerator,
    mask_rng,
)
from pconv_lightning.masks.evaluation import default_generator
from pconv_lightning.masks.io import save_mask

NVIDIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nvidia_irregular_masks_test"
TARGET = 1000.0
TARGETED = ("shapes", "strokes thin", "strokes medium", "strokes thick")


def masks_per_second(generator: MaskGenerator, size: int, seconds: float) -> float:
    """Masks generated per second over at least ``seconds`` (after 10 warm-up masks)."""
    for index in range(10):
        generator(size, size, mask_rng(0, index))
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            generator(size, size, mask_rng(1, count))
            count += 1
    return count / elapsed


def file_folder(scratch: Path) -> Path:
    """The NVIDIA test masks when present, else 200 shapes masks written at 512 px."""
    if NVIDIA.is_dir():
        return NVIDIA
    shapes = RandomShapesMaskGenerator()
    for index in range(200):
        save_mask(scratch / f"{index:04d}.png", shapes(512, 512, mask_rng(9, index)))
    return scratch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per cell")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = file_folder(Path(scratch))
        generators: dict[str, MaskGenerator] = {
            "shapes": RandomShapesMaskGenerator(),
            "strokes thin": StrokeMaskGenerator("thin"),
            "strokes medium": StrokeMaskGenerator("medium"),
            "strokes thick": StrokeMaskGenerator("thick"),
            "boxes": BoxMaskGenerator(),
            "mixture (eval default)": default_generator(),
            "thick in [0.1, 0.6]": HoleRatioConstraint(StrokeMaskGenerator("thick"), 0.1, 0.6),
            "files, augmented": FileMaskGenerator(folder),
            "files, plain": FileMaskGenerator(folder, augment=False),
        }
        print(f"masks/s on one core (cv2 {cv2.__version__}); files from {folder}")
        print(f"{'generator':<24}{'256x256':>10}{'512x512':>10}  target")
        failed = False
        for name, generator in generators.items():
            rates = [masks_per_second(generator, size, args.seconds) for size in (256, 512)]
            verdict = ""
            if name in TARGETED:
                met = rates[1] >= TARGET
                failed |= not met
                verdict = f">= {TARGET:.0f} at 512: {'ok' if met else 'MISSED'}"
            print(f"{name:<24}{rates[0]:>10.0f}{rates[1]:>10.0f}  {verdict}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
