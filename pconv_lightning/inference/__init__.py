"""Inference at any image size: padding, feathered tiles, PyTorch or onnxruntime engines, repair
under a pixel cap (names imported on first use)."""

from pconv_lightning.lazy import lazy_exports

_EXPORTS = {
    "Engine": "pconv_lightning.inference.predictor",
    "Inpainter": "pconv_lightning.inference.predictor",
    "OnnxEngine": "pconv_lightning.inference.predictor",
    "TorchEngine": "pconv_lightning.inference.predictor",
    "downscaled_inpaint": "pconv_lightning.inference.downscaled",
    "load_engine": "pconv_lightning.inference.predictor",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
