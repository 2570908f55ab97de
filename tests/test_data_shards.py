"""litdata shards: writing them, streaming batches from them, resuming mid-epoch (loader and
Trainer)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from litdata import StreamingDataset

from pconv_lightning.data import InpaintingDataModule, load_rgb, write_shards
from pconv_lightning.data.shards import main

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
LITDATA_STAGING = ("DATA_OPTIMIZER_CACHE_FOLDER", "DATA_OPTIMIZER_DATA_CACHE_FOLDER")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCONV_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    out = tmp_path / "shards"
    assert write_shards(SAMPLES / "train", str(out), num_workers=1, start_method="fork") == 12
    return out


def test_writing_leaves_other_writers_staging_folders_alone(tmp_path, monkeypatch):
    """litdata's default staging folders ($TMPDIR/chunks, $TMPDIR/data) are shared by every
    process on the machine and emptied by each write: another writer's chunks there stay."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    others = [tmp_path / "tmp" / folder / "chunk-0-0.bin" for folder in ("chunks", "data")]
    for other in others:
        other.parent.mkdir(parents=True)
        other.write_bytes(b"another writer's chunk")
    for name in LITDATA_STAGING:
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "out"
    assert write_shards(SAMPLES / "train", str(out), num_workers=1, start_method="fork") == 12
    assert all(other.read_bytes() == b"another writer's chunk" for other in others)
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == ["chunks", "data"]
    assert not any(name in os.environ for name in LITDATA_STAGING)


def _module(shards: Path, **kwargs: object) -> InpaintingDataModule:
    args = {"image_size": 64, "batch_size": 4, "num_workers": 0, "backend": "litdata"} | kwargs
    return InpaintingDataModule(train=str(shards), val=str(shards), **args)


def _summary(batch: dict) -> tuple[list[str], torch.Tensor]:
    return batch["path"], batch["mask"]


def test_litdata_batches(shards: Path) -> None:
    dm = _module(shards)
    dm.setup("fit")
    loader = dm.train_dataloader()
    train = [dm.on_before_batch_transfer(b, 0) for b in loader]
    assert len(train) == 3
    assert sorted(p for b in train for p in b["path"]) == sorted(
        p.name for p in (SAMPLES / "train").iterdir()
    )
    val = next(iter(dm.val_dataloader()))
    for batch in [*train, val]:
        assert batch["image"].shape == (4, 3, 64, 64) and batch["image"].dtype == torch.float32
        assert batch["image"].min() >= 0 and batch["image"].max() <= 1
        assert batch["mask"].shape == (4, 1, 64, 64)
        assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
    assert val["bucket"].dtype == torch.long and val["touches_border"].dtype == torch.bool
    assert val["path"] == ["kodim01.jpg", "kodim02.jpg", "kodim03.jpg", "kodim04.jpg"]

    def masks_by_path(batches: list[dict]) -> dict[str, torch.Tensor]:
        return {p: m for b in batches for p, m in zip(b["path"], b["mask"], strict=True)}

    first, second = masks_by_path(train), masks_by_path(list(loader))
    assert any(not torch.equal(first[p], second[p]) for p in first)  # new masks each epoch


def test_litdata_loader_resumes_mid_epoch(shards: Path) -> None:
    full = _module(shards)
    full.setup("fit")
    expected = [_summary(b) for b in full.train_dataloader()]

    first = _module(shards)
    first.setup("fit")
    loader = first.train_dataloader()
    batches = iter(loader)
    assert _summary(next(batches))[0] == expected[0][0]
    state = loader.state_dict()

    resumed = _module(shards)
    resumed.setup("fit")
    loader = resumed.train_dataloader()
    loader.load_state_dict(state)
    rest = [_summary(b) for b in loader]
    assert [paths for paths, _ in rest] == [paths for paths, _ in expected[1:]]
    for (_, mask), (_, want) in zip(rest, expected[1:], strict=True):
        torch.testing.assert_close(mask, want)


def test_sharding_resizes_and_leaves_out_bad_files(tmp_path: Path) -> None:
    src = tmp_path / "src" / "class_a"
    src.mkdir(parents=True)
    shutil.copy(SAMPLES / "val" / "kodim13.jpg", src / "kodim13.jpg")
    (src / "broken.png").write_text("not a PNG")
    out = tmp_path / "small"
    count = write_shards(tmp_path / "src", str(out), 128, num_workers=1, start_method="fork")
    assert count == 1
    record = StreamingDataset(str(out))[0]
    assert record["path"] == "class_a/kodim13.jpg"
    dm = InpaintingDataModule(val=str(out), backend="litdata", image_size=32, num_workers=0)
    dm.setup("validate")
    assert dm.datasets["val"][0]["image"].shape == (3, 32, 32)
    assert load_rgb(record["image"]).size == (192, 128)


def test_command_line_writes_shards(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = [str(SAMPLES / "val"), str(tmp_path / "cli"), "--image-size", "64", "--num-workers", "1"]
    argv += ["--start-method", "fork"]
    assert main(argv) == 0
    assert "wrote 4 images" in capsys.readouterr().out
    assert len(StreamingDataset(str(tmp_path / "cli"))) == 4


def test_missing_shards_fail_naming_the_folder(tmp_path: Path) -> None:
    dm = InpaintingDataModule(train=str(tmp_path / "no_shards"), backend="litdata")
    with pytest.raises(FileNotFoundError, match="no_shards"):
        dm.setup("fit")


class _Recorder(LightningModule):
    """Records the paths of every training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[list[str]] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.seen.append(batch["path"])
        return batch["image"].mean() * self.weight.sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_resumes_litdata_mid_epoch(shards: Path, tmp_path: Path) -> None:
    def fit(ckpt_path: Path | None, callbacks: list) -> list[list[str]]:
        model = _Recorder()
        trainer = Trainer(
            max_epochs=1,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=bool(callbacks),
            callbacks=callbacks,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
        )
        trainer.fit(
            model, datamodule=_module(shards, batch_size=2, image_size=32), ckpt_path=ckpt_path
        )
        return model.seen

    every_2 = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
    full = fit(None, [every_2])
    assert len(full) == 6
    assert fit(tmp_path / "ckpt" / "epoch=0-step=2.ckpt", []) == full[2:]
