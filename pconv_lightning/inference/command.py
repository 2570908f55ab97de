"""``pconv inpaint``: fill the holes of photos with a trained network, at any size.

Masks are matched to images by file stem (``photo.jpg`` takes ``masks/photo.png``); a single
mask file applies to every image. The result is the composite: every valid pixel is the
input's, bit for bit; only the holes change.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from pconv_lightning.checkpoints.reference import checkpoint_or_reference
from pconv_lightning.data.images import UnreadableImageError, load_rgb
from pconv_lightning.data.mask_pairs import InputError, image_files, match_masks, missing_message
from pconv_lightning.masks.io import check_mask, load_mask

if TYPE_CHECKING:  # torch is imported to run, not for `pconv inpaint --help`
    from pconv_lightning.inference.predictor import Inpainter

POLARITY = {"white-hole": 255, "black-hole": 0}  # mask colour that marks the hole
log = logging.getLogger(__name__)


def pair_masks(image: Path, mask: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """``(pairs, missing)``: one mask file for every image, or masks matched by file stem;
    ``missing`` lists the images without a mask."""
    return match_masks(image_files(image, "--image"), mask)


def resized_mask(valid: np.ndarray, size: tuple[int, int], mask: Path) -> np.ndarray:
    """``valid`` resized to ``size`` (width, height) with nearest neighbour, logged.

    Shape: (h, w) uint8 -> (height, width) uint8, 1 = valid.
    """
    log.warning(
        "resizing mask %s from %dx%d to %dx%d (nearest neighbour)",
        mask,
        valid.shape[1],
        valid.shape[0],
        *size,
    )
    return np.asarray(Image.fromarray(valid).resize(size, Image.Resampling.NEAREST))


def concat_strip(image: np.ndarray, mask: np.ndarray, result: np.ndarray) -> np.ndarray:
    """image | mask (white = hole) | result, side by side.

    Shape:
        - image, result: (H, W, 3) uint8; mask: (H, W), 1 = valid
        - Output: (H, 3 W, 3) uint8
    """
    holes = np.where(mask == 0, 255, 0).astype(np.uint8)
    return np.concatenate([image, np.repeat(holes[..., None], 3, axis=2), result], axis=1)


def repaired(
    inpainter: Inpainter,
    rgb: np.ndarray,
    valid: np.ndarray,
    work_pixels: int | None,
    image: Path,
) -> np.ndarray:
    """The composite at full resolution, or, for an image above ``work_pixels``, with its
    holes repaired at the largest size under that cap and upscaled (logged).

    Shape: (H, W, 3) uint8 and (H, W), 1 = valid -> (H, W, 3) uint8.
    """
    if work_pixels is None:
        return inpainter(rgb, valid)
    from pconv_lightning.inference.downscaled import downscaled_inpaint, work_size

    h, w = work_size(*valid.shape, work_pixels)
    if (h, w) != valid.shape:
        log.warning(
            "%s: %dx%d is above --work-pixels %d: holes repaired at %dx%d and upscaled",
            image,
            valid.shape[1],
            valid.shape[0],
            work_pixels,
            w,
            h,
        )
    return downscaled_inpaint(inpainter, rgb, valid, work_pixels)


def inpaint_file(
    inpainter: Inpainter,
    image: Path,
    mask: Path,
    output: Path,
    hole_value: int,
    concat: bool,
    resize_mask: bool = False,
    work_pixels: int | None = None,
) -> Path:
    """Inpaint one image and write ``OUTPUT/<stem>.png`` (and ``<stem>_concat.png``); a mask
    of another size is an error unless ``resize_mask``; holes of an image above
    ``work_pixels`` are repaired downscaled (:func:`repaired`)."""
    rgb = np.asarray(load_rgb(image))
    valid = load_mask(mask, hole_value=hole_value)
    if valid.shape != rgb.shape[:2]:
        if not resize_mask:
            raise InputError(
                f"mask {mask} is {valid.shape[1]}x{valid.shape[0]} but image {image} is "
                f"{rgb.shape[1]}x{rgb.shape[0]} (width x height); they must match, or pass "
                "--resize-mask"
            )
        valid = resized_mask(valid, (rgb.shape[1], rgb.shape[0]), mask)
    check_mask(valid, f"mask {mask}")
    result = repaired(inpainter, rgb, valid, work_pixels, image)
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
        type=Path,
        help=".ckpt/.pth/.safetensors (PyTorch, loaded without pickle) or .onnx (onnxruntime); "
        "default: the released reference model, weights/reference_256.safetensors",
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
        "--overwrite",
        action="store_true",
        help="allow --output to be the --image folder (results replace same-named inputs)",
    )
    parser.add_argument(
        "--resize-mask",
        action="store_true",
        help="resize a mask of another size to its image (nearest neighbour, logged)",
    )
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
    parser.add_argument(
        "--work-pixels",
        type=int,
        metavar="N",
        help="repair the holes of images above N pixels at the largest size under N (area "
        "downscaling) and upscale the fill; valid pixels stay the input's. For holes wider "
        "than those the network was trained on (the reference model: 256x256 crops). "
        "Default: full resolution",
    )
    return parser


def _same_folder(image: Path, output: Path) -> bool:
    folder = image if image.is_dir() else image.parent
    return output.exists() and folder.resolve() == output.resolve()


def main(argv: list[str] | None = None) -> int:
    """Run ``pconv inpaint``; 0 on success, 1 if any image failed or had no mask, 2 for bad
    arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="pconv inpaint: %(message)s")
    if args.work_pixels is not None and args.work_pixels <= 0:
        parser.error(f"--work-pixels must be positive, got {args.work_pixels}")
    if _same_folder(args.image, args.output) and not args.overwrite:
        print(
            f"pconv inpaint: error: --output {args.output} is the input folder; results would "
            "replace the originals: choose another folder or pass --overwrite",
            file=sys.stderr,
        )
        return 2
    from pconv_lightning.checkpoints.network import UnsafeCheckpointError
    from pconv_lightning.inference.predictor import Inpainter, load_engine

    try:
        pairs, missing = pair_masks(args.image, args.mask)
        engine = load_engine(checkpoint_or_reference(args.checkpoint), args.device)
        inpainter = Inpainter(engine, args.tile_size, args.overlap)
    except (InputError, FileNotFoundError, UnsafeCheckpointError, ValueError) as err:
        print(f"pconv inpaint: error: {err}", file=sys.stderr)
        return 2
    if missing:
        print(f"pconv inpaint: error: {missing_message(missing, args.mask)}", file=sys.stderr)
    args.output.mkdir(parents=True, exist_ok=True)
    failed = 0
    total = len(pairs) + len(missing)
    for image, mask in tqdm(pairs, unit="image", disable=len(pairs) <= 1, file=sys.stderr):
        try:
            inpaint_file(
                inpainter,
                image,
                mask,
                args.output,
                POLARITY[args.mask_polarity],
                args.concat,
                args.resize_mask,
                args.work_pixels,
            )
        except (UnreadableImageError, InputError, ValueError) as err:
            failed += 1
            tqdm.write(f"pconv inpaint: error: {err}", file=sys.stderr)
    done = len(pairs) - failed
    print(f"wrote {done} result(s) to {args.output}")
    if failed or missing:
        print(
            f"pconv inpaint: {failed + len(missing)} of {total} image(s) failed "
            f"({len(missing)} without a mask, {failed} with an error)",
            file=sys.stderr,
        )
        return 1
    return 0
