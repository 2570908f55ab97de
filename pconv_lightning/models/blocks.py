"""Encoder and decoder stages of the PConv UNet (Liu et al. 2018, Sec. 3.3 and Appendix)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lightning.layers import PartialConv2d


class EncoderStage(nn.Module):
    """Stride-2 partial convolution, optional BatchNorm, ReLU.

    It takes the masked input X ⊙ M (the network masks each feature map once and reuses it
    as the next stage's input and as the decoder's skip). With ``plain=True`` the convolution
    is a plain :class:`torch.nn.Conv2d` of the same shape and the mask is neither read nor
    produced (the benchmark twin).

    Shape:
        - x_masked: (N, C_in, H, W), mask: (N, 1, H, W) or None
        - Output: features (N, C_out, H/2, W/2) and their mask (N, 1, H/2, W/2) or None
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, bn: bool, plain: bool
    ) -> None:
        super().__init__()
        conv = nn.Conv2d if plain else PartialConv2d
        self.conv = conv(
            in_channels, out_channels, kernel_size, stride=2, padding=kernel_size // 2, bias=not bn
        )
        self.bn = nn.BatchNorm2d(out_channels) if bn else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x_masked: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if mask is None:
            return self.act(self.bn(self.conv(x_masked))), None
        out, mask = self.conv.forward_masked(x_masked, mask * self.conv.in_channels)
        return self.act(self.bn(out)), mask


class DecoderStage(nn.Module):
    """Nearest x2 upsampling of features and mask, concatenation with the skip features and
    their mask, 3x3 partial convolution, then BatchNorm + LeakyReLU(0.2) (``last=False``) or
    bias only (``last=True``, the output layer).

    It takes both inputs already masked, and the concatenated per-channel mask is never
    materialised: the layer receives ``cat(up(X_deep ⊙ M_deep), X_skip ⊙ M_skip)`` and the
    per-pixel valid-channel count ``C_deep · up(M_deep) + C_skip · M_skip`` (see
    :func:`pconv_lightning.layers.masked_conv2d`). Upsampling after masking touches 4x fewer
    elements and gives the same X ⊙ M.

    Shape:
        - deep_masked: (N, C_deep, H/2, W/2), skip_masked: (N, C_skip, H, W);
          masks (N, 1, ...) or None
        - Output: features (N, C_out, H, W) and their mask (N, 1, H, W) or None
    """

    def __init__(
        self, deep_channels: int, skip_channels: int, out_channels: int, last: bool, plain: bool
    ) -> None:
        super().__init__()
        self.deep_channels = deep_channels
        self.skip_channels = skip_channels
        conv = nn.Conv2d if plain else PartialConv2d
        self.conv = conv(deep_channels + skip_channels, out_channels, 3, padding=1, bias=last)
        self.bn = nn.Identity() if last else nn.BatchNorm2d(out_channels)
        self.act = nn.Identity() if last else nn.LeakyReLU(0.2, inplace=True)

    def forward(
        self,
        deep_masked: Tensor,
        deep_mask: Tensor | None,
        skip_masked: Tensor,
        skip_mask: Tensor | None,
    ) -> tuple[Tensor, Tensor | None]:
        up = F.interpolate(deep_masked, scale_factor=2.0, mode="nearest")
        x_masked = torch.cat([up, skip_masked], dim=1)
        if deep_mask is None or skip_mask is None:
            return self.act(self.bn(self.conv(x_masked))), None
        up_mask = F.interpolate(deep_mask, scale_factor=2.0, mode="nearest")
        count = up_mask * self.deep_channels + skip_mask * self.skip_channels
        out, mask = self.conv.forward_masked(x_masked, count)
        return self.act(self.bn(out)), mask
