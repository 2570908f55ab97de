"""Bounds on the work of one ``pconv app`` request, and on the files the app keeps.

- **Interactive pixel cap** (:data:`DEFAULT_WORK_PIXELS`, 4 MP, ``--work-pixels``): a photo
  above it is repaired at the largest size under the cap and upscaled; every valid pixel of
  the full-resolution upload is kept bit for bit
  (:mod:`pconv_lightning.inference.downscaled`). The page says so. ``pconv inpaint`` repairs
  at full resolution unless given ``--work-pixels``.
- **Time limit** (``--time-limit``): the network runs tile by tile; a request past its limit
  stops before its next tile and gets a message.
- **Files**: uploads, results and Gradio's cache live under one temporary folder; files older
  than ``--keep-results`` seconds are deleted on a schedule, and the folder is removed when
  the app exits (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import atexit
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pconv_lightning.inference.downscaled import downscaled_inpaint, work_size

if TYPE_CHECKING:  # torch: not for `pconv app --help`
    from pconv_lightning.inference.predictor import Engine, Inpainter

DEFAULT_WORK_PIXELS = 4_000_000
DEFAULT_TIME_LIMIT = 120.0  # seconds


class RequestTimeout(RuntimeError):
    """A request ran past its time limit."""


class DeadlineEngine:
    """An engine that refuses to start another window after ``seconds`` have passed."""

    def __init__(self, engine: Engine, seconds: float) -> None:
        self.engine = engine
        self.multiple = engine.multiple
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if time.monotonic() > self.deadline:
            raise RequestTimeout(
                f"the repair took longer than the {self.seconds:g} s limit of this app; "
                "mark a smaller area, upload a smaller photo, or use `pconv inpaint`"
            )
        return self.engine(image, mask)


def capped_inpaint(
    inpainter: Inpainter, image: np.ndarray, mask: np.ndarray, max_pixels: int
) -> tuple[np.ndarray, str | None]:
    """The composite, computed at most at ``max_pixels``, and a notice when the photo was
    repaired at a smaller size.

    Shape:
        - image: (H, W, 3) uint8, mask: (H, W), 1 = valid -> Output: (H, W, 3) uint8
    """
    height, width = mask.shape
    out = downscaled_inpaint(inpainter, image, mask, max_pixels)
    h, w = work_size(height, width, max_pixels)
    if (h, w) == (height, width):
        return out, None
    notice = (
        f"The photo has {height * width / 1e6:.1f} MP, more than this app's interactive cap of "
        f"{max_pixels / 1e6:g} MP: the holes were filled at {w}x{h} and upscaled; every other "
        "pixel is the original's. Use `pconv inpaint` for a full-resolution repair."
    )
    return out, notice


def remove_old_files(root: Path, age: float) -> int:
    """Delete files under ``root`` older than ``age`` seconds (and emptied folders)."""
    cutoff, removed = time.time() - age, 0
    for path in sorted(root.rglob("*"), reverse=True):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        except OSError:
            continue  # in use or already gone
    return removed


def remove_at_exit(root: Path) -> None:
    """Remove ``root`` when the process exits, also on SIGTERM."""
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exit runs the atexit handlers
