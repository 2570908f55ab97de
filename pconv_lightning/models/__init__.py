"""Inpainting networks."""

from pconv_lightning.models.unet import PConvUNet

__all__ = ["PConvUNet"]
