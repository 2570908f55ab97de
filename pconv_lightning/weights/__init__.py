"""Pretrained weights obtained offline: torchvision's VGG16 ImageNet weights derived from a
package registry, loaded with a numpy-only unpickler."""

from pconv_lightning.weights.derive import derive, weights_dir
from pconv_lightning.weights.resolve import vgg16_state_dict

__all__ = ["derive", "vgg16_state_dict", "weights_dir"]
