"""Evaluation by hole-ratio bucket (Liu et al. 2018, Sec. 4.1), classical baselines, and the
mask-generator ablation: ``pconv evaluate`` and ``pconv ablate`` (names imported on first use)."""

from pconv_lightning.lazy import lazy_exports

_EXPORTS = {
    "Evaluation": "pconv_lightning.evaluation.runner",
    "InpaintingMethod": "pconv_lightning.evaluation.methods",
    "MeanFill": "pconv_lightning.evaluation.methods",
    "NetworkMethod": "pconv_lightning.evaluation.methods",
    "OpenCVMethod": "pconv_lightning.evaluation.methods",
    "Pair": "pconv_lightning.evaluation.pairs",
    "baselines": "pconv_lightning.evaluation.methods",
    "evaluate": "pconv_lightning.evaluation.runner",
    "image_scores": "pconv_lightning.evaluation.scores",
    "make_pairs": "pconv_lightning.evaluation.pairs",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
