"""Each W&B sweep file: sample a point as the sweep controller would, build the command line
exactly as `wandb agent` does (its own create_sweep_command_args and ${...} expansion), and run
it with a tiny budget."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from training_helpers import REPO, SAMPLES, tiny_args
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

SWEEPS = sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))


def sample(spec: dict, rng: np.random.Generator):
    """One value of a W&B sweep parameter spec."""
    if "values" in spec:
        return spec["values"][rng.integers(len(spec["values"]))]
    if spec.get("distribution") == "log_uniform_values":
        return float(math.exp(rng.uniform(math.log(spec["min"]), math.log(spec["max"]))))
    return float(rng.uniform(spec["min"], spec["max"]))


def agent_command(sweep: dict, point: dict) -> list[str]:
    """What wandb/wandb_agent.py runs for ``point`` (its `_command_run`, program-less form)."""
    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in point.items()}})
    sweep_vars |= {"interpreter": [sys.executable], "env": ["/usr/bin/env"]}
    command: list[str] = []
    for chunk in map(str, sweep["command"]):
        if chunk.startswith("${") and chunk.endswith("}"):
            command += sweep_vars.get(chunk[2:-1]) or []
        else:
            command.append(chunk)
    return command


@pytest.mark.slow
@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_point_runs_as_the_agent_would(path: Path, tmp_path):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["metric"]["name"] == "val/psnr"  # named exactly as InpaintingModule logs it
    rng = np.random.default_rng(0)
    point = {name: sample(spec, rng) for name, spec in sweep["parameters"].items()}
    command = agent_command(sweep, point)
    assert command[:2] == ["/usr/bin/env", sys.executable]
    assert all(f"--{k}={v}" in command for k, v in point.items())
    overrides = [*tiny_args(tmp_path / "run", steps=2), "--trainer.val_check_interval=2"]
    if "masks_nvidia" in str(point.get("config", "")):
        overrides.append(f"--data.mask_generator.init_args.root={SAMPLES / 'eval_masks'}")
    (tmp_path / "experiments").symlink_to(REPO / "experiments")  # the agent runs at the root
    env = os.environ | {"WANDB_MODE": "offline"}
    result = subprocess.run(
        [*command, *overrides], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "run" / "val_metrics_by_bucket.md").is_file()
    # the W&B save_dir follows trainer.default_root_dir
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
