"""pconv-lightning: image inpainting with partial convolutions (Liu et al., ECCV 2018)."""

from pconv_lightning.layers import PartialConv2d, masked_conv2d, partial_conv2d
from pconv_lightning.losses import InpaintingLoss, LossWeights
from pconv_lightning.models import PConvUNet
from pconv_lightning.vgg import VGG16Features

__all__ = [
    "InpaintingLoss",
    "LossWeights",
    "PConvUNet",
    "PartialConv2d",
    "VGG16Features",
    "masked_conv2d",
    "partial_conv2d",
]
__version__ = "0.1.0"
