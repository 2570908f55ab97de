"""Partial convolution.

Liu, Reda, Shih, Wang, Tao, Catanzaro: "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018, arXiv:1804.07723, Sec. 3.1, eq. (1) and (2).

For a window with input features X and binary mask M (1 = valid, 0 = hole)::

    x' = W^T (X ⊙ M) · sum(1) / sum(M) + b    if sum(M) > 0        (eq. 1)
       = 0                                    otherwise
    m' = 1 if sum(M) > 0 else 0                                    (eq. 2)

sum(1) = C_in · kh · kw and sum(M) counts the valid entries of the window over all input
channels. Zero padding counts as hole ("partial convolution based padding").

sum(M) is one single-channel box filter over the channel-summed mask, never a C_in -> C_out
convolution, and it runs in float32 even under autocast: bf16 cannot count past 256 exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.common_types import _size_2_t

__all__ = ["PartialConv2d", "masked_conv2d", "partial_conv2d"]

Padding = _size_2_t | str


def _check_inputs(x: Tensor, mask: Tensor, in_channels: int) -> None:
    if x.dim() != 4:
        raise ValueError(f"input must be (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ValueError(f"input has {x.shape[1]} channels, the weight expects {in_channels}")
    if not (mask.dtype == torch.bool or mask.is_floating_point()):
        raise TypeError(
            f"mask must be a float or bool tensor with 1 = valid and 0 = hole, got {mask.dtype} "
            "(convert a 0/255 uint8 mask with `(mask > 127).float()` and mind the polarity)"
        )
    if mask.dim() != 4 or mask.shape[1] not in (1, x.shape[1]):
        raise ValueError(
            f"mask must be (N, 1, H, W) or (N, {x.shape[1]}, H, W) for input of shape "
            f"{tuple(x.shape)}, got shape {tuple(mask.shape)}"
        )
    if mask.shape[0] != x.shape[0] or mask.shape[2:] != x.shape[2:]:
        raise ValueError(
            f"mask batch and size must match the input: input {tuple(x.shape)}, "
            f"mask {tuple(mask.shape)}"
        )


def masked_conv2d(
    x_masked: Tensor,
    valid_count: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: _size_2_t = 1,
    padding: Padding = 0,
    dilation: _size_2_t = 1,
) -> tuple[Tensor, Tensor]:
    """Eq. (1)-(2) given the masked input X ⊙ M and, per pixel, the number of valid channels.

    This is the core that :func:`partial_conv2d` calls; a network that already holds X ⊙ M
    and the channel count of M (e.g. a decoder concatenating features with different masks)
    calls it directly and never materialises a per-channel mask.

    Shape:
        - x_masked: (N, C_in, H, W), zero wherever the mask is 0.
        - valid_count: (N, 1, H, W), number of valid input channels at each pixel (0..C_in).
        - Output: (N, C_out, H', W') and the updated mask (N, 1, H', W') in float32 (float64
          for float64 input).
    """
    kh, kw = weight.shape[-2:]
    window_size = weight.shape[1] * kh * kw  # sum(1) = C_in * kh * kw
    mask_dtype = torch.promote_types(x_masked.dtype, torch.float32)  # float64 stays float64
    with torch.autocast(device_type=x_masked.device.type, enabled=False):
        ones = torch.ones(1, 1, kh, kw, dtype=mask_dtype, device=valid_count.device)
        window_valid = F.conv2d(valid_count.to(mask_dtype), ones, None, stride, padding, dilation)
        new_mask = (window_valid > 0).to(mask_dtype)
        scale = window_size / window_valid.clamp(min=1.0) * new_mask  # 0 in fully-hole windows
    out = F.conv2d(x_masked, weight, None, stride, padding, dilation)
    out = out.mul_(scale.to(out.dtype))  # in place: conv2d's backward does not need its output
    if bias is not None:
        out = out.addcmul_(bias.view(1, -1, 1, 1).to(out.dtype), new_mask.to(out.dtype))
    return out, new_mask


def partial_conv2d(
    x: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: _size_2_t = 1,
    padding: Padding = 0,
    dilation: _size_2_t = 1,
) -> tuple[Tensor, Tensor]:
    """Partial convolution, eq. (1)-(2) of Liu et al. 2018.

    Args:
        x: input features.
        mask: binary mask, 1 = valid, 0 = hole; shared by all channels or one per channel.
        weight, bias, stride, padding, dilation: as in :func:`torch.nn.functional.conv2d`
            (``groups`` is 1; zero padding counts as hole).

    Shape:
        - x: (N, C_in, H, W)
        - mask: (N, 1, H, W) or (N, C_in, H, W), float or bool
        - Output: (N, C_out, H', W') and the updated mask (N, 1, H', W') in float32.
    """
    _check_inputs(x, mask, weight.shape[1])
    m = mask.to(x.dtype)
    if mask.shape[1] == 1:
        count = mask.to(torch.float32) * x.shape[1]
    else:
        count = mask.to(torch.float32).sum(dim=1, keepdim=True)
    return masked_conv2d(x * m, count, weight, bias, stride, padding, dilation)


class PartialConv2d(nn.Conv2d):
    """2-D partial convolution (Liu et al. 2018, eq. 1-2): ``forward(x, mask) -> (out, mask')``.

    A :class:`torch.nn.Conv2d` with the same parameters and initialisation; nothing is cached
    on the module, so it is safe under DDP, ``torch.compile`` and any input size.

    Shape:
        - x: (N, C_in, H, W)
        - mask: (N, 1, H, W) or (N, C_in, H, W), 1 = valid, 0 = hole
        - Output: (N, C_out, H', W') and the updated mask (N, 1, H', W')
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _size_2_t,
        stride: _size_2_t = 1,
        padding: Padding = 0,
        dilation: _size_2_t = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias
        )

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        return partial_conv2d(
            x, mask, self.weight, self.bias, self.stride, self.padding, self.dilation
        )

    def forward_masked(self, x_masked: Tensor, valid_count: Tensor) -> tuple[Tensor, Tensor]:
        """Eq. (1)-(2) from X ⊙ M and the per-pixel valid-channel count (see :func:`masked_conv2d`)."""
        return masked_conv2d(
            x_masked, valid_count, self.weight, self.bias, self.stride, self.padding, self.dilation
        )
