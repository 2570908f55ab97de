"""Pick one of several generators per mask (LaMa's ``MixedMaskGenerator`` idea, by class path)."""

from __future__ import annotations

import numpy as np

from pconv_lightning.masks.base import MaskGenerator, check_size


class MixtureMaskGenerator(MaskGenerator):
    """Each mask comes from ``generators[k]`` with probability ``weights[k] / sum(weights)``
    (uniform when ``weights`` is None); the choice is drawn from the same ``rng``.

    Shape:
        - Output: ``(height, width)`` uint8, 1 = valid, 0 = hole.
    """

    def __init__(self, generators: list[MaskGenerator], weights: list[float] | None = None) -> None:
        if not generators:
            raise ValueError("generators must name at least one MaskGenerator")
        for index, generator in enumerate(generators):
            if not isinstance(generator, MaskGenerator):
                raise TypeError(f"generators[{index}] must be a MaskGenerator, got {generator!r}")
        if weights is None:
            weights = [1.0] * len(generators)
        if len(weights) != len(generators):
            raise ValueError(
                f"weights must have one entry per generator ({len(generators)}), got {len(weights)}"
            )
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
        self.generators = list(generators)
        self.weights = [float(w) for w in weights]
        self._cumulative = np.cumsum(self.weights) / sum(self.weights)

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        check_size(height, width)
        index = int(np.searchsorted(self._cumulative, rng.random(), side="right"))
        return self.generators[min(index, len(self.generators) - 1)](height, width, rng)
