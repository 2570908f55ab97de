"""Constrain another generator's hole ratio by rejection sampling."""

from __future__ import annotations

import numpy as np

from pconv_lightning.masks.base import MaskGenerator
from pconv_lightning.masks.buckets import hole_ratio


class HoleRatioConstraint(MaskGenerator):
    """Redraw from ``generator`` (same ``rng``) until the hole ratio lies in
    ``[min_ratio, max_ratio]``; RuntimeError after ``max_tries`` misses.

    Shape:
        - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
    """

    def __init__(
        self,
        generator: MaskGenerator,
        min_ratio: float = 0.01,
        max_ratio: float = 0.6,
        max_tries: int = 100,
    ) -> None:
        if not isinstance(generator, MaskGenerator):
            raise TypeError(f"generator must be a MaskGenerator, got {generator!r}")
        if not 0 <= min_ratio <= max_ratio <= 1:
            raise ValueError(f"need 0 <= min_ratio <= max_ratio <= 1, got {min_ratio}, {max_ratio}")
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self.generator = generator
        self.min_ratio = min_ratio
        self.max_ratio = max_ratio
        self.max_tries = max_tries

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        seen = []
        for _ in range(self.max_tries):
            mask = self.generator(height, width, rng)
            ratio = hole_ratio(mask)
            if self.min_ratio <= ratio <= self.max_ratio:
                return mask
            seen.append(ratio)
        raise RuntimeError(
            f"{self.generator!r} gave no hole ratio in [{self.min_ratio}, {self.max_ratio}] "
            f"at {height}x{width} in {self.max_tries} tries (ratios seen: "
            f"{min(seen):.3f}-{max(seen):.3f})"
        )
