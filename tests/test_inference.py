"""Inference at any size: hole padding, feathered tiles normalised per pixel, bit-exact valid
pixels, tiled against whole-image results, and the ``pconv inpaint`` command."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from training_helpers import SAMPLES, pytorch_default_init

from pconv_lightning.checkpoints.network import save_network
from pconv_lightning.cli import cli_main
from pconv_lightning.inference import Inpainter, TorchEngine
from pconv_lightning.inference.command import concat_strip
from pconv_lightning.inference.padding import padded_size, window
from pconv_lightning.inference.tiling import feather, predict_tiled, tiles
from pconv_lightning.masks import StrokeMaskGenerator
from pconv_lightning.models import PConvUNet


def random_engine(layers: int = 4, seed: int = 0) -> TorchEngine:
    """A network with PyTorch's default initialisation (eval BatchNorm is the identity)."""
    torch.manual_seed(seed)
    return TorchEngine(pytorch_default_init(PConvUNet(layers=layers)))


def photo() -> np.ndarray:
    return np.asarray(Image.open(SAMPLES / "val" / "kodim13.jpg").convert("RGB"))


def test_padding_is_hole_and_cropped_back():
    assert [padded_size(s, 16) for s in (1, 16, 17, 40)] == [16, 16, 32, 48]
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mask = np.ones((5, 7), np.uint8)
    x, m = window(image, mask, 0, 0, 16, 16)
    assert x.shape == (1, 3, 16, 16) and m.shape == (1, 1, 16, 16)
    np.testing.assert_allclose(x[0, :, :5, :7], image.transpose(2, 0, 1) / 255, atol=1e-7)
    assert m[0, 0, :5, :7].all() and not m[0, 0, 5:].any() and not m[0, 0, :, 7:].any()
    x, m = window(image, mask, 3, 4, 16, 16)  # a window past the bottom-right corner
    assert m.sum() == 2 * 3 and np.array_equal(
        np.rint(x[0, :, :2, :3] * 255), image[3:, 4:].transpose(2, 0, 1)
    )


def test_feathered_weights_are_positive_and_blend_to_one():
    w = feather(64, 16, ramp_start=True, ramp_end=True)
    assert (w > 0).all() and w.max() == 1 and np.allclose(w, w[::-1])
    assert np.all(np.diff(w[:16]) > 0) and (w[16:48] == 1).all()
    assert (feather(64, 16, False, False) == 1).all()
    height, width = 150, 230
    total = np.zeros((height, width))
    for t in tiles(height, width, 64, 16, 16):
        assert (t.height, t.width) == (64, 64) and (t.weight > 0).all()
        total[t.top : t.top + 64, t.left : t.left + 64] += t.weight
    assert total.min() > 0.5  # every pixel has a positive, well-conditioned weight sum
    # Normalisation per pixel: tiles that all predict the same value give exactly that value.
    image = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[::8, ::8] = 1  # every tile has holes and valid pixels
    acc, weights = predict_tiled(lambda x, m: np.full_like(x, 0.25), image, mask, 64, 16, 16)
    np.testing.assert_allclose(acc / weights, 0.25, rtol=1e-6)


