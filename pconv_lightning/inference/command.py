"""``pconv inpaint``: fill the holes of photos with a trained network, at any size.

Masks are matched to images by file stem (``photo.jpg`` takes ``masks/photo.png``); a single
mask file applies to every image. The result is the composite: every valid pixel is the
input's, bit for bit; only the holes change. A grey photo gets a grey result, and a photo with
transparency keeps its alpha channel (the fill is opaque where the hole was); EXIF orientation
is applied, so the photo is repaired as it is displayed.

Nothing is lost (:func:`planned_outputs`): before anything is written, every result must
have a file of its own (``photo.jpg`` and ``photo.png`` would both become ``photo.png``: the
command refuses, naming both), and no result may replace an input (a photo, a mask or the
checkpoint, however the path is spelt: ``..``, symlinks and hard links are followed), except a
photo replaced by its own result with ``--overwrite``.
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
from pconv_lightning.data.images import UnreadableImageError, load_photo, photo_rgb
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
    """image | mask (white = hole) | result, side by side, in the image's mode (grey, grey
    with alpha, RGB or RGBA; the mask panel is opaque).

    Shape:
        - image, result: (H, W), (H, W, 2), (H, W, 3) or (H, W, 4) uint8; mask: (H, W), 1 = valid
        - Output: (H, 3 W) or (H, 3 W, C) uint8
    """
    holes = np.where(mask == 0, 255, 0).astype(np.uint8)
    if image.ndim == 3:
        channels = image.shape[2]
        colour = 1 if channels in (1, 2) else 3
        holes = np.repeat(holes[..., None], channels, axis=2)
        holes[..., colour:] = 255  # alpha: opaque
    return np.concatenate([image, holes, result], axis=1)


def kept_mode(photo: np.ndarray, composite: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The result in the photo's own mode: the photo's pixels where valid (bit for bit,
    alpha included), the repaired colour in the holes, grey for a grey photo (ITU-R 601
    luma, Pillow's RGB to L), opaque where a photo with alpha had a hole.

    Shape:
        - photo: (H, W) L, (H, W, 2) LA, (H, W, 3) RGB or (H, W, 4) RGBA uint8
        - composite: (H, W, 3) uint8, the repaired RGB; valid: (H, W), 1 = valid
        - Output: the photo's shape, uint8
    """
    if photo.ndim == 3 and photo.shape[2] == 3:
        return composite
    grey = photo.ndim == 2 or photo.shape[2] == 2
    fill = np.asarray(Image.fromarray(composite).convert("L")) if grey else composite
    out = photo.copy()
    hole = valid == 0
    if photo.ndim == 2:
        out[hole] = fill[hole]
    elif grey:
        out[hole, 0] = fill[hole]
        out[hole, 1] = 255
    else:
        out[hole, :3] = fill[hole]
        out[hole, 3] = 255
    return out


def result_paths(image: Path, output: Path, concat: bool) -> list[Path]:
    """The files written for ``image``: ``OUTPUT/<stem>.png`` and, with ``concat``,
    ``OUTPUT/<stem>_concat.png``."""
    return [output / f"{image.stem}.png"] + (
        [output / f"{image.stem}_concat.png"] if concat else []
    )


def _identity(path: Path) -> tuple[object, ...]:
    """Where ``path`` leads: its device and inode when it exists (hard links, symlinks),
    else its resolved path (``..`` and symlinked folders)."""
    resolved = path.resolve()
    try:
        st = resolved.stat()
    except OSError:
        return ("path", str(resolved))
    return ("file", st.st_dev, st.st_ino)


