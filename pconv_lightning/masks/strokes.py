"""Irregular brush strokes: LaMa's ``make_random_irregular_mask`` (Suvorov et al. 2022,
advimman/lama ``saicinpainting/training/data/masks.py``) with its thin / medium / thick presets
from ``configs/data_gen/random_{thin,medium,thick}_256.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pconv_lightning.masks.base import MaskGenerator, check_size

#: LaMa's irregular-mask settings at 256 px, keyed by preset name. ``None`` (no preset) uses
#: the defaults of ``make_random_irregular_mask`` with at least one stroke.
STROKE_PRESETS: dict[str | None, dict[str, int]] = {
    None: {"max_angle": 4, "max_len": 60, "max_width": 20, "min_times": 1, "max_times": 10},
    "thin": {"max_angle": 4, "max_len": 40, "max_width": 10, "min_times": 4, "max_times": 50},
    "medium": {"max_angle": 4, "max_len": 100, "max_width": 50, "min_times": 4, "max_times": 5},
    "thick": {"max_angle": 4, "max_len": 200, "max_width": 100, "min_times": 1, "max_times": 5},
}
MAX_VERTICES = 5  # segments per stroke are 1 + randint(5) in LaMa


@dataclass(frozen=True)
class StrokeParams:
    """Line segments of one mask.

    Shape:
        - segments: ``(n, 5)`` int32 rows ``x0, y0, x1, y1, width``.
    """

    segments: np.ndarray


class StrokeMaskGenerator(MaskGenerator):
    """``min_times``-``max_times`` strokes of 1-5 connected segments each.

    A segment turns by ``0.01 + randint(max_angle)`` radians (mirrored on every other stroke),
    is ``10 + randint(max_len)`` px long and ``5 + randint(max_width)`` px wide. Explicit
    arguments override the ``preset``. Lengths and widths are in pixels at ``reference_size``
    and scale with ``min(height, width) / reference_size``; ``reference_size=None`` keeps them
    in output pixels. LaMa's medium/thick sets also add 30% boxes: mix in a
    ``BoxMaskGenerator`` with ``MixtureMaskGenerator`` for that.

    Shape:
        - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
    """

    def __init__(
        self,
        preset: str | None = "medium",
        max_angle: int | None = None,
        max_len: int | None = None,
        max_width: int | None = None,
        min_times: int | None = None,
        max_times: int | None = None,
        reference_size: int | None = 256,
    ) -> None:
        if preset not in STROKE_PRESETS:
            valid = ", ".join(repr(name) for name in STROKE_PRESETS)
            raise ValueError(f"preset must be one of {valid}, got {preset!r}")
        explicit = {
            "max_angle": max_angle,
            "max_len": max_len,
            "max_width": max_width,
            "min_times": min_times,
            "max_times": max_times,
        }
        settings = {
            k: v if v is not None else STROKE_PRESETS[preset][k] for k, v in explicit.items()
        }
        for name in ("max_angle", "max_len", "max_width", "max_times"):
            if settings[name] < 1:
                raise ValueError(f"{name} must be >= 1, got {settings[name]}")
        if not 0 <= settings["min_times"] <= settings["max_times"]:
            raise ValueError(
                f"need 0 <= min_times <= max_times, got {settings['min_times']}, {settings['max_times']}"
            )
        if reference_size is not None and reference_size < 1:
            raise ValueError(f"reference_size must be >= 1 or None, got {reference_size}")
        self.preset = preset
        self.max_angle: int = settings["max_angle"]
        self.max_len: int = settings["max_len"]
        self.max_width: int = settings["max_width"]
        self.min_times: int = settings["min_times"]
        self.max_times: int = settings["max_times"]
        self.reference_size = reference_size

    def sample_params(self, height: int, width: int, rng: np.random.Generator) -> StrokeParams:
        """Draw every stroke's start, turns, lengths and widths in one go."""
        check_size(height, width)
        scale = 1.0 if self.reference_size is None else min(height, width) / self.reference_size
        times = int(rng.integers(self.min_times, self.max_times + 1))
        x = rng.integers(width, size=times)
        y = rng.integers(height, size=times)
        n_segments = 1 + rng.integers(MAX_VERTICES, size=times)
        angle = 0.01 + rng.integers(self.max_angle, size=(times, MAX_VERTICES))
        angle[::2] = 2 * np.pi - angle[::2]
        length = (10 + rng.integers(self.max_len, size=(times, MAX_VERTICES))) * scale
        brush = np.maximum(
            1, np.rint((5 + rng.integers(self.max_width, size=(times, MAX_VERTICES))) * scale)
        )
        segments = []
        for j in range(MAX_VERTICES):
            end_x = np.clip((x + length[:, j] * np.sin(angle[:, j])).astype(np.int64), 0, width - 1)
            end_y = np.clip(
                (y + length[:, j] * np.cos(angle[:, j])).astype(np.int64), 0, height - 1
            )
            keep = n_segments > j
            segments.append(np.stack([x, y, end_x, end_y, brush[:, j]], axis=1)[keep])
            x, y = end_x, end_y
        return StrokeParams(np.concatenate(segments).astype(np.int32))

    def render(self, height: int, width: int, params: StrokeParams) -> np.ndarray:
        """Draw the segments as holes (0) into an all-valid uint8 mask.

        Shape:
            - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
        """
        mask = np.ones((height, width), np.uint8)
        for x0, y0, x1, y1, brush in params.segments.tolist():
            cv2.line(mask, (x0, y0), (x1, y1), 0, brush)
        return mask

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return self.render(height, width, self.sample_params(height, width, rng))