def test_holes_wider_than_a_tile_get_the_coarse_prediction_not_black():
    """A partial-convolution network outputs 0 where a tile has no valid pixel; such tiles
    are skipped and their holes filled from the whole image shrunk to one tile."""

    class MeanOfValid:
        """Stands in for a PConv net: the mean of the valid pixels, 0 when there are none."""

        multiple = 16

        def __call__(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
            valid = m[0, 0] > 0
            means = [x[0, c][valid].mean() if valid.any() else 0.0 for c in range(3)]
            return np.broadcast_to(np.array(means, np.float32)[None, :, None, None], x.shape).copy()

    image = np.full((320, 320, 3), 200, np.uint8)
    mask = np.ones((320, 320), np.uint8)
    mask[40:280, 40:280] = 0  # 240 px wide: tiles of 64 inside it see no valid pixel
    engine = MeanOfValid()
    _, weights = predict_tiled(engine, image, mask, 64, 16, 16)
    assert not weights[140:180, 140:180].any()  # the centre is only in all-hole tiles
    out = Inpainter(engine, tile_size=64, overlap=16)(image, mask)
    assert np.abs(out[mask == 0].astype(int) - 200).max() <= 1  # no black patch


def test_tiles_without_holes_are_skipped():
    calls: list[tuple[int, int]] = []

    def predict(x: np.ndarray, m: np.ndarray) -> np.ndarray:
        calls.append(x.shape[2:])
        return np.zeros_like(x)

    image = np.zeros((200, 300, 3), np.uint8)
    mask = np.ones((200, 300), np.uint8)
    mask[5:10, 5:10] = 0  # in the first tile only
    _, weights = predict_tiled(predict, image, mask, 64, 16, 16)
    assert len(calls) == 1 and weights[:64, :64].all() and not weights[64:, 64:].any()
    calls.clear()
    predict_tiled(predict, image, np.ones((200, 300)), 64, 16, 16)
    assert not calls


@pytest.mark.parametrize(("height", "width", "tile"), [(37, 53, None), (150, 230, 64)])
def test_any_size_keeps_valid_pixels_bit_exact(height, width, tile):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = (rng.random((height, width)) > 0.3).astype(np.uint8)
    out = Inpainter(random_engine(), tile_size=tile, overlap=16)(image, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 1], image[mask == 1])
    assert (out[mask == 0] != image[mask == 0]).any()


def _psnr(a: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - ref) ** 2)))


def test_tiled_result_stays_close_to_the_whole_image_result():
    """PSNR over the holes of the raw prediction (peak 1, the image range), tiled against
    whole, on a 256x384 photo with a 38% stroke mask, 128-pixel tiles (15 of them) and
    32 pixels of overlap: 43.7 dB measured (38.5 before holes far from a valid pixel took the
    coarse pass, which tiled and whole share); 35 dB required.

    The network has default random weights (a 5-layer UNet: the deepest features see a
    whole 128 tile, so tiling does change its input). The check has teeth: the same tiles
    without overlap and feathering fall to 33.3 dB (seams), and another random network is at
    17 dB, so the threshold separates "close" from "different".
    """
    image = photo()
    mask = StrokeMaskGenerator(preset="thick")(*image.shape[:2], np.random.default_rng(3))
    holes = mask == 0
    engine = random_engine(layers=5)
    whole = Inpainter(engine, tile_size=512).predict(image, mask)[:, holes]

    def tiled(overlap: int) -> np.ndarray:
        return Inpainter(engine, tile_size=128, overlap=overlap).predict(image, mask)[:, holes]

    feathered, seams = _psnr(tiled(32), whole), _psnr(tiled(0), whole)
    other = _psnr(Inpainter(random_engine(layers=5, seed=1)).predict(image, mask)[:, holes], whole)
    assert feathered >= 35.0, feathered
    assert seams < feathered - 5 and other < 25, (seams, other)


def test_inpainter_checks_its_arguments():
    engine = random_engine()
    with pytest.raises(ValueError, match="multiple of the network's 2\\*\\*layers = 16, got 100"):
        Inpainter(engine, tile_size=100)
    with pytest.raises(ValueError, match="overlap"):
        Inpainter(engine, tile_size=64, overlap=64)
    with pytest.raises(ValueError, match="mask size 4x3 differs from the image's 5x3"):
        Inpainter(engine)(np.zeros((3, 5, 3), np.uint8), np.ones((3, 4), np.uint8))


def test_concat_layout():
    image = np.full((4, 5, 3), 10, np.uint8)
    result = np.full((4, 5, 3), 200, np.uint8)
    mask = np.ones((4, 5), np.uint8)
    mask[1, 2] = 0
    strip = concat_strip(image, mask, result)
    assert strip.shape == (4, 15, 3)
    assert (strip[:, :5] == 10).all() and (strip[:, 10:] == 200).all()
    assert (strip[1, 7] == 255).all() and strip[:, 5:10].sum() == 255 * 3


@pytest.fixture
def workspace(tmp_path):
    """Two photos, their masks by stem (white = hole), and a tiny checkpoint."""
    (tmp_path / "photos").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(2)
    for name, (h, w) in {"a": (40, 50), "b": (70, 33)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            tmp_path / "photos" / f"{name}.png"
        )
        hole = np.zeros((h, w), np.uint8)
        hole[10:20, 5:25] = 255
        Image.fromarray(hole).save(tmp_path / "masks" / f"{name}.png")
    torch.manual_seed(0)
    save_network(PConvUNet(layers=4), tmp_path / "net.safetensors")
    return tmp_path


