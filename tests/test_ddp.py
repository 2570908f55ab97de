"""strategy=ddp with 2 CPU processes (gloo): the real `pconv` command, a few steps, validation
metrics synced across ranks, checkpoints from rank 0."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch
from training_helpers import CONFIGS, REPO, tiny_args

from pconv_lightning.cli import cli_main

EVAL = ["--data.max_eval_samples=4"]  # 4 photos, each with the quick start's 6 masks


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    args = [
        *tiny_args(tmp_path / "run", steps=3),
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.logger=false",
        "--trainer.check_val_every_n_epoch=1",
        "--trainer.precision=32-true",  # fp32, as the one-process validation below
        "--trainer.limit_val_batches=2",  # per rank: samples 0, 2, 4, 6 and 1, 3, 5, 7
        *EVAL,
    ]
    command = [
        sys.executable,
        "-m",
        "pconv_lightning",
        "fit",
        f"--config={CONFIGS / 'quickstart.yaml'}",
        *args,
    ]
    env = os.environ | {"WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    assert "All distributed processes registered" in result.stderr + result.stdout
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 3
    table = (tmp_path / "run" / "val_metrics_by_bucket.md").read_text()
    assert "| all |" in table

    # 12 photos, 2 per batch, 2 ranks: one epoch is 3 steps, so the only validation ran on the
    # final weights, each rank scoring 4 of the samples 0-7. Its val/psnr (rank 0's table) must
    # be that of all 8, as one process scores them in 4 batches.
    assert "val metrics at epoch 0, step 3 " in table
    with open(tmp_path / "run" / "val_metrics_by_bucket.csv", newline="") as f:
        ddp_psnr = float(next(row for row in csv.reader(f) if row[0] == "all")[1])
    cli = cli_main(
        [
            "validate",
            f"--config={CONFIGS / 'quickstart.yaml'}",
            *tiny_args(tmp_path / "one"),
            "--trainer.logger=false",
            "--trainer.limit_val_batches=4",
            *EVAL,
            f"--ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
        ]
    )
    one_psnr = float(cli.trainer.callback_metrics["val/psnr"])
    assert ddp_psnr == pytest.approx(one_psnr, abs=2e-4)  # the table rounds to 4 decimals
