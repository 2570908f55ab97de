"""Inpainting networks."""

from pconv_lightning.models.conv_unet import ConvUNet
from pconv_lightning.models.unet import PConvUNet

__all__ = ["ConvUNet", "PConvUNet"]
