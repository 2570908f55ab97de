"""experiments/configs/reference_cpu.yaml in its tiny mode (a few CPU steps on the shipped photos,
the crop size switching phase), its resume, and the pieces it relies on: several training
folders, data.phases, the training budget and last.ckpt on SIGTERM."""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import time

import pytest
import torch
from training_helpers import CONFIGS, REPO, SAMPLES, user_cache_masks

import pconv_lightning.precision as precision
from pconv_lightning.cli import cli_main
from pconv_lightning.data.filelist import FileList, load_file_list
from pconv_lightning.data.progressive import ProgressiveInpaintingDataModule, SizePhase
from pconv_lightning.errors import ConfigError
from pconv_lightning.masks import FileMaskGenerator, MixtureMaskGenerator

TINY = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.limit_train_batches=2",  # an epoch is 2 steps: the phase switch at step 2
    "--trainer.log_every_n_steps=1",
    f"--data.train=[{SAMPLES / 'train'}, {SAMPLES / 'val'}]",
    "--data.image_size=64",
    "--data.batch_size=2",
    "--data.num_workers=0",
    "--data.phases=[{at_step: 2, image_size: 128, batch_size: 3}]",
    "--model.net.init_args.layers=6",
    "--stage2.at_step=3",
]


@pytest.mark.slow
def test_reference_cpu_config_trains_its_phases_and_resumes(tmp_path, monkeypatch):
    masks = user_cache_masks(monkeypatch, tmp_path)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "run"
    args = [
        "fit",
        f"--config={CONFIGS / 'reference_cpu.yaml'}",
        f"--trainer.default_root_dir={root}",
    ]
    cli = cli_main([*args, *TINY, "--trainer.max_steps=4"])

    assert cli.trainer.global_step == 4 and cli.trainer.precision == "bf16-mixed"
    assert cli.model.channels_last and cli.model.net.freeze_encoder_bn  # stage 2 from step 3
    assert cli.model.optimizers().param_groups[0]["lr"] == pytest.approx(5e-5)
    generator = cli.datamodule.mask_generator
    assert isinstance(generator, MixtureMaskGenerator)
    assert isinstance(generator.generators[0], FileMaskGenerator)
    assert generator.generators[0].root == masks  # "~" expanded
    assert len(cli.datamodule.datasets["train"]) == 16  # 12 train + 4 val photos, one list
    # steps 0-1 at 64 (batch 2), steps 2-3 at 128 (batch 3)
    ckpt = torch.load(root / "checkpoints/last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["callbacks"]["TrainingBudget"]["counts"] == {"64": 4, "128": 6}
    export = root / "weights" / (root / "weights" / "LATEST").read_text()
    manifest = json.loads((export / "pieces.json").read_text())
    assert manifest["images_seen"] == 10 and manifest["images_seen_by_size"] == {"64": 4, "128": 6}
    log = (root / "csv/version_0/metrics.csv").read_text()  # the CSV log follows default_root_dir
    assert "train/images_seen_128" in log

    first_log = log
    cli = cli_main([*args, *TINY, "--trainer.max_steps=6", "--ckpt_path=last"])
    assert cli.trainer.global_step == 6
    ckpt = torch.load(root / "checkpoints/last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["callbacks"]["TrainingBudget"]["counts"] == {"64": 4, "128": 12}
    assert ckpt["callbacks"]["TrainingBudget"]["wall_seconds"] > 0

    # the model card's training log line, from this run
    log = runpy.run_path(str(REPO / "scripts" / "reference_log.py"))
    # the resume logged into a folder of its own: the first start's log is still there
    assert (root / "csv/version_0/metrics.csv").read_text().startswith(first_log)
    steps = log["training_log"](root)["step"].tolist()
    assert steps == sorted(set(steps)) and set(steps) == set(range(6))
    state = log["training_state"](root)
    assert state["step"] == 6 and state["images"] == {64: 4, 128: 12}
    scores = log["quick_scores"](root, SAMPLES / "val", SAMPLES / "eval_masks", 1, True)
    assert set(scores.index.unique("method")) == {"model", "telea", "ns", "patchmatch", "mean"}
    assert scores.loc[("model", "all"), "n"] >= 4
    card = tmp_path / "README.md"
    markers = f"{log['BASELINES_BEGIN']}\nold\n{log['BASELINES_END']}"
    card.write_text(f"# card\n\n{log['HEADER']}\n|---|\n| old |\n\n{markers}\nafter\n")
    log["append_to_card"](card, log["row"](state, scores.loc["model"]))
    lines = card.read_text().splitlines()
    assert lines[4] == "| old |" and lines[5].split(" | ")[1:4] == ["6", "12", "0"]  # 128, 256
    assert lines[6] == ""  # the table ends where it did, the text after it kept
    # the baselines' table on the same pairs: one row per baseline, overall score last
    table = log["baseline_table"](scores)
    log["replace_section"](card, table, log["BASELINES_BEGIN"], log["BASELINES_END"])
    text = card.read_text()
    assert "\nold\n" not in text and text.endswith(f"{table}\n{log['BASELINES_END']}\nafter\n")
    rows = {line.split(" | ")[0][2:]: line for line in table.splitlines()[2:]}
    assert list(rows) == ["telea", "ns", "patchmatch", "mean"]
    mean_psnr = scores.loc[("mean", "all"), "psnr"]
    assert rows["mean"].split(" | ")[1].endswith(f" / {mean_psnr:.1f}")


def test_phases_are_checked():
    with pytest.raises(ConfigError, match="strictly increasing"):
        ProgressiveInpaintingDataModule(phases=[SizePhase(5, 256, 4), SizePhase(5, 512, 2)])
    with pytest.raises(ConfigError, match="image_size and batch_size"):
        ProgressiveInpaintingDataModule(phases=[SizePhase(5, 0, 4)])
    data = ProgressiveInpaintingDataModule(
        phases=[SizePhase(10, 256, 4), SizePhase(20, 512, 1)], image_size=128, batch_size=8
    )
    assert [data.phase(s) for s in (0, 9, 10, 19, 20)] == [
        SizePhase(0, 128, 8),
        SizePhase(0, 128, 8),
        SizePhase(10, 256, 4),
        SizePhase(10, 256, 4),
        SizePhase(20, 512, 1),
    ]


def test_phases_need_a_loader_rebuilt_every_epoch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="reload_dataloaders_every_n_epochs: 1"):
        cli_main(
            [
                "fit",
                f"--config={CONFIGS / 'quickstart.yaml'}",
                f"--trainer.default_root_dir={tmp_path / 'r'}",
                "--trainer.logger=false",
                "--data=pconv_lightning.data.progressive.ProgressiveInpaintingDataModule",
                f"--data.train={SAMPLES / 'train'}",
                "--data.phases=[{at_step: 2, image_size: 128, batch_size: 2}]",
            ]
        )


def test_several_training_folders_make_one_list(tmp_path):
    lists = [load_file_list(SAMPLES / "train", tmp_path), load_file_list(SAMPLES / "val", tmp_path)]
    joined = FileList.concat(lists)
    expected = [
        str((SAMPLES / d).resolve() / p)
        for d in ("train", "val")
        for p in sorted(q.name for q in (SAMPLES / d).iterdir() if q.suffix in (".png", ".jpg"))
    ]
    assert [joined[i] for i in range(len(joined))] == expected
    assert joined.label == f"{SAMPLES / 'train'}, {SAMPLES / 'val'}"
    assert FileList.concat(lists[:1]) is lists[0]


@pytest.mark.slow
def test_sigterm_saves_last_checkpoint_at_the_step_reached(tmp_path):
    root = tmp_path / "run"
    args = [
        sys.executable, "-m", "pconv_lightning", "fit",
        f"--config={CONFIGS / 'quickstart.yaml'}",
        f"--trainer.default_root_dir={root}",
        "--trainer.max_steps=100000",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.save_dir={root}",
        "--trainer.logger.flush_logs_every_n_steps=1",
        "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.limit_val_batches=0",
        "--last_checkpoint.every_n_train_steps=100000",  # no periodic save: only SIGTERM's
        f"--data.train={SAMPLES / 'train'}",
        "--data.image_size=64", "--data.batch_size=2", "--data.num_workers=0",
        "--model.net.init_args.layers=6",
    ]  # fmt: skip
    process = subprocess.Popen(args, cwd=REPO, env={**os.environ, "WANDB_MODE": "disabled"})
    metrics = root / "lightning_logs/version_0/metrics.csv"
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if metrics.is_file() and metrics.read_text().count("\n") >= 3:  # 2 steps logged
            break
        time.sleep(0.5)
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    ckpt = torch.load(root / "checkpoints/last.ckpt", weights_only=True, map_location="cpu")
    logged = [line.split(",") for line in metrics.read_text().splitlines()[1:]]
    steps = {int(row[1]) for row in logged if row[1]}  # CSVLogger's columns: epoch, step, ...
    assert ckpt["global_step"] >= 2 and ckpt["global_step"] >= max(steps) + 1
    assert not list((root / "checkpoints").glob("*.tmp*"))
