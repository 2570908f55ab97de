"""PConvUNet: shapes, errors, the mask through the encoder, frozen encoder BatchNorm, and the
fast decoder path against a naive per-channel-mask composition of the same layers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pconv_lightning.models import PConvUNet


def blob_mask(size: int, hole: slice, batch: int = 1) -> torch.Tensor:
    mask = torch.ones(batch, 1, size, size)
    mask[..., hole, hole] = 0
    return mask


def paper_parameter_count(layers: int) -> int:
    """The parameters of the paper's UNet (appendix table), counted from its layer list:
    encoder 3->64 7x7 with a bias, then 5x5, 5x5, 3x3... each with BatchNorm (weight and
    bias) instead of a bias; decoder 3x3 on the upsampled features concatenated with the
    skip, BatchNorm, and the last layer (64 + 3 -> 3) with a bias."""
    encoder_out = [64, 128, 256] + [512] * (layers - 3)
    encoder_in = [3, *encoder_out[:-1]]
    kernels = [7, 5, 5] + [3] * (layers - 3)
    total = 0
    for i in range(layers):
        weights = encoder_in[i] * encoder_out[i] * kernels[i] ** 2
        total += weights + (encoder_out[i] if i == 0 else 2 * encoder_out[i])
    for i in range(layers):  # decoder stage back to encoder level i
        deep, skip = encoder_out[i], encoder_in[i]
        out = 3 if i == 0 else skip
        total += (deep + skip) * out * 3 * 3 + (out if i == 0 else 2 * out)
    return total


@pytest.mark.parametrize(
    ("layers", "size", "parameters"), [(7, 256, 25_779_860), (8, 512, 32_859_796)]
)
def test_output_shape_and_parameter_count(layers, size, parameters):
    net = PConvUNet(layers=layers).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, size, size), blob_mask(size, slice(size // 4, size // 2)))
    assert out.shape == (1, 3, size, size)
    assert len(net.encoder) == len(net.decoder) == layers
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs[:4]] == [7, 5, 5, 3]
    assert [c.out_channels for c in convs[:layers]] == [64, 128, 256] + [512] * (layers - 3)
    assert paper_parameter_count(layers) == parameters  # summed by hand, layer by layer
    assert sum(p.numel() for p in net.parameters()) == parameters


def test_small_size_and_channels():
    net = PConvUNet(layers=3, in_channels=1, out_channels=2)
    assert net(torch.rand(2, 1, 16, 24), torch.ones(2, 1, 16, 24)).shape == (2, 2, 16, 24)


def test_bad_size_names_the_nearest_valid_size():
    net = PConvUNet(layers=7)
    with pytest.raises(ValueError, match=r"multiples of 2\*\*layers = 128.*300x200.*256x256"):
        net(torch.rand(1, 3, 300, 200), torch.ones(1, 1, 300, 200))


@pytest.mark.parametrize(
    ("image", "mask", "match"),
    [
        (torch.rand(1, 3, 128, 128), torch.ones(1, 3, 128, 128), r"\(N, 1, H, W\)"),
        (torch.rand(1, 3, 128, 128), torch.ones(1, 1, 64, 64), "sizes differ"),
        (torch.rand(1, 4, 128, 128), torch.ones(1, 1, 128, 128), r"\(N, 3, H, W\)"),
        (torch.rand(1, 3, 128, 128), torch.full((1, 1, 128, 128), 0.5), "binary"),
        (
            torch.rand(1, 3, 128, 128),
            torch.ones(1, 1, 128, 128, dtype=torch.uint8),
            "float or bool",
        ),
    ],
)
def test_bad_inputs(image, mask, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PConvUNet(layers=7)(image, mask)


def test_mask_vanishes_by_the_bottleneck_for_a_typical_hole():
    """A 96x96 hole (14% of a 256x256 image) is filled in by the encoder's mask updates."""
    net = PConvUNet(layers=7).eval()
    masks = []
    for stage in net.encoder:
        stage.register_forward_hook(lambda _m, _i, out: masks.append(out[1]))
    with torch.no_grad():
        net(torch.rand(1, 3, 256, 256), blob_mask(256, slice(80, 176)))
    holes = [int((m == 0).sum()) for m in masks]
    # By hand: output pixel i of a stride-2 layer with kernel k sees inputs 2i - k//2 .. 2i + k//2;
    # it stays a hole when all of them are holes. Rows 80..175 -> 42..86 (45) -> 22..42 (21)
    # -> 12..20 (9) -> 7..9 (3) -> 4 (1) -> none.
    assert holes == [45**2, 21**2, 9**2, 3**2, 1, 0, 0]


