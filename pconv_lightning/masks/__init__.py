"""Mask generators, mask files and the evaluation buckets. 1 = valid, 0 = hole."""

from pconv_lightning.masks.base import MaskGenerator, mask_rng

__all__ = ["MaskGenerator", "mask_rng"]
