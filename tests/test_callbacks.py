"""The image grid (layout, loggers, no mode flips), the bucket table, W&B config logging and
checkpoints that survive an interrupted save."""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image
from test_module import tiny_data, tiny_module, tiny_trainer
from training_helpers import CONFIGS, tiny_args

from pconv_lightning.callbacks import BucketMetricsTable, ImageGridLogger, result_grid
from pconv_lightning.callbacks.image_grid import COLUMNS, HEADER, labelled, to_uint8
from pconv_lightning.checkpoints.atomic import AtomicCheckpointIO
from pconv_lightning.cli import cli_main


def test_result_grid_columns():
    image = torch.rand(2, 3, 8, 8)
    mask = torch.ones(2, 1, 8, 8)
    mask[..., 2:5, 2:6] = 0
    output = torch.rand(2, 3, 8, 8)
    grid = result_grid(image, mask, output)
    assert grid.shape == (3, 2 * 10 + 2, 5 * 10 + 2)
    tile = lambda row, col: grid[:, 2 + row * 10 : 10 + row * 10, 2 + col * 10 : 10 + col * 10]  # noqa: E731
    hole = 1 - mask[1]  # masks on disk: white = hole; every picture shows holes white
    assert torch.equal(tile(1, 0), image[1] * mask[1] + hole)
    assert torch.equal(tile(1, 0)[:, 2:5, 2:6], torch.ones(3, 3, 4))
    assert torch.equal(tile(1, 1), hole.expand(3, -1, -1))
    assert tile(1, 1)[:, 2, 2].tolist() == [1.0, 1.0, 1.0]
    assert torch.equal(tile(0, 2), output[0])
    comp = tile(0, 3)
    assert torch.equal(comp[:, 2:5, 2:6], output[0][:, 2:5, 2:6])  # holes: prediction
    assert torch.equal(comp[:, 0], image[0][:, 0])  # valid pixels: the input
    assert torch.equal(tile(1, 4), image[1])


class ModeSpy(Callback):
    def __init__(self) -> None:
        self.modes: list[bool] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        self.modes.append(any(bn.training for bn in pl_module.net.encoder_batchnorms()))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.modes.append(any(bn.training for bn in pl_module.net.encoder_batchnorms()))


def test_grid_and_table_are_written_and_modes_are_untouched(tmp_path):
    spy = ModeSpy()
    module = tiny_module()
    module.net.freeze_encoder_bn = True
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = tiny_trainer(
        tmp_path,
        steps=2,
        val_check_interval=1,
        logger=logger,
        callbacks=[ImageGridLogger(max_images=2), BucketMetricsTable(), spy],
        limit_val_batches=2,
    )
    trainer.fit(module, tiny_data(max_eval_samples=4, eval_repeats=6))
    assert spy.modes and not any(spy.modes)  # frozen encoder BN stayed in eval throughout
    grid = Image.open(tmp_path / "samples" / "latest.png")
    assert grid.size == (5 * 66 + 2, HEADER + 2 * 66 + 2)  # header row of column labels
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "latest.png",
        "step_0000001.png",  # named by global step: one per validation, none overwritten
        "step_0000002.png",
    ]
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events and b"val/samples" in events[0].read_bytes()
    table = (tmp_path / "val_metrics_by_bucket.md").read_text()
    assert "| all |" in table and "| 1-10 |" in table  # the labels of every report
    csv_rows = (tmp_path / "val_metrics_by_bucket.csv").read_text().splitlines()
    assert csv_rows[0] == "hole (%),PSNR (dB),SSIM,L1 (%),L1 hole (%),LPIPS"
    lpips = float(csv_rows[-1].split(",")[-1])  # the 'all' row: validation's LPIPS-VGG
    assert lpips == pytest.approx(float(trainer.callback_metrics["val/lpips"]), abs=1e-4)


def test_wandb_run_holds_the_full_resolved_config_and_the_grid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(
        [
            "fit",
            f"--config={CONFIGS / 'quickstart.yaml'}",
            *tiny_args(tmp_path / "run", steps=2),
            "--trainer.check_val_every_n_epoch=1",
            "--trainer.val_check_interval=2",
        ]
    )
    run = cli.trainer.logger.experiment
    config = dict(run.config)["cli"]
    assert config["model"]["loss_weights"]["hole"] == 6.0
    assert config["data"]["image_size"] == 64
    assert config["trainer"]["max_steps"] == 2
    media = sorted((tmp_path / "run" / "wandb").rglob("media/images/val/samples_*.png"))
    assert len(media) == 1  # save_dir followed trainer.default_root_dir
    logged = np.asarray(Image.open(media[0]).convert("RGB"))
    on_disk = np.asarray(Image.open(tmp_path / "run" / "samples" / "step_0000002.png"))
    assert np.array_equal(logged, on_disk)  # not a black 0/1 image
    assert len(np.unique(logged)) > 50
    assert not (tmp_path / "outputs").exists()


def test_an_interrupted_checkpoint_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """The project's writer (AtomicCheckpointIO, as `pconv fit` installs it) failing halfway
    through writing the file: the previous last.ckpt stays, and no partial file is left."""
    ckpt = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=1, save_top_k=0
    )
    trainer = tiny_trainer(
        tmp_path,
        steps=1,
        callbacks=[ckpt],
        enable_checkpointing=True,
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(tiny_module(), tiny_data())
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    last = tmp_path / "ckpt" / "last.ckpt"
    before = last.read_bytes()
    save = torch.save

    def crash(obj, f, *args, **kwargs):
        """Writes half of the checkpoint into the file being written, then the disk is full."""
        data = io.BytesIO()
        save(obj, data, *args, **kwargs)
        with contextlib.ExitStack() as stack:
            if isinstance(f, str | os.PathLike):
                f = stack.enter_context(open(f, "wb"))
            f.write(data.getvalue()[: len(data.getvalue()) // 2])
            f.flush()
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(last)
    assert last.read_bytes() == before
    monkeypatch.undo()
    assert torch.load(last, weights_only=True)["global_step"] == 1
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]  # no partial left


def test_grid_header_labels_every_column_over_an_unchanged_picture():
    grid = result_grid(torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64), torch.rand(1, 3, 64, 64))
    picture = to_uint8(grid)
    reference = (grid * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(picture, reference)  # save_image's rounding
    out = labelled(picture)
    assert np.array_equal(out[HEADER:], picture)
    header = out[:HEADER].min(axis=2) < 128  # dark text pixels on white
    step = (picture.shape[1] - 2) / len(COLUMNS)
    for index in range(len(COLUMNS)):  # ink inside every column's span
        assert header[:, int(2 + step * index) : int(2 + step * (index + 1))].any()
