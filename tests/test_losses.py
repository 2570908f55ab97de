"""The paper's loss terms against hand-computed cases and loop references; VGG16 loading from
files the tests write (nothing downloads)."""

from __future__ import annotations

import itertools
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.models import vgg16
from training_helpers import SAMPLES

from pconv_lightning.losses import InpaintingLoss, LossWeights, gram_matrix, total_variation
from pconv_lightning.vgg.derive import weights_dir
from pconv_lightning.vgg.features import VGG16Features


class Identity(nn.Module):
    """A one-level 'feature extractor' so perceptual and style terms can be worked by hand."""

    def forward(self, x):
        return [x]


def test_every_term_on_a_hand_computed_case():
    output = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]]]])
    target = torch.zeros(1, 1, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])  # one hole pixel at (0, 1)
    terms = InpaintingLoss(LossWeights(), Identity())(output, target, mask)
    # comp = [[0, 0.2], [0, 0]]; P (hole dilated by 3x3) covers the whole 2x2 image.
    expected = {
        "valid": (0.1 + 0.3 + 0.4) / 4,
        "hole": 0.2 / 4,
        "perceptual": (0.1 + 0.2 + 0.3 + 0.4) / 4 + 0.2 / 4,
        "style_out": (0.01 + 0.04 + 0.09 + 0.16) / 4,  # Gram 1x1 with K = 1/(C*H*W) = 1/4
        "style_comp": 0.04 / 4,
        "tv": (0.2 + 0.2) / 4,  # |0.2 - 0| across (0,0)-(0,1) and (0,1)-(1,1)
    }
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-6), name
    w = LossWeights()
    total = (
        w.valid * expected["valid"]
        + w.hole * expected["hole"]
        + w.perceptual * expected["perceptual"]
        + w.style * (expected["style_out"] + expected["style_comp"])
        + w.tv * expected["tv"]
    )
    assert terms["total"].item() == pytest.approx(total, rel=1e-6)


def test_total_is_the_weighted_sum_for_other_weights():
    torch.manual_seed(0)
    weights = LossWeights(valid=2.0, hole=3.0, perceptual=0.5, style=7.0, tv=0.3)
    out, gt = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    mask = (torch.rand(2, 1, 16, 16) > 0.5).float()
    t = InpaintingLoss(weights, Identity())(out, gt, mask)
    w = asdict(weights)
    expected = sum(w[k] * t[k] for k in ("valid", "hole", "perceptual", "tv"))
    expected = expected + w["style"] * (t["style_out"] + t["style_comp"])
    torch.testing.assert_close(t["total"], expected)


def test_tv_against_a_pixel_pair_loop():
    torch.manual_seed(0)
    comp = torch.rand(2, 3, 7, 6, dtype=torch.float64)
    mask = (torch.rand(2, 1, 7, 6) > 0.8).double()
    expected = 0.0
    for n in range(2):
        hole = {(i, j) for i, j in itertools.product(range(7), range(6)) if mask[n, 0, i, j] == 0}
        region = {(i + a, j + b) for i, j in hole for a in (-1, 0, 1) for b in (-1, 0, 1)}
        region = {(i, j) for i, j in region if 0 <= i < 7 and 0 <= j < 6}
        for (i, j), (di, dj) in itertools.product(region, [(0, 1), (1, 0)]):
            if (i + di, j + dj) in region:
                expected += (comp[n, :, i + di, j + dj] - comp[n, :, i, j]).abs().sum().item()
    assert total_variation(comp, mask).item() == pytest.approx(expected / comp.numel(), rel=1e-12)


