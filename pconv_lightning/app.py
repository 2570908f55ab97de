"""``pconv app``: a Gradio page for repairing photos with a trained network.

Upload a photo, paint over what should go (brush with size control, eraser, undo) or upload
a mask, run, compare the result with the original on a slider and download it as PNG.

Safe defaults: binds 127.0.0.1 unless ``--host`` says otherwise, analytics off, uploads
capped at ``--max-file-size``, images capped at ``--max-pixels`` (Pillow's decompression-bomb
guard raises above it), every bad input is a message in the page and the server stays up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pconv_lightning.checkpoint import UnsafeCheckpointError
from pconv_lightning.data.images import MAX_PIXELS
from pconv_lightning.inference.predictor import Inpainter, load_engine
from pconv_lightning.masks.io import MaskError, check_mask, load_mask

MIN_SIDE = 16
DEFAULT_MAX_PIXELS = MAX_PIXELS
DEFAULT_MAX_FILE_SIZE = "25mb"
POLARITY = {"white = hole": 255, "black = hole": 0}
BRUSH_COLOR = "rgba(255, 0, 160, 0.7)"
INTRO = (
    "**Repair a photo.** Upload it, paint over what should be filled (brush size in the "
    "brush menu, eraser, undo), or upload a mask. Then press **Inpaint**. Only painted pixels "
    "change; everything else is kept bit for bit."
)


class InpaintError(ValueError):
    """A bad upload: the message is shown in the page."""


def _rgb(array: np.ndarray) -> np.ndarray:
    """RGB or RGBA uint8 to RGB, transparent areas on white."""
    if array.ndim == 3 and array.shape[2] == 4:
        im = Image.alpha_composite(
            Image.new("RGBA", array.shape[1::-1], "white"), Image.fromarray(array)
        )
        return np.asarray(im.convert("RGB"))
    return np.asarray(Image.fromarray(array).convert("RGB"))


def editor_inputs(
    editor: dict[str, Any] | None, mask_path: str | None, hole_value: int, max_pixels: int
) -> tuple[np.ndarray, np.ndarray]:
    """The photo and the hole mask from the editor's value and an optional mask file.

    Painted pixels (any layer's alpha > 0) and the mask file's holes are both holes.

    Shape:
        - Output: image (H, W, 3) uint8 and mask (H, W) uint8, 1 = valid, 0 = hole
    """
    background = None if editor is None else editor.get("background")
    if background is None:
        raise InpaintError("upload a photo first")
    image = _rgb(np.asarray(background))
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InpaintError(
            f"the photo is {width}x{height}; it must be at least {MIN_SIDE}x{MIN_SIDE}"
        )
    if height * width > max_pixels:
        raise InpaintError(
            f"the photo has {height * width} pixels, more than the {max_pixels} allowed"
        )
    hole = np.zeros((height, width), bool)
    for layer in editor.get("layers") or []:
        layer = np.asarray(layer)
        if layer.shape[:2] != (height, width):
            raise InpaintError(
                f"a paint layer is {layer.shape[1]}x{layer.shape[0]}, the photo {width}x{height}"
            )
        if layer.ndim == 3 and layer.shape[2] == 4:
            hole |= layer[..., 3] > 0
    if mask_path:
        valid = load_mask(mask_path, hole_value=hole_value)
        if valid.shape != (height, width):
            raise InpaintError(
                f"the mask is {valid.shape[1]}x{valid.shape[0]} but the photo is {width}x{height}"
            )
        hole |= valid == 0
    valid = (~hole).astype(np.uint8)
    try:
        check_mask(valid, "the hole", hint=": paint over the area to repair, or upload a mask")
    except MaskError as err:
        raise InpaintError(str(err)) from err
    return image, valid


def main(argv: list[str] | None = None) -> int:
    """``pconv app --checkpoint CKPT [--host 127.0.0.1] [--port 7860]``."""
    parser = argparse.ArgumentParser(prog="pconv app", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help=".ckpt/.pth/.safetensors or .onnx"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest photo in pixels"
    )
    parser.add_argument(
        "--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="largest upload (default 25mb)"
    )
    args = parser.parse_args(argv)
    try:
        inpainter = Inpainter(load_engine(args.checkpoint, args.device))
    except (FileNotFoundError, UnsafeCheckpointError, ValueError) as err:
        print(f"pconv app: error: --checkpoint: {err}", file=sys.stderr)
        return 2
    from pconv_lightning.app_page import build_app  # Gradio takes seconds to import

    app = build_app(inpainter, args.max_pixels)
    app.queue(default_concurrency_limit=1).launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=args.max_file_size,
        show_error=True,
        ssr_mode=False,
        pwa=False,
    )
    return 0
