"""The README's first picture: the reference model repairing the shipped photos.

For each photo of ``data/samples/val`` with its mask of ``data/samples/val_masks`` (white =
hole), at the photo's own size (384x256 or 256x384, run whole by ``pconv inpaint``'s
:class:`~pconv_lightning.inference.Inpainter`): the photo with its hole in white | the model's
repair | OpenCV Telea (radius 3) | the original. The reference model never saw Kodak photos.

    .venv/bin/python scripts/reference_figure.py [--checkpoint FILE] [--out docs/reference_repair.jpg]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from pconv_lightning.checkpoints.reference import REFERENCE_WEIGHTS
from pconv_lightning.data.images import load_rgb
from pconv_lightning.inference import Inpainter, load_engine
from pconv_lightning.masks.io import load_mask

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ("photo with hole", "reference model", "Telea", "original")


def panels(inpainter: Inpainter, photo: Path, mask: Path) -> list[np.ndarray]:
    """The row of one photo, each panel (H, W, 3) uint8."""
    rgb = np.asarray(load_rgb(photo))
    valid = load_mask(mask)
    if valid.shape != rgb.shape[:2]:
        raise SystemExit(f"mask {mask} is not the size of {photo}")
    holed = np.where(valid[..., None] > 0, rgb, 255).astype(np.uint8)
    telea = cv2.inpaint(rgb, (valid == 0).astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return [holed, inpainter(rgb, valid), telea, rgb]


def figure(rows: list[list[np.ndarray]], path: Path) -> None:
    """Rows of panels, landscape ones side by side; portrait panels are turned to landscape
    so that every cell has one size (the caption says so)."""
    cells = [
        torch.from_numpy(np.rot90(p) if p.shape[0] > p.shape[1] else p.copy()).permute(2, 0, 1)
        for row in rows
        for p in row
    ]
    grid = make_grid([c.float() / 255 for c in cells], nrow=len(COLUMNS), padding=4, pad_value=1)
    pixels = grid.mul(255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(path, quality=90)  # JPEG quality; PNG ignores it


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REFERENCE_WEIGHTS)
    parser.add_argument("--photos", type=Path, default=REPO / "data/samples/val")
    parser.add_argument("--masks", type=Path, default=REPO / "data/samples/val_masks")
    parser.add_argument("--out", type=Path, default=REPO / "docs/reference_repair.jpg")
    args = parser.parse_args(argv)
    inpainter = Inpainter(load_engine(args.checkpoint))
    photos = sorted(args.photos.glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no .jpg photos in {args.photos}")
    rows = [panels(inpainter, p, args.masks / f"{p.stem}.png") for p in photos]
    figure(rows, args.out)
    print(f"wrote {args.out}: {len(rows)} photos x {', '.join(COLUMNS)}")


if __name__ == "__main__":
    main()
