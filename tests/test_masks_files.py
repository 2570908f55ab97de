"""FileMaskGenerator on mask folders the tests write (and on the NVIDIA masks when present)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from PIL import Image

from pconv_lightning.masks import FileMaskGenerator, mask_rng

NVIDIA = SHARED_DATA / "nvidia_irregular_masks_test"


def write_folder(root: Path) -> Path:
    """Binary, grey (non-binary), JPEG, too small, too large and nested masks; white = hole."""
    rng = np.random.default_rng(0)
    (root / "nested").mkdir(parents=True)
    binary = np.zeros((64, 80), np.uint8)
    binary[10:30, 20:50] = 255
    Image.fromarray(binary).save(root / "binary.png")
    ramp = np.tile(np.linspace(0, 255, 80).astype(np.uint8), (64, 1))
    Image.fromarray(ramp).save(root / "grey.png")
    Image.fromarray(rng.integers(0, 256, (64, 80), dtype=np.uint8)).save(root / "noisy.jpg")
    Image.fromarray(binary[:20, :30]).save(root / "small.png")
    Image.fromarray(np.kron(binary, np.ones((4, 4), np.uint8))).convert("RGB").save(
        root / "nested" / "large.PNG"
    )
    (root / "notes.txt").write_text("not a mask")
    return root


@pytest.mark.parametrize("resize", ["crop", "resize"])
@pytest.mark.parametrize("augment", [True, False])
@pytest.mark.parametrize("size", [(48, 48), (37, 101), (200, 150)])
def test_outputs_are_strictly_binary_and_sized(tmp_path, resize, augment, size) -> None:
    generator = FileMaskGenerator(write_folder(tmp_path), resize=resize, augment=augment)
    assert len(generator.files) == 5
    for index in range(12):
        mask = generator(*size, mask_rng(0, index))
        assert mask.dtype == np.uint8 and mask.shape == size
        assert set(np.unique(mask)) <= {0, 1}


def test_nearest_neighbour_only_and_polarity(tmp_path) -> None:
    blocks = (np.random.default_rng(1).random((16, 16)) > 0.5).astype(np.uint8) * 255
    Image.fromarray(blocks).save(tmp_path / "blocks.png")
    generator = FileMaskGenerator(tmp_path, resize="resize", augment=False)
    mask = generator(64, 64, mask_rng(0, 0))
    np.testing.assert_array_equal(mask, np.kron(blocks == 0, np.ones((4, 4))).astype(np.uint8))
    black_holes = FileMaskGenerator(tmp_path, hole_value=0, resize="resize", augment=False)
    np.testing.assert_array_equal(black_holes(64, 64, mask_rng(0, 0)), 1 - mask)
    centre = FileMaskGenerator(tmp_path, augment=False)(8, 8, mask_rng(0, 0))
    np.testing.assert_array_equal(centre, (blocks[4:12, 4:12] == 0).astype(np.uint8))


def test_augmentation_changes_masks_and_follows_the_seed(tmp_path) -> None:
    generator = FileMaskGenerator(write_folder(tmp_path), dilation=(9, 15))
    files = generator.files
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "late.png")
    assert generator.files is files and len(files) == 5  # the list is scanned once
    a = [generator(48, 48, mask_rng(5, i)) for i in range(8)]
    b = [generator(48, 48, mask_rng(5, i)) for i in range(8)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert len({x.tobytes() for x in a}) > 1
    params = [generator.sample_params(48, 48, mask_rng(5, i)) for i in range(40)]
    assert {p.index for p in params} == set(range(5))
    assert all(9 <= p.dilation <= 15 and abs(p.angle) <= 180 for p in params)


def test_dilation_grows_the_hole(tmp_path) -> None:
    write_folder(tmp_path)
    plain = FileMaskGenerator(tmp_path, augment=False, resize="resize")
    params = plain.sample_params(64, 80, mask_rng(0, 0))
    wider = type(params)(params.index, 9, 0.0, (0.0, 0.0), (0.5, 0.5))
    before, after = plain.render(64, 80, params), plain.render(64, 80, wider)
    assert (after == 0).sum() > (before == 0).sum() and not ((before == 0) & (after == 1)).any()


def test_empty_or_missing_folder_is_named(tmp_path) -> None:
    (tmp_path / "only.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        FileMaskGenerator(tmp_path)(32, 32, mask_rng(0, 0))
    with pytest.raises(FileNotFoundError, match="missing"):
        FileMaskGenerator(tmp_path / "missing")(32, 32, mask_rng(0, 0))
    with pytest.raises(ValueError, match="resize"):
        FileMaskGenerator(tmp_path, resize="bilinear")
    with pytest.raises(ValueError, match="dilation"):
        FileMaskGenerator(tmp_path, dilation=(49, 9))


@pytest.mark.prerequisite(NVIDIA.is_dir(), reason="shared NVIDIA masks not available")
def test_nvidia_masks() -> None:
    generator = FileMaskGenerator(NVIDIA)
    assert len(generator.files) >= 1000
    for index in range(4):
        mask = generator(256, 256, mask_rng(0, index))
        assert mask.shape == (256, 256) and set(np.unique(mask)) <= {0, 1}
