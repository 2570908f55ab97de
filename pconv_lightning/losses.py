"""The inpainting loss of Liu et al. 2018 (arXiv:1804.07723, Sec. 3.4).

Every L1 term is size-averaged over the number of elements of its tensor (N·C·H·W), as the
authors specify. I_comp = M ⊙ I_gt + (1 - M) ⊙ I_out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lightning.vgg.features import VGG16Features

TERMS = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv")


@dataclass
class LossWeights:
    """Weights of the loss terms; the paper's L_total values by default (Sec. 3.4). ``style``
    weighs both L_style_out and L_style_comp."""

    valid: float = 1.0
    hole: float = 6.0
    perceptual: float = 0.05
    style: float = 120.0
    tv: float = 0.1


def composite(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """I_comp = M ⊙ I_gt + (1 - M) ⊙ I_out: the prediction inside holes, the input elsewhere.

    Shape:
        - output, target: (N, C, H, W); mask: (N, 1, H, W), 1 = valid
        - Output: (N, C, H, W)
    """
    return torch.where(mask > 0.5, target, output)


def gram_matrix(features: Tensor) -> Tensor:
    """K_p Ψ_p^T Ψ_p with K_p = 1/(C·H·W) (the style losses' Gram matrix), in float32.

    Shape:
        - features: (N, C, H, W)
        - Output: (N, C, C), float32
    """
    n, c, h, w = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        flat = features.float().reshape(n, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def total_variation(comp: Tensor, mask: Tensor) -> Tensor:
    """L_tv: L1 differences of I_comp between horizontally and vertically neighbouring pixels
    that both lie in P, the hole region dilated by one pixel (3x3), divided by the number of
    elements of I_comp.

    Shape:
        - comp: (N, C, H, W); mask: (N, 1, H, W), 1 = valid
        - Output: scalar
    """
    region = F.max_pool2d(1.0 - mask.to(comp.dtype), kernel_size=3, stride=1, padding=1)
    pair_h = region[..., :, 1:] * region[..., :, :-1]
    pair_v = region[..., 1:, :] * region[..., :-1, :]
    tv_h = (pair_h * (comp[..., :, 1:] - comp[..., :, :-1]).abs()).sum()
    tv_v = (pair_v * (comp[..., 1:, :] - comp[..., :-1, :]).abs()).sum()
    return (tv_h + tv_v) / comp.numel()


class InpaintingLoss(nn.Module):
    """L_total = w_valid L_valid + w_hole L_hole + w_perc L_perc
    + w_style (L_style_out + L_style_comp) + w_tv L_tv  (L_total, Sec. 3.4).

    VGG16 runs twice per call: once on the batch of I_out and I_comp together (with autograd)
    and once on I_gt without autograd.

    Shape:
        - output, target: (N, 3, H, W) in [0, 1]; mask: (N, 1, H, W), 1 = valid
        - Output: dict of scalars ``valid, hole, perceptual, style_out, style_comp, tv, total``
    """

    def __init__(self, weights: LossWeights | None = None, features: VGG16Features | None = None):
        super().__init__()
        self.weights = weights or LossWeights()
        self.features = features if features is not None else VGG16Features("imagenet")

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        mask = mask.to(output.dtype)
        comp = composite(output, target, mask)
        diff = (output - target).abs()
        terms = {
            "valid": (mask * diff).mean(),  # divided by N·C·H·W of I_gt
            "hole": ((1.0 - mask) * diff).mean(),
        }
        with torch.no_grad():
            feats_gt = self.features(target)
        feats_out, feats_comp = zip(
            *(f.chunk(2) for f in self.features(torch.cat([output, comp]))), strict=True
        )
        terms["perceptual"] = sum(  # L_perceptual
            F.l1_loss(o, g) + F.l1_loss(c, g)
            for o, c, g in zip(feats_out, feats_comp, feats_gt, strict=True)
        )
        grams_gt = [gram_matrix(g) for g in feats_gt]
        terms["style_out"] = sum(
            F.l1_loss(gram_matrix(o), g) for o, g in zip(feats_out, grams_gt, strict=True)
        )
        terms["style_comp"] = sum(
            F.l1_loss(gram_matrix(c), g) for c, g in zip(feats_comp, grams_gt, strict=True)
        )
        terms["tv"] = total_variation(comp, mask)
        w = asdict(self.weights)
        terms["total"] = (
            w["valid"] * terms["valid"]
            + w["hole"] * terms["hole"]
            + w["perceptual"] * terms["perceptual"]
            + w["style"] * (terms["style_out"] + terms["style_comp"])
            + w["tv"] * terms["tv"]
        )
        return terms