def _inpaint(ws, *extra: str, image: str = "photos", mask: str = "masks") -> int:
    return cli_main(
        [
            "inpaint",
            f"--checkpoint={ws / 'net.safetensors'}",
            f"--image={ws / image}",
            f"--mask={ws / mask}",
            f"--output={ws / 'out'}",
            *extra,
        ]
    )


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_inpaint_folder_matches_masks_by_stem_and_writes_concat(workspace):
    assert _inpaint(workspace, "--concat") == 0
    for name in ("a", "b"):
        image = _load(workspace / "photos" / f"{name}.png")
        hole = _load(workspace / "masks" / f"{name}.png") == 255
        out = _load(workspace / "out" / f"{name}.png")
        assert np.array_equal(out[~hole], image[~hole]) and (out[hole] != image[hole]).any()
        strip = _load(workspace / "out" / f"{name}_concat.png")
        w = image.shape[1]
        assert strip.shape == (image.shape[0], 3 * w, 3)
        assert np.array_equal(strip[:, :w], image) and np.array_equal(strip[:, 2 * w :], out)
        assert np.array_equal(strip[:, w : 2 * w, 0] == 255, hole)


def test_mask_polarity(workspace):
    assert _inpaint(workspace) == 0
    white = _load(workspace / "out" / "a.png")
    inverted = 255 - _load(workspace / "masks" / "a.png")
    (workspace / "black").mkdir()
    Image.fromarray(inverted).save(workspace / "black" / "a.png")
    assert (
        _inpaint(workspace, "--mask-polarity=black-hole", image="photos/a.png", mask="black") == 0
    )
    assert np.array_equal(_load(workspace / "out" / "a.png"), white)
    # Read with the wrong polarity, the same mask makes a different (inverted) hole.
    assert _inpaint(workspace, image="photos/a.png", mask="black") == 0
    assert not np.array_equal(_load(workspace / "out" / "a.png"), white)


def test_one_mask_file_for_every_image_and_size_mismatch(workspace, capsys):
    assert _inpaint(workspace, mask="masks/a.png") == 1  # b.png is 33x70, the mask 50x40
    err = capsys.readouterr().err
    assert f"mask {workspace / 'masks' / 'a.png'} is 50x40 but image" in err
    assert f"{workspace / 'photos' / 'b.png'} is 33x70" in err and "1 of 2 image(s) failed" in err
    assert (workspace / "out" / "a.png").is_file() and not (workspace / "out" / "b.png").exists()


def test_inpaint_errors_name_the_files(workspace, capsys):
    (workspace / "masks" / "b.png").unlink()
    assert _inpaint(workspace) == 1  # reported; the other images are still done
    err = capsys.readouterr().err
    assert "no mask in" in err and str(workspace / "masks") in err and "b.png" in err
    (workspace / "photos" / "b.png").write_text("not an image")
    assert _inpaint(workspace, mask="masks/a.png") == 1
    err = capsys.readouterr().err
    assert f"cannot decode image {workspace / 'photos' / 'b.png'}" in err


class Payload:
    """Not plain data: loading it needs pickle."""


def test_inpaint_refuses_checkpoints_that_need_pickle(workspace, capsys):
    torch.save(
        {"state_dict": PConvUNet(layers=4).state_dict(), "x": Payload()}, workspace / "bad.ckpt"
    )
    code = cli_main(
        [
            "inpaint",
            f"--checkpoint={workspace / 'bad.ckpt'}",
            f"--image={workspace / 'photos'}",
            f"--mask={workspace / 'masks'}",
            f"--output={workspace / 'out'}",
        ]
    )
    assert code == 2 and "needs pickle" in capsys.readouterr().err
    assert not (workspace / "out").exists()


def test_help_documents_the_mask_polarity(capsys):
    with pytest.raises(SystemExit):
        cli_main(["inpaint", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "WHITE marks the HOLE" in text and "black-hole" in text
