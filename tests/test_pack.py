"""The photo pack and the packed (GPU) data path: what is stored, what the workers send, what
the device-side augmentation makes of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_lightning.data.masking import TrainMasks
from pconv_lightning.data.pack import build_pack, load_images, load_pack, main, read_pack
from pconv_lightning.data.packed import PackedInpaintingDataModule, PackMaskDataset
from pconv_lightning.masks import StrokeMaskGenerator

# The module-scoped fixture is built once, on one xdist worker, for all the tests here.
pytestmark = pytest.mark.xdist_group("pack")

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "train"


def _expected(path: Path, size: int) -> np.ndarray:
    """Centre square of the shorter side (numpy slicing) scaled to ``size`` by PIL's Lanczos."""
    array = np.asarray(Image.open(path).convert("RGB"))
    height, width, _ = array.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(array[top : top + side, left : left + side])
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def png_pack(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "samples.pack"
    stats = build_pack(SAMPLES, out, size=64, fmt="png")
    assert stats["images"] == 12
    return out


def test_lossless_pack_holds_the_centre_squares(png_pack):
    names, images = load_pack(png_pack)
    assert names == sorted(p.name for p in SAMPLES.glob("*.jpg"))
    assert images.shape == (12, 3, 64, 64) and images.dtype == torch.uint8
    for name, image in zip(names, images, strict=True):
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), _expected(SAMPLES / name, 64))


def test_webp_pack_is_small_and_close(png_pack, tmp_path):
    stats = build_pack(SAMPLES, tmp_path / "w.pack", size=64, fmt="webp", quality=82)
    assert stats["megabytes"] < png_pack.stat().st_size / 1e6 / 2
    _, lossless = load_pack(png_pack)
    _, lossy = load_pack(tmp_path / "w.pack")
    mse = ((lossy.double() - lossless.double()) ** 2).mean()
    assert 10 * torch.log10(255**2 / mse) > 28  # dB


def test_folder_loads_like_a_pack(png_pack):
    names, images = load_images(SAMPLES, 64)
    assert (names, images.tolist()) == (load_pack(png_pack)[0], load_pack(png_pack)[1].tolist())


def test_copies_in_several_folders_are_packed_once(tmp_path, capsys):
    """A photo re-encoded (JPEG q50) and downscaled in a second folder is left out, its
    original kept; another photo of that folder goes in, and every photo of the first folder
    (its own copies too: only copies across folders are dropped)."""
    first, second = tmp_path / "pool", tmp_path / "extra"
    first.mkdir(), second.mkdir()
    for name in ("kodim01.jpg", "kodim02.jpg"):
        (first / name).write_bytes((SAMPLES / name).read_bytes())
    (first / "kodim02_again.jpg").write_bytes((SAMPLES / "kodim02.jpg").read_bytes())  # stays
    with Image.open(SAMPLES / "kodim01.jpg") as photo:
        smaller = photo.resize((photo.width * 4 // 5, photo.height * 4 // 5))
        smaller.save(second / "copy.jpg", quality=50)
    (second / "other.jpg").write_bytes((SAMPLES / "kodim03.jpg").read_bytes())
    stats = build_pack([first, second], tmp_path / "all.pack", size=64, fmt="png")
    assert (stats["images"], stats["dropped"]) == (4, 1)
    assert stats["sources"] == {
        "pool": {"photos": 3, "kept": 3, "copies_of": {}},
        "extra": {"photos": 2, "kept": 1, "copies_of": {"pool": 1}},
    }
    assert stats["copy_max"] < 6.0 < stats["distinct_min"]
    names, images = load_pack(tmp_path / "all.pack")
    assert names == [
        "pool/kodim01.jpg",
        "pool/kodim02.jpg",
        "pool/kodim02_again.jpg",
        "extra/other.jpg",
    ]
    assert read_pack(tmp_path / "all.pack")["copies"] == {"extra/copy.jpg": "pool/kodim01.jpg"}
    files = [tmp_path / name for name in names]
    for path, image in zip(files, images, strict=True):
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), _expected(path, 64))
    argv = [str(first), str(second), str(tmp_path / "cli.pack"), "--size=64", "--format=png"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "pool: 3 photos, 3 kept\n" in out
    assert "extra: 2 photos, 1 kept, 1 dropped as copies of photos kept (1 of pool)" in out
    assert "packed 4 images into" in out and "(1 copies dropped)" in out
    with pytest.raises(ValueError, match="distinct folder names"):
        build_pack([first, tmp_path / "x" / "pool"], tmp_path / "x.pack")


def test_bad_pack_arguments_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="--format"):
        build_pack(SAMPLES, tmp_path / "x.pack", fmt="gif")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_pack(tmp_path / "nowhere", tmp_path / "x.pack")
    with pytest.raises(FileNotFoundError, match=r"missing\.pack"):
        load_pack(tmp_path / "missing.pack")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a photo pack"):
        load_pack(tmp_path / "other.pt")