def test_output_independent_of_image_values_under_holes():
    torch.manual_seed(0)
    net = PConvUNet(layers=4).eval()
    mask = blob_mask(64, slice(10, 40), batch=2)
    x = torch.rand(2, 3, 64, 64)
    y = torch.where(mask.bool(), x, torch.rand_like(x))
    with torch.no_grad():
        assert torch.equal(net(x, mask), net(y, mask))


def naive_forward(net: PConvUNet, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The same layers composed the textbook way: explicit per-channel concatenated masks
    through PartialConv2d.forward, upsampling of unmasked features."""
    feats, masks = [image], [mask]
    x, m = image, mask
    for stage in net.encoder:
        x, m = stage.conv(x, m)
        x = stage.act(stage.bn(x))
        feats.append(x)
        masks.append(m)
    x, m = feats.pop(), masks.pop()
    for stage in net.decoder:
        skip, skip_mask = feats.pop(), masks.pop()
        up = F.interpolate(x, scale_factor=2.0, mode="nearest")
        up_mask = F.interpolate(m, scale_factor=2.0, mode="nearest")
        full_mask = torch.cat(
            [up_mask.expand(-1, up.shape[1], -1, -1), skip_mask.expand(-1, skip.shape[1], -1, -1)],
            1,
        )
        x, m = stage.conv(torch.cat([up, skip], 1), full_mask)
        x = stage.act(stage.bn(x))
    return x


def test_fast_decoder_path_equals_naive_composition():
    torch.manual_seed(0)
    net = PConvUNet(layers=5).eval()
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    image = torch.rand(2, 3, 64, 64)
    mask = torch.ones(2, 1, 64, 64)
    mask[0, :, 5:50, 20:60] = 0
    mask[1, :, 30:64, 0:25] = 0
    with torch.no_grad():
        torch.testing.assert_close(
            net(image, mask), naive_forward(net, image, mask), rtol=1e-4, atol=1e-5
        )


def test_freeze_encoder_bn_survives_train_calls_and_keeps_statistics():
    net = PConvUNet(layers=4, freeze_encoder_bn=True)
    net.train()
    enc_bns = net.encoder_batchnorms()
    assert len(enc_bns) == 3 and not any(bn.training for bn in enc_bns)
    dec_bns = [m for m in net.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert dec_bns and all(bn.training for bn in dec_bns)
    before = [bn.running_mean.clone() for bn in enc_bns]
    net(torch.rand(2, 3, 32, 32), blob_mask(32, slice(4, 20), batch=2)).sum().backward()
    assert all(torch.equal(a, bn.running_mean) for a, bn in zip(before, enc_bns, strict=True))
    net.freeze_encoder_bn = False
    assert all(bn.training for bn in net.encoder_batchnorms())


def test_freeze_encoder_bn_covers_sync_batchnorm():
    net = nn.SyncBatchNorm.convert_sync_batchnorm(PConvUNet(layers=4))
    net.freeze_encoder_bn = True
    net.train()
    bns = net.encoder_batchnorms()
    assert bns and all(isinstance(bn, nn.SyncBatchNorm) and not bn.training for bn in bns)


def test_plain_twin_has_the_same_shapes_and_ignores_the_mask():
    pconv, plain = PConvUNet(layers=4), PConvUNet(layers=4, plain=True)
    assert {k: v.shape for k, v in pconv.state_dict().items()} == {
        k: v.shape for k, v in plain.state_dict().items()
    }
    assert not any(type(m).__name__ == "PartialConv2d" for m in plain.modules())
    plain.eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(plain(x, torch.ones(1, 1, 32, 32)), plain(x, blob_mask(32, slice(0, 9))))


@pytest.mark.parametrize("plain", [False, True])
def test_he_normal_initialisation(plain):
    """Every convolution's weight std is He et al.'s sqrt(2 / fan_in) (fan_in = C_in·kh·kw,
    counted here from the shape), mean ~0; biases 0; BatchNorm weight 1, bias 0 (Sec. 4.2)."""
    torch.manual_seed(0)
    net = PConvUNet(layers=7, plain=plain)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 14
    for conv in convs:
        c_in, kh, kw = conv.weight.shape[1:]
        expected = math.sqrt(2.0 / (c_in * kh * kw))
        w = conv.weight.detach().double()
        n = w.numel()
        # the sample std of n normal draws has relative standard error ~ 1/sqrt(2n)
        assert abs(w.std().item() / expected - 1) < 5 / math.sqrt(2 * n) + 1e-3, conv
        assert abs(w.mean().item()) < 5 * expected / math.sqrt(n)
        if conv.bias is not None:
            assert torch.count_nonzero(conv.bias) == 0
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bool((b.weight == 1).all() and (b.bias == 0).all()) for b in bns)
