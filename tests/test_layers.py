"""PartialConv2d against independent computations: a float64 loop reference of eq. (1)-(2),
plain nn.Conv2d, max-pool dilation of the mask, and gradcheck."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pconv_lightning.layers import PartialConv2d, partial_conv2d


def loop_reference(x, mask, weight, bias, stride, padding, dilation):
    """Eq. (1)-(2) written as loops over windows, in float64 numpy. Padding counts as hole."""
    x, weight = x.double().numpy(), weight.double().numpy()
    mask = mask.expand_as(torch.as_tensor(x)).double().numpy()
    b = np.zeros(weight.shape[0]) if bias is None else bias.detach().double().numpy()
    n_img, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n_img, c_out, ho, wo))
    new_mask = np.zeros((n_img, 1, ho, wo))
    for n, i, j in itertools.product(range(n_img), range(ho), range(wo)):
        acc, valid = np.zeros(c_out), 0
        for c, a, bb in itertools.product(range(c_in), range(kh), range(kw)):
            y, xx = i * stride - padding + a * dilation, j * stride - padding + bb * dilation
            if 0 <= y < h and 0 <= xx < w and mask[n, c, y, xx] == 1:
                acc += weight[:, c, a, bb] * x[n, c, y, xx]
                valid += 1
        if valid:
            out[n, :, i, j] = acc * (c_in * kh * kw) / valid + b
            new_mask[n, 0, i, j] = 1
    return torch.from_numpy(out), torch.from_numpy(new_mask)


def random_mask(shape, hole_fraction=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) > hole_fraction).float()


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "per_channel", "bias"),
    [
        (1, 0, 1, False, True),
        (1, 1, 1, True, True),
        (2, 1, 1, True, False),
        (2, 2, 1, False, True),
        (1, 2, 2, True, True),
        (2, 3, 2, True, True),
    ],
)
def test_matches_float64_loop_reference(stride, padding, dilation, per_channel, bias):
    torch.manual_seed(stride * 10 + padding + dilation)
    layer = PartialConv2d(3, 4, 3, stride=stride, padding=padding, dilation=dilation, bias=bias)
    x = torch.randn(2, 3, 9, 8)
    mask = random_mask((2, 3 if per_channel else 1, 9, 8), 0.6, seed=padding)
    out, new_mask = layer(x, mask)
    ref_out, ref_mask = loop_reference(
        x, mask, layer.weight.detach(), layer.bias, stride, padding, dilation
    )
    assert out.shape == ref_out.shape and new_mask.shape == ref_mask.shape
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-5, atol=1e-5)
    assert torch.equal(new_mask.double(), ref_mask)


def test_float64_module_matches_reference_tightly():
    torch.manual_seed(1)
    layer = PartialConv2d(2, 3, (3, 5), stride=2, padding=(1, 2)).double()
    x, mask = torch.randn(1, 2, 7, 9, dtype=torch.float64), random_mask((1, 2, 7, 9), 0.5).double()
    out, _ = layer(x, mask)
    # Anisotropic kernels: check by unfolding instead of the square-only loop reference.
    cols = F.unfold(x * mask, (3, 5), padding=(1, 2), stride=2)  # (1, C*kh*kw, L)
    counts = F.unfold(mask, (3, 5), padding=(1, 2), stride=2).sum(1)  # (1, L)
    raw = layer.weight.flatten(1) @ cols  # (1, C_out, L)
    expected = torch.where(
        counts > 0, raw * (2 * 15) / counts.clamp(min=1) + layer.bias[:, None], 0
    )
    torch.testing.assert_close(out.flatten(2), expected, rtol=1e-12, atol=1e-12)


def test_equals_plain_conv2d_with_full_mask_and_no_padding():
    torch.manual_seed(0)
    layer = PartialConv2d(5, 7, 3, stride=2)
    conv = torch.nn.Conv2d(5, 7, 3, stride=2)
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 17, 17)
    out, new_mask = layer(x, torch.ones(2, 1, 17, 17))
    assert torch.equal(out, conv(x))
    assert torch.equal(new_mask, torch.ones_like(new_mask))


def test_border_ratios_of_partial_padding():
    """Fully valid image, 3x3 kernel, padding 1: ratio 1 inside, 1.5 on edges, 2.25 at corners."""
    weight = torch.ones(1, 4, 3, 3)
    x = torch.ones(1, 4, 5, 5)
    out, _ = partial_conv2d(x, torch.ones(1, 1, 5, 5), weight, padding=1)
    ratio = out / F.conv2d(x, weight, padding=1)
    expected = torch.full((5, 5), 1.0)
    expected[0, :] = expected[-1, :] = expected[:, 0] = expected[:, -1] = 1.5
    expected[0, 0] = expected[0, -1] = expected[-1, 0] = expected[-1, -1] = 2.25
    torch.testing.assert_close(ratio[0, 0], expected)


def test_fully_hole_windows_are_exact_zeros_including_bias():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 6, 3, padding=1)
    torch.nn.init.constant_(layer.bias, 0.7)
    mask = torch.ones(1, 1, 12, 12)
    mask[..., 2:9, 3:10] = 0
    out, new_mask = layer(torch.randn(1, 3, 12, 12), mask)
    hole = new_mask[0, 0] == 0
    assert hole.sum() == 5 * 5
    assert (out[0][:, hole] == 0).all()
    assert (out[0][:, ~hole] != 0).all()


def test_output_independent_of_pixel_values_under_holes():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 4, 5, stride=2, padding=2)
    mask = random_mask((2, 3, 16, 16), 0.4)
    x = torch.randn(2, 3, 16, 16)
    y = torch.where(mask.bool(), x, torch.randn_like(x) * 1e3)
    assert torch.equal(layer(x, mask)[0], layer(y, mask)[0])


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation"), [(3, 1, 1), (5, 2, 1), (3, 2, 2), (7, 2, 1)]
)
def test_new_mask_is_the_dilation_of_the_valid_region(kernel, stride, dilation):
    mask = random_mask((2, 3, 20, 20), 0.85, seed=kernel)
    padding = dilation * (kernel // 2)
    weight = torch.randn(4, 3, kernel, kernel)
    _, new_mask = partial_conv2d(
        torch.randn(2, 3, 20, 20), mask, weight, None, stride, padding, dilation
    )
    any_channel = mask.amax(dim=1, keepdim=True)
    padded = F.pad(any_channel, (padding,) * 4)  # zero padding counts as hole
    expected = F.max_pool2d(padded, kernel, stride, 0, dilation)
    assert torch.equal(new_mask, expected)


def test_gradcheck_float64():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    mask = random_mask((1, 2, 6, 6), 0.5).double()
    assert torch.autograd.gradcheck(
        lambda x, w, b: partial_conv2d(x, mask, w, b, 2, 1, 1)[0], (x, w, b)
    )


def test_bf16_autocast_close_to_fp32_and_mask_math_in_float32(monkeypatch):
    torch.manual_seed(0)
    layer = PartialConv2d(300, 8, 3, padding=1)  # windows count up to 2700 > 256
    x = torch.rand(1, 300, 10, 10)
    mask = random_mask((1, 300, 10, 10), 0.3)
    ref, ref_mask = layer(x, mask)
    # The count convolution is the one with a (1, 1, kh, kw) weight: record what it returns
    # under autocast (its dtype is the one it ran in; autocast casts inside F.conv2d).
    counts = []
    conv2d = F.conv2d

    def recording_conv2d(inp, weight, *args, **kwargs):
        out = conv2d(inp, weight, *args, **kwargs)
        if weight.shape[:2] == (1, 1):
            counts.append(out)
        return out

    monkeypatch.setattr(F, "conv2d", recording_conv2d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, new_mask = layer(x, mask)
    monkeypatch.undo()
    assert len(counts) == 1 and counts[0].dtype == torch.float32
    exact = F.conv2d(mask.double().sum(1, keepdim=True), torch.ones(1, 1, 3, 3).double(), padding=1)
    assert exact.max() > 256 and torch.equal(counts[0].double(), exact)  # bf16 would round these
    assert out.dtype == torch.bfloat16 and new_mask.dtype == torch.float32
    assert torch.equal(new_mask, ref_mask)
    torch.testing.assert_close(out.float(), ref, rtol=3e-2, atol=3e-2)


def test_module_caches_no_state_and_is_a_conv2d():
    layer = PartialConv2d(3, 4, 3, padding=1)
    assert isinstance(layer, torch.nn.Conv2d)
    assert set(layer.state_dict()) == {"weight", "bias"}
    layer(torch.randn(1, 3, 8, 8), torch.ones(1, 1, 8, 8))
    layer(torch.randn(2, 3, 13, 7), torch.ones(2, 1, 13, 7))  # any size, no stale cache
    assert set(layer.state_dict()) == {"weight", "bias"} and not list(layer.buffers())


@pytest.mark.parametrize(
    ("mask", "error", "match"),
    [
        (torch.ones(1, 1, 8, 8, dtype=torch.uint8), TypeError, "float or bool"),
        (torch.ones(1, 2, 8, 8), ValueError, r"\(N, 1, H, W\) or \(N, 3, H, W\)"),
        (torch.ones(1, 1, 8, 9), ValueError, "must match"),
        (torch.ones(2, 1, 8, 8), ValueError, "must match"),
        (torch.ones(8, 8), ValueError, r"\(N, 1, H, W\)"),
    ],
)
def test_bad_masks_raise_clear_errors(mask, error, match):
    with pytest.raises(error, match=match):
        PartialConv2d(3, 4, 3)(torch.randn(1, 3, 8, 8), mask)


def test_bool_mask_equals_float_mask():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 4, 3, padding=1)
    x, mask = torch.randn(1, 3, 8, 8), random_mask((1, 1, 8, 8))
    assert torch.equal(layer(x, mask)[0], layer(x, mask.bool())[0])
