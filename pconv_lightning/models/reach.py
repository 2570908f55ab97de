"""Where a PConv UNet's output depends on some valid input pixel: its final mask.

By eq. (2) of Liu et al. 2018 (arXiv:1804.07723) a partial convolution's output mask is 1
exactly where its window holds at least one valid input, and eq. (1) makes the output 0
there otherwise (no bias either). Carried through every stage of :class:`PConvUNet`, the
rule gives the network's final mask: 0 at the pixels that no valid input pixel reaches,
whose output is 0 whatever the weights. :func:`reach` computes that mask from the input mask
alone (max pooling is "any valid in the window"), so it serves every engine that runs a
PConvUNet, eager or ONNX, without asking the engine for its mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pconv_lightning.models.unet import ENCODER_KERNELS, _schedule


def reach(mask: Tensor, layers: int) -> Tensor:
    """The final mask of a ``layers``-stage PConvUNet given its input mask.

    Encoder stage i: window ``k_i`` (7, 5, 5, 3, ...), stride 2, zero padding ``k_i // 2``
    counted as hole; decoder stage: nearest x2 upsampling of the deeper mask, OR the skip
    mask, 3x3 window, stride 1, padding 1 (see :mod:`pconv_lightning.models.blocks`).

    Shape:
        - mask: (N, 1, H, W), 1 = valid, 0 = hole; H, W multiples of ``2**layers``
        - Output: (N, 1, H, W) float32, 1 where some valid input pixel reaches the output
    """
    m = (mask > 0).to(torch.float32)
    skips = [m]
    for k in _schedule(ENCODER_KERNELS, layers):
        m = F.max_pool2d(m, k, stride=2, padding=k // 2)  # padding is -inf: a hole
        skips.append(m)
    m = skips.pop()
    while skips:
        up = F.interpolate(m, scale_factor=2.0, mode="nearest")
        m = F.max_pool2d(torch.maximum(up, skips.pop()), 3, stride=1, padding=1)
    return m