def planned_outputs(
    pairs: list[tuple[Path, Path]],
    images: list[Path],
    checkpoint: Path,
    output: Path,
    concat: bool,
    overwrite: bool,
) -> None:
    """Refuse, before anything is written, results that would share a file or replace an
    input (a photo, a mask, the checkpoint); with ``overwrite`` a photo may be replaced by its
    own result only.

    Raises:
        InputError: naming the clashing inputs and the file.
    """
    inputs: dict[tuple[object, ...], tuple[str, Path]] = {}
    for kind, paths in (
        ("the checkpoint", [checkpoint]),
        ("the mask", [m for _, m in pairs]),
        ("the photo", images),
    ):
        for path in paths:
            inputs[_identity(path)] = (kind, path)
    claimed: dict[tuple[object, ...], Path] = {}
    for image, _ in pairs:
        own = result_paths(image, output, concat)[0]  # --overwrite may replace the photo
        for target in result_paths(image, output, concat):
            key = _identity(target)
            if key in claimed:
                raise InputError(
                    f"--output {output}: {claimed[key]} and {image} would both be written to "
                    f"{target}, and one result would be lost: rename one of them or repair them "
                    "into separate folders"
                )
            claimed[key] = image
            if key in inputs:
                kind, path = inputs[key]
                if overwrite and kind == "the photo" and path == image and target == own:
                    continue
                raise InputError(
                    f"--output {output}: the result {target} for {image} would overwrite "
                    f"{kind} {path}, an input of this command; choose another --output folder"
                )


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
    ``work_pixels`` are repaired downscaled (:func:`repaired`). Grey and transparent photos
    keep their mode (:func:`kept_mode`)."""
    photo = load_photo(image)
    rgb = np.asarray(photo_rgb(photo))
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
    original = np.asarray(photo)
    result = kept_mode(original, repaired(inpainter, rgb, valid, work_pixels, image), valid)
    target, *strip = result_paths(image, output, concat)
    Image.fromarray(result).save(target)
    if strip:
        Image.fromarray(concat_strip(original, valid, result)).save(strip[0])
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
    parser.add_argument(
        "--output",
        required=True,
        type=Path,
        help="folder for the results (not the --mask folder; made if missing); results that "
        "would share a file or replace an input are refused before anything is written",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="allow --output to be the --image folder (a photo may then be replaced by its own "
        "result; a mask, the checkpoint or another photo never is)",
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


def _output_error(output: Path, mask: Path) -> str | None:
    """Why ``--output`` cannot be the results folder: a file, or the mask folder."""
    if output.exists() and not output.is_dir():
        return (
            f"--output {output} is a file, not a folder: results are written into a folder "
            "as OUTPUT/<stem>.png; choose a folder (it is made if it does not exist)"
        )
    if mask.is_dir() and _same_folder(mask, output):
        return (
            f"--output {output} is the --mask folder; results would replace masks of the same "
            "name and be read as masks next time: choose another folder"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    """Run ``pconv inpaint``; 0 on success, 1 if any image failed or had no mask, 2 for bad
    arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="pconv inpaint: %(message)s")
    if args.work_pixels is not None and args.work_pixels <= 0:
        parser.error(f"--work-pixels must be positive, got {args.work_pixels}")
    if (why := _output_error(args.output, args.mask)) is not None:
        print(f"pconv inpaint: error: {why}", file=sys.stderr)
        return 2
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
        checkpoint = checkpoint_or_reference(args.checkpoint)
        images = [image for image, _ in pairs] + missing
        planned_outputs(pairs, images, checkpoint, args.output, args.concat, args.overwrite)
        engine = load_engine(checkpoint, args.device)
        inpainter = Inpainter(engine, args.tile_size, args.overlap)
        args.output.mkdir(parents=True, exist_ok=True)
    except (InputError, FileNotFoundError, UnsafeCheckpointError, ValueError) as err:
        print(f"pconv inpaint: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # --output under a file, or not writable
        print(f"pconv inpaint: error: cannot make --output {args.output}: {err}", file=sys.stderr)
        return 2
    if missing:
        print(f"pconv inpaint: error: {missing_message(missing, args.mask)}", file=sys.stderr)
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
