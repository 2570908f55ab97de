"""The PConv UNet of Liu et al. 2018 (arXiv:1804.07723, Sec. 3.3 and the appendix table).

Encoder: stride-2 partial convolutions with 64, 128, 256, then 512 channels and kernels
7, 5, 5, then 3; BatchNorm on every layer but the first; ReLU. Decoder: nearest x2
upsampling of features and mask, concatenation with the skip features and mask, 3x3
partial convolution, BatchNorm and LeakyReLU(0.2); the last layer concatenates the input
image and mask and outputs the image with a bias, no BatchNorm and no activation.
``layers=8`` is the paper's 512x512 network, ``layers=7`` the common 256x256 one.

Initialisation (Sec. 4.2, "we use the initialization method described in [He et al. 2015]"):
every convolution, partial or plain, He (Kaiming) normal with fan_in, N(0, 2 / fan_in); biases
0; BatchNorm weight 1, bias 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from pconv_lightning.models.blocks import DecoderStage, EncoderStage

ENCODER_CHANNELS = (64, 128, 256, 512)
ENCODER_KERNELS = (7, 5, 5, 3)


def _schedule(values: tuple[int, ...], layers: int) -> list[int]:
    """The first ``layers`` entries of ``values``, the last one repeated."""
    return [values[min(i, len(values) - 1)] for i in range(layers)]


class PConvUNet(nn.Module):
    """Partial-convolution UNet: ``forward(image, mask) -> output``.

    Args:
        layers: encoder depth (7 for 256x256, 8 for the paper's 512x512); the input sides must
            be multiples of ``2**layers``.
        in_channels, out_channels: image channels in and out.
        freeze_encoder_bn: keep every encoder BatchNorm in eval mode across ``.train()``
            calls (the paper's fine-tuning stage).
        plain: build the benchmark twin: same shapes with :class:`torch.nn.Conv2d`, mask ignored.

    Shape:
        - image: (N, in_channels, H, W) in [0, 1]
        - mask: (N, 1, H, W), 1 = valid, 0 = hole
        - Output: (N, out_channels, H, W), the raw prediction (composite it with the input
          outside the holes for the final result)
    """

    def __init__(
        self,
        layers: int = 7,
        in_channels: int = 3,
        out_channels: int = 3,
        freeze_encoder_bn: bool = False,
        plain: bool = False,
    ) -> None:
        super().__init__()
        if layers < 2:
            raise ValueError(f"layers must be at least 2, got {layers}")
        self.layers = layers
        self.in_channels = in_channels
        self.plain = plain
        channels = [in_channels, *_schedule(ENCODER_CHANNELS, layers)]
        kernels = _schedule(ENCODER_KERNELS, layers)
        self.encoder = nn.ModuleList(
            EncoderStage(channels[i], channels[i + 1], kernels[i], bn=i > 0, plain=plain)
            for i in range(layers)
        )
        # Decoder stage i (deepest first) maps channels[i + 1] (+ skip channels[i]) to channels[i].
        self.decoder = nn.ModuleList(
            DecoderStage(
                channels[i + 1],
                channels[i],
                channels[i] if i > 0 else out_channels,
                last=i == 0,
                plain=plain,
            )
            for i in reversed(range(layers))
        )
        self._freeze_encoder_bn = False
        self.freeze_encoder_bn = freeze_encoder_bn
        self.apply(he_init)

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this (``2**layers``)."""
        return 2**self.layers

    @property
    def freeze_encoder_bn(self) -> bool:
        """Whether encoder BatchNorm layers stay in eval mode (frozen running statistics)."""
        return self._freeze_encoder_bn

    @freeze_encoder_bn.setter
    def freeze_encoder_bn(self, value: bool) -> None:
        self._freeze_encoder_bn = bool(value)
        self.train(self.training)

    def encoder_batchnorms(self) -> list[_BatchNorm]:
        """Every BatchNorm in the encoder (any ``_BatchNorm``, SyncBatchNorm included)."""
        return [m for m in self.encoder.modules() if isinstance(m, _BatchNorm)]

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self._freeze_encoder_bn:
            for bn in self.encoder_batchnorms():
                bn.eval()
        return self

    def check_inputs(self, image: Tensor, mask: Tensor) -> None:
        """Raise a ValueError or TypeError that says what was expected."""
        if image.dim() != 4 or image.shape[1] != self.in_channels:
            raise ValueError(
                f"image must be (N, {self.in_channels}, H, W), got shape {tuple(image.shape)}"
            )
        if mask.dim() != 4 or mask.shape[1] != 1:
            raise ValueError(f"mask must be (N, 1, H, W), got shape {tuple(mask.shape)}")
        if mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
            raise ValueError(
                f"image and mask sizes differ: image {tuple(image.shape)}, mask {tuple(mask.shape)}"
            )
        if not (mask.dtype == torch.bool or mask.is_floating_point()):
            raise TypeError(f"mask must be float or bool (1 = valid, 0 = hole), got {mask.dtype}")
        if mask.dtype != torch.bool and not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must be binary: 1 = valid, 0 = hole; threshold it first")
        height, width = image.shape[2:]
        m = self.multiple
        if height % m or width % m:
            near_h, near_w = (max(m, round(s / m) * m) for s in (height, width))
            raise ValueError(
                f"image height and width must be multiples of 2**layers = {m} "
                f"(layers={self.layers}), got {height}x{width}; the nearest valid size is "
                f"{near_h}x{near_w} (resize or crop to it, or use the padded any-size inference)"
            )

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        if not torch.compiler.is_exporting():  # data-dependent checks; ONNX export skips them
            self.check_inputs(image, mask)
        m: Tensor | None = None if self.plain else mask.to(torch.float32)
        x_masked = _masked(image, m)
        skips: list[tuple[Tensor, Tensor | None]] = [(x_masked, m)]
        for stage in self.encoder:
            x, m = stage(x_masked, m)
            x_masked = _masked(x, m)  # the next stage's input and the decoder's skip
            skips.append((x_masked, m))
        x_masked, m = skips.pop()
        for i, stage in enumerate(self.decoder):
            skip, skip_mask = skips.pop()
            x, m = stage(x_masked, m, skip, skip_mask)
            if i + 1 < len(self.decoder):
                x_masked = _masked(x, m)
        return x


def he_init(module: nn.Module) -> None:
    """He et al. 2015 normal initialisation (the paper's Sec. 4.2): convolution weights
    N(0, 2 / fan_in), biases 0; BatchNorm weight 1, bias 0. Other modules are left alone."""
    if isinstance(module, nn.Conv2d):  # PartialConv2d and the plain twin's Conv2d
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, _BatchNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    """X ⊙ M (X itself for the plain twin)."""
    return x if mask is None else x * mask.to(x.dtype)
