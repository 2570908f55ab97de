"""RGB decoding of every image mode, unreadable files, and mask fitting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pconv_lightning.data.images import UnreadableImageError, load_rgb
from pconv_lightning.data.transforms import eval_transform, fit_mask, train_transform

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "train" / "kodim01.jpg"


def _write(path: Path, image: Image.Image, **kwargs: object) -> Path:
    image.save(path, **kwargs)
    return path


def test_modes_become_8bit_rgb(tmp_path: Path) -> None:
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))
    files = {
        "grey.png": Image.fromarray(grey, "L"),
        "bilevel.png": Image.fromarray(grey > 127),
        "cmyk.jpg": Image.new("CMYK", (64, 8), (0, 255, 255, 0)),
        "rgb.webp": Image.new("RGB", (64, 8), (10, 200, 30)),
        "wide.png": Image.fromarray(grey.astype(np.uint16) * 257),
    }
    for name, image in files.items():
        rgb = load_rgb(_write(tmp_path / name, image))
        assert rgb.mode == "RGB", name
        assert rgb.size == (64, 8), name
    wide = np.asarray(load_rgb(tmp_path / "wide.png"))
    with Image.open(tmp_path / "wide.png") as stored:
        assert stored.mode.startswith("I")
    np.testing.assert_array_equal(wide[..., 0], grey)  # 65535 -> 255, exact for k * 257
    cmyk = np.asarray(load_rgb(tmp_path / "cmyk.jpg")).astype(int)
    assert cmyk[0, 0, 0] > 200 and cmyk[0, 0, 1] < 60  # cyan-free, magenta+yellow = red


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 255, 0))  # fully transparent blue
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    for name, image, kwargs in [
        ("rgba.png", rgba, {}),
        ("p.png", palette, {"transparency": 0}),
        ("la.png", rgba.convert("LA"), {}),
    ]:
        rgb = np.asarray(load_rgb(_write(tmp_path / name, image, **kwargs)))
        assert tuple(rgb[0, 0]) == (255, 255, 255), name
    assert tuple(np.asarray(load_rgb(tmp_path / "p.png"))[1, 1]) == (0, 255, 0)


def test_bytes_are_decoded_like_files() -> None:
    data = SAMPLE.read_bytes()
    np.testing.assert_array_equal(np.asarray(load_rgb(data)), np.asarray(load_rgb(SAMPLE)))
    assert load_rgb(memoryview(data)).size == (384, 256)


def test_broken_files_raise_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "cut.jpg").write_bytes(SAMPLE.read_bytes()[:2000])
    for name in ("empty.jpg", "text.png", "cut.jpg"):
        with pytest.raises(UnreadableImageError, match=name):
            load_rgb(tmp_path / name)


def test_transforms_give_unit_range_squares() -> None:
    image = load_rgb(SAMPLE)
    for transform in (train_transform(128), eval_transform(128)):
        out = transform(image)
        assert out.shape == (3, 128, 128)
        assert out.min() >= 0 and out.max() <= 1


def test_fit_mask_nearest_keeps_binary() -> None:
    rng = np.random.default_rng(0)
    mask = (rng.random((37, 53)) > 0.5).astype(np.uint8)
    for height, width in [(256, 256), (16, 16), (100, 30)]:
        out = fit_mask(mask, height, width)
        assert out.shape == (height, width)
        assert out.dtype == np.uint8
        assert set(np.unique(out)) <= {0, 1}
    np.testing.assert_array_equal(fit_mask(mask, 74, 106)[::2, ::2], mask)


def test_fit_mask_thresholds_grey_values() -> None:
    grey255 = np.array([[0, 100, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(fit_mask(grey255, 1, 4), [[0, 0, 1, 1]])
    soft = np.array([[0.0, 0.4, 0.6, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(fit_mask(soft, 1, 4), [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="2-D"):
        fit_mask(np.ones((2, 2, 1)), 2, 2)
