"""Random rectangles: LaMa's ``make_random_rectangle_mask`` (Suvorov et al. 2022,
advimman/lama ``saicinpainting/training/data/masks.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pconv_lightning.masks.base import MaskGenerator, check_size


@dataclass(frozen=True)
class BoxParams:
    """Rectangles of one mask.

    Shape:
        - boxes: ``(n, 4)`` int64 rows ``x, y, box_width, box_height``.
    """

    boxes: np.ndarray


class BoxMaskGenerator(MaskGenerator):
    """``min_times``-``max_times`` axis-aligned boxes, each side in
    ``[bbox_min_size, bbox_max_size)`` and at least ``margin`` px from the image edge.

    Sizes are pixels at ``reference_size`` and scale with ``min(height, width) /
    reference_size`` (``None``: output pixels). The largest side is capped so a box fits
    inside the margins, as in LaMa.

    Shape:
        - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
    """

    def __init__(
        self,
        margin: int = 10,
        bbox_min_size: int = 30,
        bbox_max_size: int = 100,
        min_times: int = 1,
        max_times: int = 3,
        reference_size: int | None = 256,
    ) -> None:
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if not 1 <= bbox_min_size < bbox_max_size:
            raise ValueError(
                f"need 1 <= bbox_min_size < bbox_max_size, got {bbox_min_size}, {bbox_max_size}"
            )
        if not 0 <= min_times <= max_times:
            raise ValueError(f"need 0 <= min_times <= max_times, got {min_times}, {max_times}")
        if reference_size is not None and reference_size < 1:
            raise ValueError(f"reference_size must be >= 1 or None, got {reference_size}")
        self.margin = margin
        self.bbox_min_size = bbox_min_size
        self.bbox_max_size = bbox_max_size
        self.min_times = min_times
        self.max_times = max_times
        self.reference_size = reference_size

    def sample_params(self, height: int, width: int, rng: np.random.Generator) -> BoxParams:
        """Draw each box's size, then its position inside the margins."""
        check_size(height, width)
        scale = 1.0 if self.reference_size is None else min(height, width) / self.reference_size
        margin = round(self.margin * scale)
        lo = max(1, round(self.bbox_min_size * scale))
        hi = min(round(self.bbox_max_size * scale), height - 2 * margin, width - 2 * margin)
        if hi <= lo:
            raise ValueError(
                f"BoxMaskGenerator cannot fit boxes of {lo}+ px with margin {margin} px "
                f"into {height}x{width}"
            )
        times = int(rng.integers(self.min_times, self.max_times + 1))
        size = rng.integers(lo, hi, size=(times, 2))
        x = rng.integers(margin, width - margin - size[:, 0] + 1)
        y = rng.integers(margin, height - margin - size[:, 1] + 1)
        return BoxParams(np.stack([x, y, size[:, 0], size[:, 1]], axis=1))

    def render(self, height: int, width: int, params: BoxParams) -> np.ndarray:
        """Clear each box to 0 in an all-valid mask.

        Shape:
            - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
        """
        mask = np.ones((height, width), np.uint8)
        for x, y, box_w, box_h in params.boxes.tolist():
            mask[y : y + box_h, x : x + box_w] = 0
        return mask

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return self.render(height, width, self.sample_params(height, width, rng))
