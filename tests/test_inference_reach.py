"""Every hole pixel gets a real prediction: the reach of a PConv UNet (its final mask), the
coarse pass's shrinking and upsampling, and photos up to 8000x6000 with holes of every
hole-ratio bucket and holes far wider than a tile."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from training_helpers import pytorch_default_init

from pconv_lightning.inference import Inpainter, TorchEngine
from pconv_lightning.inference.coarse import fill_from, shrink
from pconv_lightning.masks import StrokeMaskGenerator
from pconv_lightning.masks.buckets import BUCKET_EDGES, hole_ratio, ratio_bucket
from pconv_lightning.models import PConvUNet, unet
from pconv_lightning.models.reach import reach


@pytest.mark.parametrize("layers", [3, 4, 5])
def test_reach_is_the_networks_final_mask(layers):
    """Against the mask the network's last partial convolution actually returns (eq. 2)."""
    torch.manual_seed(layers)
    net = PConvUNet(layers=layers).eval()
    final: dict[str, torch.Tensor] = {}
    net.decoder[-1].register_forward_hook(lambda mod, args, out: final.update(mask=out[1]))
    rng = np.random.default_rng(layers)
    for left in (0, 30, 60, 90):
        mask = torch.ones(1, 1, 128, 192)
        mask[..., 8:120, left:180] = 0  # a hole wide enough to leave pixels unreached
        mask[..., :, :3] = torch.from_numpy(rng.random((128, 3)) > 0.5).float()
        with torch.inference_mode():
            out = net(torch.rand(1, 3, 128, 192), mask)
        r = reach(mask, layers)
        assert torch.equal(r, final["mask"])
        assert not out[(r == 0).expand_as(out)].any()  # unreached: exactly 0 (eq. 1, no bias)


def test_reach_is_everywhere_from_one_valid_pixel_at_the_networks_multiple():
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, 15, 0] = 1
    assert reach(mask, 4).all()


def test_shrink_averages_valid_pixels_only():
    image = np.zeros((3, 5, 3), np.uint8)
    image[..., 0] = [[10, 20, 30, 40, 50], [60, 70, 80, 90, 100], [0, 0, 0, 0, 7]]
    mask = np.array([[1, 0, 0, 0, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 1]], np.uint8)
    small, small_mask = shrink(image, mask, 2)
    # blocks: rows 0-1 x cols 0-1, 2-3, 4; row 2 x the same columns (edge blocks smaller)
    assert small_mask.tolist() == [[1, 0, 1], [0, 0, 1]]
    assert small[..., 0].tolist() == [[round((10 + 60 + 70) / 3), 0, 50], [0, 0, 7]]


def test_fill_from_is_bilinear_upsampling_at_the_chosen_pixels():
    rng = np.random.default_rng(0)
    small = rng.random((3, 7, 5), dtype=np.float32)
    where = rng.random((28, 20)) > 0.5
    target = np.full((3, 28, 20), -1.0, np.float32)
    fill_from(small, 4, target, where)
    reference = cv2.resize(small.transpose(1, 2, 0), (20, 28), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(target[:, where], reference.transpose(2, 0, 1)[:, where], atol=1e-5)
    assert (target[:, ~where] == -1).all()


@pytest.fixture
def slim_engine(monkeypatch) -> TorchEngine:
    """A 3-layer PConvUNet with random weights and 8 channels per stage: the mask arithmetic
    of the real network (same kernels, strides, padding) at a small fraction of the cost."""
    monkeypatch.setattr(unet, "ENCODER_CHANNELS", (8, 8, 8, 8))
    torch.manual_seed(0)
    return TorchEngine(pytorch_default_init(PConvUNet(layers=3)))


def photo(height: int, width: int) -> np.ndarray:
    """A smooth synthetic photo: colour ramps plus a little noise, never all black."""
    rng = np.random.default_rng(height + width)
    y, x = np.mgrid[0:height:8, 0:width:8].astype(np.float32)
    small = np.stack([x / width * 200 + 20, y / height * 200 + 20, (x + y) % 255], axis=2)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(image + rng.normal(0, 3, (height, width, 1)), 0, 255).astype(np.uint8)


def box_mask(height: int, width: int, ratio: float) -> np.ndarray:
    """One centred rectangular hole with the image's aspect covering ``ratio`` of it."""
    mask = np.ones((height, width), np.uint8)
    bh, bw = round(height * ratio**0.5), round(width * ratio**0.5)
    top, left = (height - bh) // 2, (width - bw) // 2
    mask[top : top + bh, left : left + bw] = 0
    return mask


def assert_every_hole_predicted(inpainter: Inpainter, image: np.ndarray, mask: np.ndarray):
    """No hole pixel of the raw prediction is exactly 0 in all channels (a random network's
    real prediction never is), and the composite keeps every valid pixel bit for bit."""
    predictions: list[np.ndarray] = []  # every predict call; the outermost returns last
    predict = inpainter.predict
    inpainter.predict = lambda *args: predictions.append(predict(*args)) or predictions[-1]
    out = inpainter(image, mask)
    holes = mask == 0
    black = (predictions[-1][:, holes] == 0).all(axis=0)
    assert not black.any(), f"{black.sum()} of {holes.sum()} hole pixels got no prediction"
    assert np.array_equal(out[~holes], image[~holes])


@pytest.mark.parametrize("bucket", range(len(BUCKET_EDGES) - 1))
def test_every_bucket_with_one_hole_far_wider_than_a_tile(slim_engine, bucket):
    """2400x1800, tiles of 256: the (0.5,0.6] hole is about 1800 pixels wide (7 tiles)."""
    ratio = (BUCKET_EDGES[bucket] + BUCKET_EDGES[bucket + 1]) / 2
    mask = box_mask(1800, 2400, ratio)
    assert ratio_bucket(hole_ratio(mask)) == bucket
    assert_every_hole_predicted(Inpainter(slim_engine, 256, 64), photo(1800, 2400), mask)


def test_whole_image_run_is_completed_by_the_coarse_pass(slim_engine):
    """One tile holds the whole image, but a 3-layer net reaches only ~30 pixels into a
    hole: the rest comes from the coarser passes."""
    mask = box_mask(512, 512, 0.55)
    inpainter = Inpainter(slim_engine, 512, 64)
    x = np.zeros((1, 3, 512, 512), np.float32)
    assert not reach(torch.from_numpy(mask[None, None].astype(np.float32)), 3).all()
    assert (slim_engine(x, mask[None, None].astype(np.float32)) == 0).any()
    assert_every_hole_predicted(inpainter, photo(512, 512), mask)


@pytest.mark.slow
def test_large_photos_with_strokes_and_wide_holes(slim_engine, height=6000, width=8000):
    """Strokes over the whole photo plus two blocks a quarter of it wide, tiles of 1024, on
    the largest photo this file promises (8000x6000: 48 tiles of 1024 and the coarse passes)."""
    mask = StrokeMaskGenerator(preset="thick")(height, width, np.random.default_rng(0))
    bh, bw = height // 4, width // 4
    mask[bh : 2 * bh, bw : 2 * bw] = 0
    mask[2 * bh : 3 * bh, 2 * bw : 3 * bw + bw // 2] = 0
    assert_every_hole_predicted(Inpainter(slim_engine, 1024, 128), photo(height, width), mask)
