"""``pconv inpaint``: fill the holes of photos with a trained network, at any size.

Masks are matched to images by file stem (``photo.jpg`` takes ``masks/photo.png``); a single
mask file applies to every image. The result is the composite: every valid pixel is the
input's, bit for bit; only the holes change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from pconv_lightning.checkpoint import UnsafeCheckpointError
from pconv_lightning.data.filelist import IMAGE_EXTENSIONS
from pconv_lightning.data.images import UnreadableImageError, load_rgb
from pconv_lightning.inference.predictor import Inpainter, load_engine
from pconv_lightning.masks.io import check_mask, load_mask

POLARITY = {"white-hole": 255, "black-hole": 0}  # mask colour that marks the hole
_SUFFIXES = IMAGE_EXTENSIONS | {".bmp", ".tif", ".tiff"}


class InputError(ValueError):
    """Bad command-line input: a missing file or mask, or no images."""


def _images(path: Path, what: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{what} {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{what} folder {path} holds no {'/'.join(sorted(_SUFFIXES))} files")
    return files


def pair_masks(image: Path, mask: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs: one mask file for every image, or masks matched by file stem."""
    images = _images(image, "--image")
    if mask.is_file():
        return [(i, mask) for i in images]
    by_stem: dict[str, Path] = {}
    for m in _images(mask, "--mask"):
        if m.stem in by_stem:
            raise InputError(f"masks {by_stem[m.stem]} and {m} share the stem {m.stem!r}")
        by_stem[m.stem] = m
    missing = [i for i in images if i.stem not in by_stem]
    if missing:
        names = ", ".join(str(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(
            f"no mask in {mask} for {len(missing)} image(s): {names} "
            f"(expected e.g. {mask / (missing[0].stem + '.png')})"
        )
    return [(i, by_stem[i.stem]) for i in images]


def concat_strip(image: np.ndarray, mask: np.ndarray, result: np.ndarray) -> np.ndarray:
    """image | mask (white = hole) | result, side by side.

    Shape:
        - image, result: (H, W, 3) uint8; mask: (H, W), 1 = valid
        - Output: (H, 3 W, 3) uint8
    """
    holes = np.where(mask == 0, 255, 0).astype(np.uint8)
    return np.concatenate([image, np.repeat(holes[..., None], 3, axis=2), result], axis=1)


def inpaint_file(
    inpainter: Inpainter, image: Path, mask: Path, output: Path, hole_value: int, concat: bool
) -> Path:
    """Inpaint one image and write ``OUTPUT/<stem>.png`` (and ``<stem>_concat.png``)."""
    rgb = np.asarray(load_rgb(image))
    valid = load_mask(mask, hole_value=hole_value)
    if valid.shape != rgb.shape[:2]:
        raise InputError(
            f"mask {mask} is {valid.shape[1]}x{valid.shape[0]} but image {image} is "
            f"{rgb.shape[1]}x{rgb.shape[0]} (width x height); they must match"
        )
    check_mask(valid, f"mask {mask}")
    result = inpainter(rgb, valid)
    target = output / f"{image.stem}.png"
    Image.fromarray(result).save(target)
    if concat:
        Image.fromarray(concat_strip(rgb, valid, result)).save(output / f"{image.stem}_concat.png")
    return target


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv inpaint",
        description=(
            "Fill the holes of images with a trained PConvUNet, at any size (padded, or tiled "
            "with feathered blending when larger than --tile-size). Writes OUTPUT/<stem>.png: "
            "valid pixels are the input's, bit for bit."
        ),
        epilog=(
            "Masks: grey images the size of their photo, binarised at 127. By default WHITE "
            "marks the HOLE (the NVIDIA irregular-mask convention and most painting tools); "
            "pass --mask-polarity black-hole for masks where black is the hole."
        ),
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=Path,
        help=".ckpt/.pth/.safetensors (PyTorch, loaded without pickle) or .onnx (onnxruntime)",
    )
    parser.add_argument("--image", required=True, type=Path, help="an image file or a folder")
    parser.add_argument(
        "--mask",
        required=True,
        type=Path,
        help="a mask file (used for every image) or a folder of masks matched by file stem",
    )
    parser.add_argument("--output", required=True, type=Path, help="folder for the results")
    parser.add_argument(
        "--mask-polarity",
        choices=list(POLARITY),
        default="white-hole",
        help="which mask colour is the hole (default: white-hole, white = hole)",
    )
    parser.add_argument(
        "--concat",
        action="store_true",
        help="also write OUTPUT/<stem>_concat.png: image | mask (white = hole) | result",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--tile-size",
        type=int,
        default=None,
        help="tile side in pixels, a multiple of 2**layers (default: 512); larger images "
        "run in overlapping tiles",
    )
    parser.add_argument(
        "--overlap", type=int, default=128, help="pixels shared by neighbouring tiles (128)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``pconv inpaint``; 0 on success, 1 if any image failed, 2 for bad arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        pairs = pair_masks(args.image, args.mask)
        engine = load_engine(args.checkpoint, args.device)
        inpainter = Inpainter(engine, args.tile_size, args.overlap)
    except (InputError, FileNotFoundError, UnsafeCheckpointError, ValueError) as err:
        print(f"pconv inpaint: error: {err}", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    failed = 0
    for image, mask in tqdm(pairs, unit="image", disable=len(pairs) == 1, file=sys.stderr):
        try:
            inpaint_file(
                inpainter, image, mask, args.output, POLARITY[args.mask_polarity], args.concat
            )
        except (UnreadableImageError, InputError, ValueError) as err:
            failed += 1
            tqdm.write(f"pconv inpaint: error: {err}", file=sys.stderr)
    if failed:
        print(f"pconv inpaint: {failed} of {len(pairs)} image(s) failed", file=sys.stderr)
        return 1
    print(f"wrote {len(pairs)} result(s) to {args.output}")
    return 0
