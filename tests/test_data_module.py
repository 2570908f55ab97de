"""InpaintingDataModule with the folder backend: batches, masks, bad files, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from jsonargparse import ArgumentParser
from lightning.pytorch import LightningModule, Trainer

from pconv_lightning.data import InpaintingDataModule
from pconv_lightning.data.masking import interleave_cells
from pconv_lightning.masks import (
    EvalMask,
    StrokeMaskGenerator,
    make_evaluation_set,
    read_manifest,
)

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCONV_CACHE_DIR", str(tmp_path / "cache"))


def _module(**kwargs: object) -> InpaintingDataModule:
    args = {"image_size": 64, "batch_size": 4, "num_workers": 0, "seed": 3} | kwargs
    return InpaintingDataModule(**args)


BAD = {"kodim01b_cut.jpg", "kodim02b_empty.jpg", "kodim03b_text.png"}


def test_train_and_val_batches() -> None:
    dm = _module(train=str(SAMPLES / "train"), val=str(SAMPLES / "val"))
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 3  # 12 images, batch 4
    val = next(iter(dm.val_dataloader()))
    for batch in [*batches, val]:
        batch = dm.on_before_batch_transfer(batch, 0)
        assert batch["image"].shape == (4, 3, 64, 64) and batch["image"].dtype == torch.float32
        assert batch["image"].min() >= 0 and batch["image"].max() <= 1
        assert batch["mask"].shape == (4, 1, 64, 64) and batch["mask"].dtype == torch.float32
        assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
        assert all(Path(p).is_file() for p in batch["path"])
    assert "bucket" not in batches[0]
    assert val["bucket"].dtype == torch.long and val["touches_border"].dtype == torch.bool
    assert sorted(Path(p).name for b in batches for p in b["path"]) == sorted(
        p.name for p in (SAMPLES / "train").iterdir()
    )


def test_masks_are_deterministic_and_change_per_epoch() -> None:
    by_path: dict[int, dict[str, torch.Tensor]] = {}  # epoch -> the whole epoch's masks

    def masks(epoch: int) -> tuple[list[str], torch.Tensor]:
        dm = _module(train=str(SAMPLES / "train"), mask_generator=StrokeMaskGenerator("thick"))
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        batches = list(loader)
        by_path[epoch] = {p: m for b in batches for p, m in zip(b["path"], b["mask"], strict=True)}
        return batches[0]["path"], batches[0]["mask"]

    paths, first = masks(0)
    paths_again, again = masks(0)
    assert paths == paths_again
    torch.testing.assert_close(first, again)
    epoch0 = by_path[0]
    paths_next, other = masks(1)
    assert paths_next != paths or not torch.equal(first, other)
    assert (first == 0).any()
    # The same photo gets another mask in the next epoch (the shuffle alone is not enough).
    assert len(epoch0) == 12 and by_path[1].keys() == epoch0.keys()
    assert all(not torch.equal(epoch0[p], by_path[1][p]) for p in epoch0)


def test_eval_masks_from_manifest_are_matched_cyclically(tmp_path: Path) -> None:
    make_evaluation_set(tmp_path / "masks", per_cell=1, size=32, seed=0)
    entries = read_manifest(tmp_path / "masks")
    dm = _module(val=str(SAMPLES / "train"), eval_masks=str(tmp_path / "masks"), batch_size=5)
    dm.setup("validate")
    batches = list(dm.val_dataloader())
    buckets = torch.cat([b["bucket"] for b in batches]).tolist()
    borders = torch.cat([b["touches_border"] for b in batches]).tolist()
    expected = [entries[i % len(entries)] for i in range(12)]
    assert buckets == [e.bucket for e in expected]
    assert borders == [e.touches_border for e in expected]
    assert set(batches[0]["mask"].unique().tolist()) == {0.0, 1.0}  # 32 -> 64 px, still binary


def test_eval_repeats_pair_every_image_with_several_masks() -> None:
    """4 val photos x 6 repeats cover all 24 shipped evaluation masks, every bucket."""
    entries = read_manifest(SAMPLES / "eval_masks")
    dm = _module(val=str(SAMPLES / "val"), eval_masks=str(SAMPLES / "eval_masks"), eval_repeats=6)
    dm.setup("validate")
    batches = list(dm.val_dataloader())
    paths = [Path(p).name for b in batches for p in b["path"]]
    buckets = torch.cat([b["bucket"] for b in batches]).tolist()
    assert len(paths) == 24
    assert paths[:5] == ["kodim13.jpg", "kodim14.jpg", "kodim15.jpg", "kodim16.jpg", "kodim13.jpg"]
    assert buckets == [e.bucket for e in entries]
    assert sorted(set(buckets)) == [0, 1, 2, 3, 4, 5]


def test_interleave_cells_visits_each_cell_in_turn() -> None:
    """Hand-worked: cells (0, inner) x3, (0, border) x1, (1, inner) x2, in manifest order."""
    rows = [(0, False), (0, False), (0, True), (1, False), (0, False), (1, False)]
    entries = [EvalMask(Path(f"m{k}.png"), 0.1, b, t) for k, (b, t) in enumerate(rows)]
    order = [e.path.stem for e in interleave_cells(entries)]
    assert order == ["m0", "m2", "m3", "m1", "m5", "m4"]


def test_eval_masks_by_cell_span_every_cell_in_the_first_images() -> None:
    """The shipped manifest is sorted by bucket: 12 val images take 12 masks of buckets 0-2 in
    manifest order, and one of each of the 12 bucket x border cells by cell."""
    masks = str(SAMPLES / "eval_masks")
    cells = {}
    for by_cell in (False, True):
        dm = _module(val=str(SAMPLES / "train"), eval_masks=masks, eval_masks_by_cell=by_cell)
        dm.setup("validate")
        batches = list(dm.val_dataloader())
        buckets = torch.cat([b["bucket"] for b in batches]).tolist()
        borders = torch.cat([b["touches_border"] for b in batches]).tolist()
        cells[by_cell] = list(zip(buckets, borders, strict=True))
    assert sorted({b for b, _ in cells[False]}) == [0, 1, 2]
    assert cells[True] == [(b, t) for b in range(6) for t in (False, True)]


def test_eval_masks_from_generator_are_fixed() -> None:
    dm = _module(val=str(SAMPLES / "val"), eval_mask_generator=StrokeMaskGenerator("medium"))
    dm.setup("validate")
    first, second = next(iter(dm.val_dataloader())), next(iter(dm.val_dataloader()))
    torch.testing.assert_close(first["mask"], second["mask"])
    assert ((first["bucket"] >= -1) & (first["bucket"] < 6)).all()


def test_bad_files_are_reported_once_and_replaced(
    broken_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = _module(val=str(broken_dir), batch_size=7)
    dm.setup("validate")
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            batch = dm.on_before_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert batch["image"].shape == (7, 3, 64, 64)
    assert not BAD & {Path(p).name for p in batch["path"]}
    assert {Path(p).name for p in dm.datasets["val"].skipped_files} == BAD
    assert {Path(p).name for p in dm.skipped_files} == BAD
    for name in BAD:
        assert sum(name in record.getMessage() for record in caplog.records) == 1
    with caplog.at_level(logging.WARNING):
        dm.teardown("validate")
    assert "3 unreadable image files were skipped" in caplog.text


def test_bad_files_found_in_workers_reach_the_module(broken_dir: Path) -> None:
    dm = _module(val=str(broken_dir), batch_size=1, num_workers=2)
    dm.setup("validate")
    seen = []
    for batch in dm.val_dataloader():
        seen += dm.on_before_batch_transfer(batch, 0)["path"]
    assert len(seen) == 7 and not BAD & {Path(p).name for p in seen}
    assert {Path(p).name for p in dm.skipped_files} == BAD
    assert dm.datasets["val"].skipped_files == dm.skipped_files  # later workers inherit them
    assert dm.state_dict() == {"skipped_files": sorted(dm.skipped_files), "position": [0, 0]}


def test_sources_that_are_missing_or_empty_fail_at_setup(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        _module(train=str(tmp_path / "no_such_folder")).setup("fit")
    (tmp_path / "blank").mkdir()
    with pytest.raises(ValueError, match="blank"):
        _module(train=str(tmp_path / "blank")).setup("fit")
    with pytest.raises(ValueError, match="needs a `train` source"):
        _module(val=str(SAMPLES / "val")).setup("fit")
    with pytest.raises(ValueError, match="fewer than batch_size"):
        _module(train=str(SAMPLES / "val"), batch_size=8).setup("fit")
    with pytest.raises(ValueError, match="backend"):
        _module(backend="tar")


def test_max_samples_limit_the_splits() -> None:
    dm = _module(train=str(SAMPLES / "train"), val=str(SAMPLES / "val"), max_train_samples=4)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 4 and len(dm.datasets["val"]) == 4
    assert np.all([Path(p).exists() for p in next(iter(dm.train_dataloader()))["path"]])


def test_mask_generator_is_chosen_by_class_path() -> None:
    parser = ArgumentParser()
    parser.add_class_arguments(InpaintingDataModule, "data")
    config = parser.parse_object(
        {
            "data": {
                "train": str(SAMPLES / "train"),
                "mask_generator": {
                    "class_path": "pconv_lightning.masks.StrokeMaskGenerator",
                    "init_args": {"preset": "thin"},
                },
                "backend": "folder",
            }
        }
    )
    dm = parser.instantiate(config).data
    assert isinstance(dm.mask_generator, StrokeMaskGenerator)
    assert dm.mask_generator.preset == "thin"
    assert dm.hparams.train == str(SAMPLES / "train")


def test_fit_with_a_trainer_collects_skipped_files(broken_dir: Path, tmp_path: Path) -> None:
    class Probe(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            assert "skipped" not in batch
            return (batch["image"] * batch["mask"]).mean() * self.weight.sum()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = _module(train=str(broken_dir), batch_size=7)
    trainer = Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Probe(), datamodule=dm)
    assert {Path(p).name for p in dm.skipped_files} == BAD


def test_images_above_the_pixel_cap_are_skipped_before_decoding(
    broken_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 100-megapixel photo (the app's cap is 40) is reported and counted as skipped; its
    pixels are never decoded."""
    from PIL import Image

    from pconv_lightning.data.images import MAX_PIXELS

    Image.new("L", (10_000, 10_000)).save(broken_dir / "kodim00_huge.png")
    decode = Image.Image.load

    def load(im: Image.Image) -> object:
        assert im.width * im.height <= MAX_PIXELS, "decoded an image above the cap"
        return decode(im)

    monkeypatch.setattr(Image.Image, "load", load)
    dm = _module(val=str(broken_dir), batch_size=4)
    dm.setup("validate")
    with caplog.at_level(logging.WARNING):
        for batch in dm.val_dataloader():
            assert "kodim00_huge.png" not in {Path(p).name for p in batch["path"]}
            dm.on_before_batch_transfer(batch, 0)
    assert "kodim00_huge.png" in {Path(p).name for p in dm.skipped_files}
    assert "10000x10000 = 100,000,000 pixels, more than the 40,000,000 allowed" in caplog.text
