"""Inpainting any image size with a PyTorch network or an ONNX file.

An engine runs the network on one padded window; :class:`Inpainter` pads a small image to
the network's multiple or tiles a large one, then composites: valid pixels are copied from
the uint8 input bit for bit, only holes take the (clipped, rounded) prediction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from pconv_lightning.checkpoints.network import load_network
from pconv_lightning.extras import require
from pconv_lightning.inference.coarse import fill_from, shrink
from pconv_lightning.inference.padding import padded_size, window
from pconv_lightning.inference.tiling import predict_tiled, trust
from pconv_lightning.models import PConvUNet

MULTIPLE_KEY = "pconv.multiple"  # ONNX metadata: the size multiple (2**layers)
DEFAULT_TILE = 512
SHORT = 1e-3  # a hole pixel whose trusted weight is below 1 - SHORT takes the coarse pass


class Engine(Protocol):
    """Runs the network: ``(N, 3, H, W), (N, 1, H, W) -> (N, 3, H, W)`` float32 arrays,
    sides multiples of :attr:`multiple`, mask 1 = valid."""

    multiple: int

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


class TorchEngine:
    """Eager PyTorch under ``torch.inference_mode``."""

    def __init__(
        self, net: PConvUNet, device: str | torch.device = "cpu", channels_last: bool = False
    ) -> None:
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.eval().to(self.device, memory_format=self.memory_format)
        self.multiple = net.multiple

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(image).to(self.device, memory_format=self.memory_format)
            m = torch.from_numpy(mask).to(self.device)
            return self.net(x, m).float().cpu().numpy()


class OnnxEngine:
    """An exported network (see :mod:`pconv_lightning.export`) run by onnxruntime.

    Args:
        path: the ``.onnx`` file.
        device: ``cpu`` or ``cuda`` (needs onnxruntime's CUDA provider).
        threads: intra-op threads; None lets onnxruntime use every core.
    """

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None) -> None:
        ort = require("onnxruntime", "export", "running an .onnx file")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {path} does not exist")
        kind = torch.device(device).type
        provider = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}.get(kind)
        if provider not in ort.get_available_providers():
            raise ValueError(
                f"device {device!r} is not available to onnxruntime for {path} "
                f"(available: {', '.join(ort.get_available_providers())})"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=[provider])
        except Exception as err:  # onnxruntime raises its own exception types
            raise ValueError(f"cannot load ONNX file {path}: {err}") from err
        meta = self.session.get_modelmeta().custom_metadata_map
        if MULTIPLE_KEY not in meta:
            raise ValueError(f"{path} was not written by `pconv export` (no {MULTIPLE_KEY})")
        self.multiple = int(meta[MULTIPLE_KEY])

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"image": image, "mask": mask})[0]


def load_engine(path: str | Path, device: str = "cpu") -> Engine:
    """An ONNX file through onnxruntime, or a ``.ckpt``/``.pth``/``.safetensors`` network
    (loaded without pickle) in eager PyTorch."""
    if Path(path).suffix == ".onnx":
        return OnnxEngine(path, device)
    return TorchEngine(load_network(path), device)


class Inpainter:
    """Fill the holes of a uint8 image of any size.

    Images whose padded size fits in one ``tile_size`` square run whole; larger ones run in
    overlapping tiles (see :mod:`pconv_lightning.inference.tiling`). A run's prediction counts
    where it is trusted (:func:`pconv_lightning.inference.tiling.trust`): where the network's
    final mask says a valid pixel reached it (:func:`pconv_lightning.models.reach.reach`) and
    within ``2**layers / 2`` pixels of a valid pixel of its window; farther into a hole a
    PConv network's prediction darkens, to black. Every hole pixel whose trusted weight is
    below 1 (a hole wider than that, or a tile's edge inside a hole) takes the rest of its
    value from a coarse pass: the image shrunk by an integer factor to at most 512 pixels a
    side and at most half its size (see :mod:`pconv_lightning.inference.coarse`), predicted
    the same way and so recursively coarser until every hole pixel is trusted, then upsampled
    back at those pixels and blended by the missing weight. The recursion ends: shrinking
    halves the distance from a hole pixel to the nearest valid one at every level.

    Args:
        engine: the network.
        tile_size: tile side, a multiple of ``engine.multiple``; None: 512 or the multiple.
        overlap: pixels shared by neighbouring tiles, blended with feathered weights.
    """

    def __init__(self, engine: Engine, tile_size: int | None = None, overlap: int = 128) -> None:
        self.engine = engine
        m = engine.multiple
        self.tile_size = max(DEFAULT_TILE, m) if tile_size is None else tile_size
        if self.tile_size <= 0 or self.tile_size % m:
            raise ValueError(
                f"tile size must be a positive multiple of the network's 2**layers = {m}, "
                f"got {self.tile_size}"
            )
        if not 0 <= overlap < self.tile_size:
            raise ValueError(f"overlap must be in [0, tile size {self.tile_size}), got {overlap}")
        self.overlap = overlap

    def predict(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The network's prediction at every hole (whole image or blended tiles, completed by
        the coarse pass where they are not fully trusted).

        Shape:
            - image: (H, W, 3) uint8, mask: (H, W), 1 = valid, 0 = hole
            - Output: (3, H, W) float32; valid pixels hold no meaningful value
        """
        height, width = _check(image, mask)
        if not mask.any():
            raise ValueError("the mask has no valid pixel: there is nothing to fill the holes from")
        m = self.engine.multiple
        ph, pw = padded_size(height, m), padded_size(width, m)
        if max(ph, pw) <= self.tile_size:
            x, mk = window(image, mask, 0, 0, ph, pw)
            weights = trust(mk, m)[:height, :width]
            pred = self.engine(x, mk)[0, :, :height, :width] * weights
        else:
            pred, weights = predict_tiled(self.engine, image, mask, self.tile_size, self.overlap, m)
        short = (weights < 1 - SHORT) & (mask == 0)  # hole pixels not fully trusted
        np.divide(pred, weights, out=pred, where=(weights > 0) & ~short)
        if short.any():
            fill_from(self._coarse(image, mask), self._factor(height, width), pred, short, weights)
        return pred

    def _factor(self, height: int, width: int) -> int:
        """The coarse pass's shrink factor: at least 2, and enough to fit
        :data:`DEFAULT_TILE` pixels a side. It does not depend on ``tile_size``, so that a
        tiled image and the same image run whole take the same coarse pass."""
        return max(2, -(-max(height, width) // DEFAULT_TILE))

    def _coarse(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The prediction of the image shrunk by :meth:`_factor` (valid where a block holds a
        valid pixel), at the shrunken size; its valid pixels hold the shrunken image itself,
        which the upsampling reads beside a hole.

        Shape:
            - image: (H, W, 3) uint8, mask: (H, W) -> Output: (3, ceil(H / f), ceil(W / f))
        """
        small, small_mask = shrink(image, mask, self._factor(*mask.shape))
        pred = self.predict(small, small_mask)
        valid = small_mask > 0
        pred[:, valid] = small[valid].T * np.float32(1 / 255)
        return pred

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The composite: the input at valid pixels, the prediction in the holes.

        Shape:
            - image: (H, W, 3) uint8, mask: (H, W), 1 = valid, 0 = hole
            - Output: (H, W, 3) uint8
        """
        _check(image, mask)
        out = image.copy()
        if mask.all():
            return out
        holes = mask == 0
        pred = self.predict(image, mask)[:, holes]
        out[holes] = np.rint(np.clip(pred, 0.0, 1.0) * 255).astype(np.uint8).T
        return out


def _check(image: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"mask size {mask.shape[1]}x{mask.shape[0]} differs from the image's "
            f"{image.shape[1]}x{image.shape[0]} (width x height)"
        )
    return image.shape[0], image.shape[1]
