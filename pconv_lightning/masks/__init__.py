"""Mask generators, mask files and the evaluation buckets. 1 = valid, 0 = hole."""

from pconv_lightning.masks.base import MaskGenerator, mask_rng
from pconv_lightning.masks.boxes import BoxMaskGenerator
from pconv_lightning.masks.constrained import HoleRatioConstraint
from pconv_lightning.masks.evaluation import make_evaluation_set
from pconv_lightning.masks.files import FileMaskGenerator
from pconv_lightning.masks.manifest import EvalMask, index_mask_folder, read_manifest
from pconv_lightning.masks.mixture import MixtureMaskGenerator
from pconv_lightning.masks.shapes import RandomShapesMaskGenerator
from pconv_lightning.masks.strokes import StrokeMaskGenerator

__all__ = [
    "BoxMaskGenerator",
    "EvalMask",
    "FileMaskGenerator",
    "HoleRatioConstraint",
    "MaskGenerator",
    "MixtureMaskGenerator",
    "RandomShapesMaskGenerator",
    "StrokeMaskGenerator",
    "index_mask_folder",
    "make_evaluation_set",
    "mask_rng",
    "read_manifest",
]
