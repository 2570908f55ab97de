"""``pconv app``: a Gradio page for repairing photos with a trained network.

Upload a photo, paint over what should go (brush with size control, eraser, undo) or upload
a mask, run, compare the result with the original on a slider and download it as PNG.

Safe defaults: binds 127.0.0.1 unless ``--host`` says otherwise, analytics off, uploads
capped at ``--max-file-size``, images capped at ``--max-pixels`` (Pillow's decompression-bomb
guard raises above it), every bad input is a message in the page and the server stays up.
Each request is bounded (see :mod:`pconv_lightning.app.limits`): repaired at most at
``--work-pixels`` (larger photos: downscale, repair, upscale, with a notice; valid pixels stay
the original's), stopped after ``--time-limit`` seconds; ``--concurrency`` requests run at
once so a small one does not wait behind a large one, and at most ``--max-queue`` wait (the
next gets Gradio's "queue is full" message). Files older than ``--keep-results`` seconds are
deleted, and all of them when the app exits (also on SIGTERM).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from pconv_lightning.app.inputs import (
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MAX_PIXELS,
    InpaintError,
    editor_inputs,
)
from pconv_lightning.app.limits import (
    DEFAULT_TIME_LIMIT,
    DEFAULT_WORK_PIXELS,
    remove_at_exit,
    remove_old_files,
)
from pconv_lightning.checkpoints.reference import checkpoint_or_reference
from pconv_lightning.extras import require

__all__ = ["InpaintError", "editor_inputs", "main"]


def main(argv: list[str] | None = None) -> int:
    """``pconv app [--checkpoint CKPT] [--host 127.0.0.1] [--port 7860]``."""
    parser = argparse.ArgumentParser(prog="pconv app", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help=".ckpt/.pth/.safetensors or .onnx (default: the released reference model, "
        "weights/reference_256.safetensors)",
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
    parser.add_argument(
        "--work-pixels",
        type=int,
        default=DEFAULT_WORK_PIXELS,
        help="interactive cap: larger photos are repaired downscaled to it and upscaled "
        f"(default {DEFAULT_WORK_PIXELS:,})",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        help=f"seconds one request may run (default {DEFAULT_TIME_LIMIT:g})",
    )
    parser.add_argument(
        "--concurrency", type=int, default=2, help="requests run at once (default 2)"
    )
    parser.add_argument(
        "--max-queue", type=int, default=8, help="requests that may wait (default 8)"
    )
    parser.add_argument(
        "--keep-results",
        type=float,
        default=600.0,
        help="seconds uploads and results are kept (default 600), at least the longest a "
        "request can wait and run: time-limit x (1 + max-queue / concurrency); all are removed "
        "at exit",
    )
    args = parser.parse_args(argv)
    for name in ("work_pixels", "time_limit", "concurrency", "max_queue", "keep_results"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    longest = args.time_limit * (1 + args.max_queue / args.concurrency)
    if args.keep_results < longest:
        parser.error(
            f"--keep-results {args.keep_results:g} is shorter than the longest a request can "
            f"wait and run, --time-limit x (1 + --max-queue / --concurrency) = "
            f"{args.time_limit:g} x (1 + {args.max_queue} / {args.concurrency}) = {longest:g} s: "
            "its uploads could be deleted before it reads them"
        )
    root = Path(tempfile.mkdtemp(prefix="pconv-app-"))
    # Uploads and Gradio's copies; set before gradio is first imported, which reads it.
    os.environ["GRADIO_TEMP_DIR"] = str(root / "gradio")
    remove_at_exit(root)
    require("gradio", "app", "pconv app")  # before the checkpoint loads
    from pconv_lightning.checkpoints.network import UnsafeCheckpointError  # torch: not for --help
    from pconv_lightning.inference.predictor import Inpainter, load_engine

    try:
        checkpoint = checkpoint_or_reference(args.checkpoint)
        inpainter = Inpainter(load_engine(checkpoint, args.device))
    except (FileNotFoundError, UnsafeCheckpointError, ValueError) as err:
        where = "" if args.checkpoint is None else "--checkpoint: "
        print(f"pconv app: error: {where}{err}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
        return 2
    threading.Thread(target=_clean_every, args=(root, args.keep_results), daemon=True).start()
    from pconv_lightning.app.page import build_app  # Gradio takes seconds to import

    app = build_app(inpainter, args.max_pixels, args.work_pixels, args.time_limit, root / "results")
    app.queue(default_concurrency_limit=args.concurrency, max_size=args.max_queue).launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=args.max_file_size,
        show_error=True,
        ssr_mode=False,
        pwa=False,
    )
    return 0


def _clean_every(root: Path, age: float) -> None:
    """Delete files under ``root`` older than ``age`` seconds, checking every ``age / 2``."""
    stop = threading.Event()
    while not stop.wait(min(60.0, age / 2)):
        remove_old_files(root, age)
