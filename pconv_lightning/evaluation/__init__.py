"""Evaluation by hole-ratio bucket (Liu et al. 2018, Sec. 4.1), classical baselines, and the
mask-generator ablation: ``pconv evaluate`` and ``pconv ablate``."""

from pconv_lightning.evaluation.methods import (
    InpaintingMethod,
    MeanFill,
    NetworkMethod,
    OpenCVMethod,
    baselines,
)
from pconv_lightning.evaluation.pairs import Pair, make_pairs
from pconv_lightning.evaluation.runner import Evaluation, evaluate
from pconv_lightning.evaluation.scores import image_scores

__all__ = [
    "Evaluation",
    "InpaintingMethod",
    "MeanFill",
    "NetworkMethod",
    "OpenCVMethod",
    "Pair",
    "baselines",
    "evaluate",
    "image_scores",
    "make_pairs",
]
