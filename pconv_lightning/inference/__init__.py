"""Inference at any image size: padding, feathered tiles, PyTorch or onnxruntime engines."""

from pconv_lightning.inference.predictor import (
    Engine,
    Inpainter,
    OnnxEngine,
    TorchEngine,
    load_engine,
)

__all__ = ["Engine", "Inpainter", "OnnxEngine", "TorchEngine", "load_engine"]
