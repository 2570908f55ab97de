"""pconv-lightning: image inpainting with partial convolutions (Liu et al., ECCV 2018).

Names are imported on first use, so that ``pconv COMMAND --help`` starts without torch.
"""

from pconv_lightning import moved
from pconv_lightning.lazy import lazy_exports

_EXPORTS = {
    "InpaintingLoss": "pconv_lightning.losses",
    "LossWeights": "pconv_lightning.losses",
    "PConvUNet": "pconv_lightning.models",
    "PartialConv2d": "pconv_lightning.layers",
    "VGG16Features": "pconv_lightning.vgg.features",
    "masked_conv2d": "pconv_lightning.layers",
    "partial_conv2d": "pconv_lightning.layers",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__version__ = "0.1.0"
moved.install()  # old module paths, for one release
