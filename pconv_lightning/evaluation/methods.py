"""Inpainting methods compared in one evaluation run, all behind one interface.

Every method fills the holes of a batch and is composited with the input
(``I_comp = M * I_gt + (1 - M) * I_out``), so valid pixels stay bit-exact whatever the method
does: a PConvUNet checkpoint, OpenCV's ``cv2.inpaint`` (Telea 2004 or Navier-Stokes, on the
8-bit image), PatchMatch (Barnes et al. 2009, the paper's classical baseline, seeded) and a
mean-colour fill of the valid pixels, the floor any method should beat.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pconv_lightning.checkpoints.network import load_network
from pconv_lightning.losses import composite


class InpaintingMethod(ABC):
    """A named way to fill holes; calling it returns the composited image."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def fill(self, image: Tensor, mask: Tensor) -> Tensor:
        """The raw output; only its hole pixels are used.

        Shape:
            - image: ``(N, 3, H, W)`` in [0, 1]; mask: ``(N, 1, H, W)``, 1 = valid
            - Output: ``(N, 3, H, W)``
        """

    @torch.no_grad()
    def __call__(self, image: Tensor, mask: Tensor) -> Tensor:
        """The composited image, clamped to [0, 1]; shapes as in :meth:`fill`."""
        output = self.fill(image, mask).to(image.dtype).clamp(0, 1)
        return composite(output, image, mask)


class NetworkMethod(InpaintingMethod):
    """A PConvUNet loaded from a checkpoint without pickle (see
    :mod:`pconv_lightning.checkpoints.network`)."""

    def __init__(self, name: str, path: str | Path, device: str | torch.device = "cpu") -> None:
        super().__init__(name)
        self.net = load_network(path, map_location=device)

    def check_size(self, size: int) -> None:
        """Raise if ``size`` is not a multiple of the network's ``2**layers``."""
        step = 2**self.net.layers
        if size % step:
            raise ValueError(
                f"--size {size} does not suit checkpoint {self.name!r}: its {self.net.layers} "
                f"layers need a multiple of {step}"
            )

    def fill(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.net(image, mask)


class DownscaledNetworkMethod(InpaintingMethod):
    """A network run on the ``work_size`` x ``work_size`` image (area downscaling; a shrunken
    pixel is a hole where any pixel it covers is one), clamped to [0, 1] and composited there,
    then upscaled bilinearly: what ``pconv inpaint --work-pixels`` does
    (:mod:`pconv_lightning.inference.downscaled`), for holes wider than the network's training
    crops. Named ``NAME@SIZE``."""

    def __init__(self, network: NetworkMethod, work_size: int) -> None:
        super().__init__(f"{network.name}@{work_size}")
        self.network, self.work_size = network, work_size

    def check_size(self, size: int) -> None:
        """Raise unless the work size is below ``size`` and suits the network."""
        step = 2**self.network.net.layers
        if self.work_size >= size or self.work_size % step:
            raise ValueError(
                f"--work-size {self.work_size} does not suit --size {size} and checkpoint "
                f"{self.network.name!r}: it must be smaller than the size and a multiple of "
                f"{step} (2**layers)"
            )

    def fill(self, image: Tensor, mask: Tensor) -> Tensor:
        work = (self.work_size, self.work_size)
        small = F.interpolate(image, work, mode="area")
        covered = F.interpolate(mask, work, mode="area")  # share of valid pixels
        small_mask = (covered >= 1 - 1e-6).to(mask.dtype)
        lost = small_mask.flatten(1).amax(1) == 0  # tiny valid specks vanished: keep them
        small_mask[lost] = (covered[lost] > 0).to(mask.dtype)
        filled = self.network.fill(small, small_mask).to(small.dtype).clamp(0, 1)
        out = composite(filled, small, small_mask)  # clamped first, as pconv inpaint does
        return F.interpolate(out, image.shape[-2:], mode="bilinear", align_corners=False)


def to_uint8(image: Tensor) -> np.ndarray:
    """Shape: ``(3, H, W)`` in [0, 1] -> ``(H, W, 3)`` uint8 (exact for 8-bit source images)."""
    return (image * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class EightBitMethod(InpaintingMethod):
    """A classical method that fills one 8-bit image at a time (:meth:`fill_one`)."""

    @abstractmethod
    def fill_one(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """Shape: image ``(H, W, 3)`` uint8, hole ``(H, W)`` uint8 (1 = hole) -> ``(H, W, 3)``."""

    def fill(self, image: Tensor, mask: Tensor) -> Tensor:
        out = []
        for img, m in zip(image, mask, strict=True):
            hole = (m[0] < 0.5).to(torch.uint8).cpu().numpy()
            out.append(torch.from_numpy(self.fill_one(to_uint8(img), hole)).permute(2, 0, 1))
        return torch.stack(out).to(image.device, torch.float32) / 255


class OpenCVMethod(EightBitMethod):
    """``cv2.inpaint`` with ``cv2.INPAINT_TELEA`` or ``cv2.INPAINT_NS``."""

    def __init__(self, name: str, flag: int, radius: int = 3) -> None:
        super().__init__(name)
        self.flag, self.radius = flag, radius

    def fill_one(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return cv2.inpaint(image, hole, self.radius, self.flag)


class PatchMatch(EightBitMethod):
    """PatchMatch inpainting (Barnes et al. 2009) from the ``pypatchmatch`` package, with
    ``(2 * patch_radius + 1)``-pixel square patches; its randomised search starts from ``seed``
    for every image, so a run repeats exactly."""

    def __init__(self, name: str = "patchmatch", patch_radius: int = 3, seed: int = 0) -> None:
        super().__init__(name)
        self.patch_radius, self.seed = patch_radius, seed

    def fill_one(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        from patchmatch import patch_match

        patch_match.set_random_seed(self.seed)
        return patch_match.inpaint(image, hole, patch_size=self.patch_radius)


class MeanFill(InpaintingMethod):
    """Each hole pixel gets the image's mean colour over its valid pixels."""

    def fill(self, image: Tensor, mask: Tensor) -> Tensor:
        valid = (mask > 0.5).to(image.dtype)
        mean = (image * valid).sum((2, 3), keepdim=True) / valid.sum((2, 3), keepdim=True)
        return mean.expand_as(image)


def baselines(radius: int = 3, seed: int = 0) -> list[InpaintingMethod]:
    """OpenCV Telea and Navier-Stokes at ``radius``, PatchMatch (7x7 patches, ``seed``) and the
    mean fill."""
    return [
        OpenCVMethod("telea", cv2.INPAINT_TELEA, radius),
        OpenCVMethod("ns", cv2.INPAINT_NS, radius),
        PatchMatch("patchmatch", 3, seed),
        MeanFill("mean"),
    ]
