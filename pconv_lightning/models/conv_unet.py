"""The paper's plain-convolution baseline (Liu et al. 2018, Sec. 5.2 and Fig. 2(e), 2(f)).

The same UNet as :class:`~pconv_lightning.models.PConvUNet` with :class:`torch.nn.Conv2d`
everywhere; the network never sees the mask: the holes of its input are set to a constant colour
(``I_in = M ⊙ I + (1 - M) ⊙ c``), 127.5/255 grey in Fig. 2(e), the ImageNet mean in Fig. 2(f).
The fill colour is a buffer (``hole_fill``), so a checkpoint says which baseline it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from pconv_lightning.models.unet import PConvUNet

MID_GREY = (0.5, 0.5, 0.5)  # 127.5 / 255, Fig. 2(e)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # Fig. 2(f)


class ConvUNet(PConvUNet):
    """Plain-convolution UNet whose input holes are filled with ``fill``.

    Args:
        layers, in_channels, out_channels, freeze_encoder_bn: as :class:`PConvUNet`.
        fill: the hole colour, one value in [0, 1] per input channel.

    Shape:
        - image: (N, in_channels, H, W) in [0, 1]
        - mask: (N, 1, H, W), 1 = valid, 0 = hole (used only to fill the holes)
        - Output: (N, out_channels, H, W)
    """

    def __init__(
        self,
        layers: int = 7,
        in_channels: int = 3,
        out_channels: int = 3,
        freeze_encoder_bn: bool = False,
        fill: Sequence[float] = MID_GREY,
    ) -> None:
        super().__init__(layers, in_channels, out_channels, freeze_encoder_bn, plain=True)
        if len(fill) != in_channels or not all(0.0 <= v <= 1.0 for v in fill):
            raise ValueError(
                f"fill must give {in_channels} values in [0, 1] (one per input channel), "
                f"got {list(fill)}"
            )
        self.register_buffer("hole_fill", torch.tensor([float(v) for v in fill]).view(1, -1, 1, 1))

    @property
    def fill(self) -> tuple[float, ...]:
        """The hole colour as plain floats."""
        return tuple(float(v) for v in self.hole_fill.flatten())

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        if not torch.compiler.is_exporting():
            self.check_inputs(image, mask)
        valid = mask.to(image.dtype)
        filled = image * valid + self.hole_fill.to(image.dtype) * (1 - valid)
        return super().forward(filled, mask)
