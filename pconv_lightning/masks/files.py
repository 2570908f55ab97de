"""Masks read from a folder, with the paper's augmentation (Liu et al. 2018, Sec. 4.1:
"random dilation, rotation and cropping"). Nearest-neighbour interpolation only, so the
output stays strictly binary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pconv_lightning.masks.base import MaskGenerator, check_size
from pconv_lightning.masks.io import load_mask

MASK_SUFFIXES = (".png", ".jpg", ".jpeg")
RESIZE_MODES = ("crop", "resize")


def list_mask_files(root: str | Path) -> list[Path]:
    """Sorted PNG/JPEG files under ``root`` (recursive); FileNotFoundError if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"mask folder {root} does not exist or is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MASK_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"mask folder {root} holds no {'/'.join(MASK_SUFFIXES)} files")
    return files


@dataclass(frozen=True)
class FileMaskParams:
    """Which file and how to augment it (no-op values when augmentation is off)."""

    index: int
    dilation: int  # square kernel side in px of the source file; <= 1 means none
    angle: float  # degrees
    shift: tuple[float, float]  # (dx, dy) as fractions of the source width and height
    crop: tuple[float, float]  # (x, y) crop offset as fractions of the free room, 0.5 = centre


class FileMaskGenerator(MaskGenerator):
    """Masks from ``root`` (recursive PNG/JPEG), binarised with ``load_mask``.

    With ``augment`` the hole is dilated by a random square kernel in ``dilation`` (px),
    rotated by up to ``max_rotation`` degrees and shifted by up to ``max_translation`` of the
    size, then fitted to the output: ``resize='crop'`` takes a random crop (upscaling first when
    the file is smaller), ``'resize'`` scales the whole mask. Without ``augment`` only the file
    choice is random and crops are centred. The file list is scanned once per instance.

    Shape:
        - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
    """

    def __init__(
        self,
        root: Path,
        hole_value: int = 255,
        threshold: int = 127,
        dilation: tuple[int, int] = (9, 49),
        max_rotation: float = 180.0,
        max_translation: float = 0.1,
        resize: str = "crop",
        augment: bool = True,
    ) -> None:
        if hole_value not in (0, 255):
            raise ValueError(f"hole_value must be 0 or 255, got {hole_value!r}")
        if len(dilation) != 2 or not 1 <= dilation[0] <= dilation[1]:
            raise ValueError(f"dilation must be (lo, hi) with 1 <= lo <= hi, got {dilation!r}")
        if not 0 <= max_rotation <= 180:
            raise ValueError(f"max_rotation must be in [0, 180] degrees, got {max_rotation}")
        if not 0 <= max_translation <= 1:
            raise ValueError(f"max_translation must be in [0, 1], got {max_translation}")
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        self.root = Path(root).expanduser()
        self.hole_value = hole_value
        self.threshold = threshold
        self.dilation = (int(dilation[0]), int(dilation[1]))
        self.max_rotation = max_rotation
        self.max_translation = max_translation
        self.resize = resize
        self.augment = augment
        self._files: list[Path] | None = None

    @property
    def files(self) -> list[Path]:
        """The mask files under ``root``, scanned on first use."""
        if self._files is None:
            self._files = list_mask_files(self.root)
        return self._files

    def sample_params(self, height: int, width: int, rng: np.random.Generator) -> FileMaskParams:
        """Pick a file and, with ``augment``, the dilation, rotation, shift and crop."""
        check_size(height, width)
        index = int(rng.integers(len(self.files)))
        if not self.augment:
            return FileMaskParams(index, 1, 0.0, (0.0, 0.0), (0.5, 0.5))
        kernel = int(rng.integers(self.dilation[0], self.dilation[1] + 1))
        angle = float(rng.uniform(-self.max_rotation, self.max_rotation))
        dx, dy = rng.uniform(-self.max_translation, self.max_translation, 2).tolist()
        cx, cy = rng.random(2).tolist()
        return FileMaskParams(index, kernel, angle, (dx, dy), (cx, cy))

    def render(self, height: int, width: int, params: FileMaskParams) -> np.ndarray:
        """Load, augment and fit the chosen file.

        Shape:
            - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
        """
        path = self.files[params.index]
        hole = 1 - load_mask(path, self.hole_value, self.threshold)
        src_h, src_w = hole.shape
        if params.dilation > 1:
            hole = cv2.dilate(hole, np.ones((params.dilation, params.dilation), np.uint8))
        if params.angle or params.shift != (0.0, 0.0):
            matrix = cv2.getRotationMatrix2D((src_w / 2, src_h / 2), params.angle, 1.0)
            matrix[:, 2] += (params.shift[0] * src_w, params.shift[1] * src_h)
            hole = cv2.warpAffine(hole, matrix, (src_w, src_h), flags=cv2.INTER_NEAREST)
        if self.resize == "resize":
            hole = cv2.resize(hole, (width, height), interpolation=cv2.INTER_NEAREST)
        else:
            hole = _crop(hole, height, width, params.crop)
        return (hole == 0).astype(np.uint8)

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return self.render(height, width, self.sample_params(height, width, rng))


def _crop(image: np.ndarray, height: int, width: int, where: tuple[float, float]) -> np.ndarray:
    """Crop ``(height, width)`` at relative offset ``where``, upscaling (nearest) when too small."""
    src_h, src_w = image.shape
    scale = max(height / src_h, width / src_w)
    if scale > 1:
        src_h, src_w = max(height, round(src_h * scale)), max(width, round(src_w * scale))
        image = cv2.resize(image, (src_w, src_h), interpolation=cv2.INTER_NEAREST)
    top = int(where[1] * (src_h - height + 1))
    left = int(where[0] * (src_w - width + 1))
    return image[top : top + height, left : left + width]
