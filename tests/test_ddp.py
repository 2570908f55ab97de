"""strategy=ddp with 2 CPU processes (gloo): the real `pconv` command, a few steps, validation
metrics synced across ranks, checkpoints from rank 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from training_helpers import CONFIGS, tiny_args


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    args = [
        *tiny_args(tmp_path / "run", steps=3),
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.logger=false",
        "--trainer.check_val_every_n_epoch=1",
        "--trainer.limit_val_batches=2",
        "--data.max_eval_samples=4",
    ]
    command = [
        sys.executable,
        "-m",
        "pconv_lightning",
        "fit",
        f"--config={CONFIGS / 'quickstart.yaml'}",
        *args,
    ]
    env = os.environ | {"WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
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
