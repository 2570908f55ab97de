"""LPIPS-VGG against the ``lpips`` package's own implementation, same images and backbone."""

from __future__ import annotations

import lpips
import numpy as np
import pytest
import torch
from PIL import Image
from training_helpers import SAMPLES

from pconv_lightning.vgg.lpips import BLOCKS, LPIPSVGG
from pconv_lightning.vgg.resolve import vgg16_state_dict


def photos(size: int = 96) -> torch.Tensor:
    """Two real photos, centre crops in [0, 1]. Shape: (2, 3, size, size)."""
    out = []
    for name in ("kodim13.jpg", "kodim14.jpg"):
        image = np.asarray(Image.open(SAMPLES / "val" / name).convert("RGB"), np.float32) / 255
        h, w = image.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        out.append(torch.from_numpy(image[top : top + size, left : left + size]).permute(2, 0, 1))
    return torch.stack(out)


def reference_lpips() -> lpips.LPIPS:
    """The lpips package's LPIPS-VGG (its own v0.1 heads) with our ImageNet backbone."""
    net = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).eval()
    state, _ = vgg16_state_dict("imagenet", 30)
    slices = [net.net.slice1, net.net.slice2, net.net.slice3, net.net.slice4, net.net.slice5]
    for block, module in zip(BLOCKS, slices, strict=True):
        for index in block:
            conv = getattr(module, str(index))
            conv.weight.data.copy_(state[f"{index}.weight"])
            conv.bias.data.copy_(state[f"{index}.bias"])
    return net


def test_lpips_vgg_agrees_with_the_lpips_package():
    images = photos()
    torch.manual_seed(0)
    noisy = (images + 0.08 * torch.randn_like(images)).clamp(0, 1)
    swapped = images.flip(0)
    ours, reference = LPIPSVGG(), reference_lpips()
    target = ours.features(images)  # one backbone pass, shared by every image scored against it
    for other in (noisy, swapped, images):
        with torch.no_grad():
            expected = reference(other, images, normalize=True).reshape(-1)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # ours stays fp32 under autocast
            got = ours(other, images)
        assert got.shape == (2,) and got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(ours.distance(other, target), expected, rtol=0, atol=1e-5)
    assert ours(images, images).abs().max() < 1e-6
    assert (ours(swapped, images) > ours(noisy, images)).all()  # a different photo is further


def test_lpips_adds_nothing_to_state_dict_and_bad_heads_file(tmp_path):
    metric = LPIPSVGG()
    assert metric.state_dict() == {}
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, tmp_path / "heads.pth")
    with pytest.raises(ValueError, match=r"heads\.pth has no key lin1"):
        LPIPSVGG(heads=tmp_path / "heads.pth")
