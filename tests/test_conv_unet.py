"""The plain-convolution baseline of the paper's Fig. 2(e)/(f): no mask reaches the network, the
holes of its input carry the stated colour, and its checkpoints load as what they are."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pconv_lightning.checkpoints.network import load_network, save_network
from pconv_lightning.layers import PartialConv2d
from pconv_lightning.models import ConvUNet, PConvUNet
from pconv_lightning.models.conv_unet import IMAGENET_MEAN, MID_GREY


def test_conv_unet_has_only_plain_convolutions():
    net = ConvUNet(layers=4)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and not any(isinstance(m, PartialConv2d) for m in convs)
    twin = PConvUNet(layers=4)
    assert {k: v.shape for k, v in net.state_dict().items() if k != "hole_fill"} == {
        k: v.shape for k, v in twin.state_dict().items()
    }


@pytest.mark.parametrize("fill", [MID_GREY, IMAGENET_MEAN])
def test_the_network_sees_the_fill_colour_in_the_holes_and_no_mask(fill):
    torch.manual_seed(0)
    net = ConvUNet(layers=3, fill=fill).eval()
    image = torch.rand(2, 3, 16, 16)
    mask = torch.ones(2, 1, 16, 16)
    mask[:, :, 4:12, 2:9] = 0
    seen = []
    net.encoder[0].conv.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    out = net(image, mask)

    # Independent computation: the same weights in a plain twin fed the hand-filled image.
    expected_input = image.clone()
    for c, value in enumerate(fill):
        expected_input[:, c][mask[:, 0] == 0] = value
    assert torch.equal(seen[0], expected_input)
    twin = PConvUNet(layers=3, plain=True).eval()
    twin.load_state_dict({k: v for k, v in net.state_dict().items() if k != "hole_fill"})
    assert torch.allclose(out, twin(expected_input, torch.ones_like(mask)), atol=1e-6)

    # No mask reaches the network: the output depends on the mask only through the fill, so a
    # hole whose pixels already have the fill colour gives the output of no hole at all.
    painted = expected_input.clone()
    assert torch.allclose(net(painted, mask), net(painted, torch.ones_like(mask)), atol=1e-6)


def test_conv_unet_checkpoint_loads_as_conv_unet_with_its_fill(tmp_path):
    net = ConvUNet(layers=3, fill=IMAGENET_MEAN)
    save_network(net, tmp_path / "conv.safetensors")
    loaded = load_network(tmp_path / "conv.safetensors")
    assert type(loaded) is ConvUNet
    assert loaded.fill == pytest.approx(IMAGENET_MEAN)
    image, mask = torch.rand(1, 3, 8, 8), (torch.rand(1, 1, 8, 8) > 0.3).float()
    assert torch.equal(loaded(image, mask), net.eval()(image, mask))
    save_network(PConvUNet(layers=3), tmp_path / "pconv.safetensors")
    assert type(load_network(tmp_path / "pconv.safetensors")) is PConvUNet


def test_conv_unet_names_a_bad_fill():
    with pytest.raises(ValueError, match=r"fill must give 3 values in \[0, 1\]"):
        ConvUNet(layers=3, fill=(0.5, 0.5))
    with pytest.raises(ValueError, match="fill must give"):
        ConvUNet(layers=3, fill=(127.5, 127.5, 127.5))