def test_gram_matrix_against_a_loop_and_in_float32_under_autocast():
    torch.manual_seed(0)
    f = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    expected = torch.zeros(2, 3, 3, dtype=torch.float64)
    for n, a, b in itertools.product(range(2), range(3), range(3)):
        expected[n, a, b] = sum(f[n, a, i, j] * f[n, b, i, j] for i in range(4) for j in range(5))
    torch.testing.assert_close(gram_matrix(f).double(), expected / (3 * 4 * 5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gram_matrix(f.bfloat16()).dtype == torch.float32


def test_vgg_runs_twice_and_gradients_reach_only_the_output():
    calls = []
    with pytest.warns(UserWarning, match="random weights"):
        vgg = VGG16Features(weights=None)
    vgg.register_forward_hook(lambda *_: calls.append(1))
    out = torch.rand(2, 3, 32, 32, requires_grad=True)
    gt = torch.rand(2, 3, 32, 32)
    mask = torch.ones(2, 1, 32, 32)
    mask[:, :, 8:20, 8:20] = 0
    terms = InpaintingLoss(LossWeights(), vgg)(out, gt, mask)
    assert len(calls) == 2
    terms["total"].backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_perceptual_and_style_match_separate_vgg_passes():
    """The batched pass over (I_out, I_comp) equals three separate passes."""
    torch.manual_seed(0)
    with pytest.warns(UserWarning):
        vgg = VGG16Features(weights=None)
    out, gt = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    mask = torch.ones(1, 1, 32, 32)
    mask[..., :16, :] = 0
    comp = mask * gt + (1 - mask) * out
    f_out, f_comp, f_gt = vgg(out), vgg(comp), vgg(gt)
    l1 = nn.functional.l1_loss
    perceptual = sum(l1(a, c) + l1(b, c) for a, b, c in zip(f_out, f_comp, f_gt, strict=True))
    style_out = sum(l1(gram_matrix(a), gram_matrix(c)) for a, c in zip(f_out, f_gt, strict=True))
    terms = InpaintingLoss(LossWeights(), vgg)(out, gt, mask)
    torch.testing.assert_close(terms["perceptual"], perceptual, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms["style_out"], style_out, rtol=1e-5, atol=1e-8)


def test_vgg_features_normalise_and_stop_at_pool3(tmp_path):
    torch.manual_seed(0)
    reference = vgg16(weights=None).eval()
    path = tmp_path / "vgg16.pth"
    torch.save(reference.state_dict(), path)
    feats = VGG16Features(weights=path)
    x = torch.rand(1, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        h = (x - mean) / std
        expected = []
        for i, layer in enumerate(reference.features[:17]):
            h = layer(h)
            if i in (4, 9, 16):
                expected.append(h)
        got = feats(x)
    assert [g.shape[1] for g in got] == [64, 128, 256]
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)
    assert not any(p.requires_grad for p in feats.parameters())
    feats.train()
    assert not feats.training


def test_vgg_features_from_a_features_only_file_and_bad_files(tmp_path):
    torch.manual_seed(1)
    features = vgg16(weights=None).features
    torch.save(features.state_dict(), tmp_path / "features.pth")
    loaded = VGG16Features(weights=tmp_path / "features.pth")
    torch.testing.assert_close(loaded.slices[2][0].weight, features[10].weight)
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        VGG16Features(weights=tmp_path / "missing.pth")
    torch.save({"0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"bad\.pth"):
        VGG16Features(weights=tmp_path / "bad.pth")


def test_imagenet_weights_load_through_torchvision_cache(tmp_path, monkeypatch):
    """weights='imagenet' goes through torchvision's IMAGENET1K_V1 loader; a file placed in
    the hub cache stands in for the download."""
    torch.manual_seed(2)
    reference = vgg16(weights=None)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / "vgg16-397923af.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    feats = VGG16Features(weights="imagenet")
    torch.testing.assert_close(feats.slices[0][0].weight, reference.features[0].weight)


def test_loss_on_a_real_photo_with_imagenet_weights_matches_float64():
    """The full L_total on a Kodak photo and a real mask, with the ImageNet VGG16, against an
    independent float64 computation: VGG16 to pool3 written with F.conv2d from the weights
    file, I_comp, Gram matrices, and P for L_tv dilated by shifting in numpy."""
    size = 64
    photo = Image.open(SAMPLES / "val" / "kodim13.jpg").convert("RGB").resize((size, size))
    gt64 = torch.from_numpy(np.asarray(photo, np.float64) / 255).permute(2, 0, 1)[None]
    hole_png = Image.open(SAMPLES / "eval_masks" / "b2_inner_0000.png").resize((size, size))
    hole = np.asarray(hole_png) > 127
    mask64 = torch.from_numpy(~hole).double()[None, None]
    torch.manual_seed(0)
    out64 = (gt64.flip(-1) * 0.7 + 0.1 * torch.rand_like(gt64)).clamp(0, 1)

    terms = InpaintingLoss(LossWeights(), VGG16Features("imagenet"))(
        out64.float(), gt64.float(), mask64.float()
    )

    state = torch.load(weights_dir() / "vgg16_pool3.pth", weights_only=True)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)

    def pools(x):
        h, feats = (x - mean) / std, []
        for block in ((0, 2), (5, 7), (10, 12, 14)):
            for i in block:
                h = torch.relu(
                    F.conv2d(
                        h, state[f"{i}.weight"].double(), state[f"{i}.bias"].double(), padding=1
                    )
                )
            h = F.max_pool2d(h, 2)
            feats.append(h)
        return feats

    def gram(f):
        c, hw = f.shape[1], f.shape[2] * f.shape[3]
        flat = f[0].reshape(c, hw)
        return flat @ flat.T / (c * hw)

    comp64 = mask64 * gt64 + (1 - mask64) * out64
    n = gt64.numel()
    valid = (mask64 * (out64 - gt64)).abs().sum() / n
    hole_l1 = ((1 - mask64) * (out64 - gt64)).abs().sum() / n
    f_out, f_comp, f_gt = pools(out64), pools(comp64), pools(gt64)
    perceptual = sum(
        (o - g).abs().mean() + (c - g).abs().mean()
        for o, c, g in zip(f_out, f_comp, f_gt, strict=True)
    )
    style_out = sum((gram(o) - gram(g)).abs().mean() for o, g in zip(f_out, f_gt, strict=True))
    style_comp = sum((gram(c) - gram(g)).abs().mean() for c, g in zip(f_comp, f_gt, strict=True))
    padded = np.pad(hole, 1)  # P: any hole pixel in the 3x3 neighbourhood
    region = np.zeros_like(hole)
    for dy, dx in itertools.product(range(3), range(3)):
        region |= padded[dy : dy + size, dx : dx + size]
    region = torch.from_numpy(region)
    c = comp64[0]
    both_h = (region[:, 1:] & region[:, :-1]).double()
    both_v = (region[1:, :] & region[:-1, :]).double()
    tv = ((c[:, :, 1:] - c[:, :, :-1]).abs() * both_h).sum()
    tv = (tv + ((c[:, 1:, :] - c[:, :-1, :]).abs() * both_v).sum()) / n
    expected = {
        "valid": valid,
        "hole": hole_l1,
        "perceptual": perceptual,
        "style_out": style_out,
        "style_comp": style_comp,
        "tv": tv,
        "total": valid
        + 6 * hole_l1
        + 0.05 * perceptual
        + 120 * (style_out + style_comp)
        + 0.1 * tv,
    }
    for key, value in expected.items():
        assert terms[key].item() == pytest.approx(value.item(), rel=2e-5), key
    assert perceptual > 0.5 and style_out > 1e-3  # real features, not a degenerate case
