"""Random lines, circles and ellipse arcs: the OpenCV recipe of the original Keras PConv
project (MathiasGruber/PConv-Keras, ``libs/util.py``, ``MaskGenerator._generate_mask``)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pconv_lightning.masks.base import MaskGenerator, check_size


@dataclass(frozen=True)
class ShapesParams:
    """Drawing parameters of one mask, all int32 pixel or degree values.

    Shape:
        - lines: ``(n, 5)`` rows ``x1, y1, x2, y2, thickness``.
        - circles: ``(n, 3)`` rows ``x, y, radius``.
        - ellipses: ``(n, 8)`` rows ``x, y, axis_x, axis_y, angle, start, end, thickness``.
    """

    lines: np.ndarray
    circles: np.ndarray
    ellipses: np.ndarray


class RandomShapesMaskGenerator(MaskGenerator):
    """1-``max_count`` lines, filled circles and ellipse arcs each, drawn as holes.

    Thickness and radius lie in ``[min_size, int((W + H) * size_scale)]`` (3 and 0.03 in the
    Keras recipe); ellipse axes span up to the full image and angles lie in [3, 180] degrees.

    Shape:
        - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
    """

    def __init__(self, max_count: int = 20, min_size: int = 3, size_scale: float = 0.03) -> None:
        if max_count < 1:
            raise ValueError(f"max_count must be >= 1, got {max_count}")
        if min_size < 1:
            raise ValueError(f"min_size must be >= 1, got {min_size}")
        if size_scale <= 0:
            raise ValueError(f"size_scale must be > 0, got {size_scale}")
        self.max_count = max_count
        self.min_size = min_size
        self.size_scale = size_scale

    def sample_params(self, height: int, width: int, rng: np.random.Generator) -> ShapesParams:
        """Draw the shapes' positions and sizes (coordinates 1-based as in the recipe)."""
        check_size(height, width)
        n_lines, n_circles, n_ellipses = rng.integers(1, self.max_count + 1, size=3)
        big = max(self.min_size, int((width + height) * self.size_scale))
        xy_hi = np.array([width, height]) + 1

        def points(n: int) -> np.ndarray:
            return rng.integers(1, xy_hi, size=(n, 2))

        def sizes(n: int) -> np.ndarray:
            return rng.integers(self.min_size, big + 1, size=(n, 1))

        lines = np.hstack([points(n_lines), points(n_lines), sizes(n_lines)])
        circles = np.hstack([points(n_circles), sizes(n_circles)])
        angles = rng.integers(3, 181, size=(n_ellipses, 3))
        ellipses = np.hstack([points(n_ellipses), points(n_ellipses), angles, sizes(n_ellipses)])
        return ShapesParams(
            lines.astype(np.int32), circles.astype(np.int32), ellipses.astype(np.int32)
        )

    def render(self, height: int, width: int, params: ShapesParams) -> np.ndarray:
        """Draw ``params`` as holes (0) into an all-valid uint8 mask.

        Shape:
            - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
        """
        mask = np.ones((height, width), np.uint8)
        for x1, y1, x2, y2, thickness in params.lines.tolist():
            cv2.line(mask, (x1, y1), (x2, y2), 0, thickness)
        for x, y, radius in params.circles.tolist():
            cv2.circle(mask, (x, y), radius, 0, -1)
        for x, y, ax, ay, angle, start, end, thickness in params.ellipses.tolist():
            cv2.ellipse(mask, (x, y), (ax, ay), angle, start, end, 0, thickness)
        return mask

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return self.render(height, width, self.sample_params(height, width, rng))