def test_workers_send_indices_and_the_masks_of_the_epoch():
    masks = TrainMasks(StrokeMaskGenerator(), seed=3)
    dataset = PackMaskDataset(["a", "b", "c"], masks, 32)
    item = dataset[(2, 1)]
    assert item["index"] == 1 and item["path"] == "b" and item["mask"].dtype == torch.uint8
    np.testing.assert_array_equal(item["mask"][0].numpy(), masks(1, 2, 32, 32).mask)
    assert not np.array_equal(item["mask"][0].numpy(), masks(1, 3, 32, 32).mask)


def _module(pack: Path, **kwargs) -> PackedInpaintingDataModule:
    module = PackedInpaintingDataModule(
        train=str(pack), image_size=64, batch_size=4, num_workers=0, pin_memory=False, **kwargs
    )
    module.setup("fit")
    return module


def test_transfer_gathers_the_photos_unchanged_without_augmentation(png_pack):
    module = _module(png_pack, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=False)
    batch = next(iter(module.train_dataloader()))
    assert set(batch) >= {"index", "mask", "path"} and batch["mask"].dtype == torch.uint8
    batch = module.on_after_batch_transfer(module.on_before_batch_transfer(batch, 0), 0)
    _, images = load_pack(png_pack)
    expected = images[batch["index"]].float() / 255
    torch.testing.assert_close(batch["image"], expected, atol=1e-5, rtol=0)
    assert batch["mask"].dtype == torch.float32 and set(batch["mask"].unique().tolist()) <= {0, 1}


def test_flip_mirrors_some_photos_and_crops_stay_in_range(png_pack):
    torch.manual_seed(0)
    module = _module(png_pack, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), max_train_samples=8)
    assert len(module.datasets["train"]) == 8 and module.pack.shape[0] == 8
    index = torch.arange(8)
    batch = {"index": index, "mask": torch.ones(8, 1, 64, 64, dtype=torch.uint8)}
    out = module.on_after_batch_transfer(batch, 0)["image"]
    source = module.pack[index].float() / 255
    same = [(o - s).abs().max() < 1e-5 for o, s in zip(out, source, strict=True)]
    mirrored = [(o - s.flip(-1)).abs().max() < 1e-5 for o, s in zip(out, source, strict=True)]
    assert all(a or b for a, b in zip(same, mirrored, strict=True))
    assert any(mirrored) and any(same)
    module = _module(png_pack, crop_scale=(0.3, 0.5))
    out = module.on_after_batch_transfer(batch, 0)["image"]
    assert out.shape == (8, 3, 64, 64) and out.min() >= 0 and out.max() <= 1


def test_bad_packed_arguments_fail_early(png_pack):
    with pytest.raises(ValueError, match="crop_scale"):
        PackedInpaintingDataModule(train=str(png_pack), crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="fewer than batch_size"):
        _module(png_pack, max_train_samples=2)
