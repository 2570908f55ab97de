"""Each W&B sweep file: sample a point as the sweep controller would, have wandb's own agent
(``Agent._command_run``) build the command line, and run it with a tiny budget from a copy of
the repository root; `pconv sweep` builds the same command line; W&B summarises val/psnr by the
maximum the best checkpoint is chosen by."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import wandb
import yaml
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from training_helpers import CONFIGS, REPO, SAMPLES, tiny_args, user_cache_masks
from wandb import wandb_agent
from wandb.apis.public.sweeps import _validate_config_and_fill_distribution
from wandb.sdk.launch.sweeps.utils import load_sweep_config

from pconv_lightning.callbacks import CheckpointMetricSummary
from pconv_lightning.cli import cli_main
from pconv_lightning.sweeps.records import Point
from pconv_lightning.sweeps.runner import build_command

SWEEPS = sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))
BASE_PROJECT = yaml.safe_load((REPO / "pconv_lightning" / "configs" / "base.yaml").read_text())[
    "trainer"
]["logger"][0]


def sample(spec: dict, rng: np.random.Generator):
    """One value of a W&B sweep parameter spec."""
    if "values" in spec:
        return spec["values"][rng.integers(len(spec["values"]))]
    if spec.get("distribution") == "log_uniform_values":
        return float(math.exp(rng.uniform(math.log(spec["min"]), math.log(spec["max"]))))
    return float(rng.uniform(spec["min"], spec["max"]))


class Recorder:
    """Stands in for ``subprocess.Popen`` inside wandb's AgentProcess: keeps what it is given."""

    calls: ClassVar[list[dict]] = []

    def __init__(self, command, env=None, **kwargs) -> None:
        Recorder.calls.append({"command": command, "env": env})
        self.stdin = io.StringIO()


def as_the_server_stores_it(path: Path) -> dict:
    """The sweep config as `wandb sweep` reads, checks and uploads it, and the agent reads it."""
    config = _validate_config_and_fill_distribution(load_sweep_config(str(path)))
    return yaml.safe_load(yaml.dump(json.loads(json.dumps(config))))


def agent_command(sweep: dict, point: dict, run_id: str, monkeypatch, tmp: Path):
    """The command and environment ``wandb agent`` starts for ``point``: wandb's own Agent and
    AgentProcess, with only ``subprocess.Popen`` recorded instead of called."""
    monkeypatch.setenv("WANDB_DIR", str(tmp))
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep0")
    for name in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):  # the agent sets them: restore
        monkeypatch.setenv(name, "unset")
    agent = wandb_agent.Agent(api=None, queue=None, sweep_id="sweep0")
    agent._sweep_command = list(sweep["command"])  # as Agent.run() reads it from the server
    args = {name: {"value": value} for name, value in point.items()}
    Recorder.calls.clear()
    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "Popen", Recorder)
        agent._command_run(
            {"type": "run", "run_id": run_id, "program": sweep["program"], "args": args}
        )
    (call,) = Recorder.calls
    return call["command"], call["env"]


def command_configs(sweep: dict) -> list[str]:
    return [c for c in sweep["command"] if str(c).endswith(".yaml")]


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_file_is_complete(path: Path):
    sweep = as_the_server_stores_it(path)
    # LPIPS, lower is better (val/psnr rewards blur): the file says what each metric rewards
    assert sweep["metric"] == {"name": "val/lpips", "goal": "minimize"}  # as the module logs it
    header = path.read_text().split("\nprogram:")[0]
    assert "val/lpips" in header and "val/psnr" in header and "blur" in header
    assert sweep["project"] == BASE_PROJECT["init_args"]["project"]
    program = REPO / sweep["program"]
    assert program.is_file() and os.access(program, os.X_OK)
    assert sweep["early_terminate"]["type"] == "hyperband"
    assert "${program}" in sweep["command"] and "${args}" in sweep["command"]
    budget = yaml.safe_load((REPO / command_configs(sweep)[-1]).read_text())["trainer"]
    validations = budget["max_steps"] // budget["val_check_interval"]
    assert sweep["early_terminate"]["min_iter"] < validations  # the first band is reachable
    loggers = [logger["class_path"].split(".")[-1] for logger in budget["logger"]]
    assert "WandbLogger" in loggers  # where the metric is read from, online and offline
    configs = command_configs(sweep)
    configs += [v for spec in sweep["parameters"].values() for v in spec.get("values", [])]
    assert configs and all((REPO / c).is_file() for c in configs)


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_pconv_sweep_builds_the_agents_command(path: Path, tmp_path, monkeypatch):
    sweep = as_the_server_stores_it(path)
    rng = np.random.default_rng(1)
    point = {name: sample(spec, rng) for name, spec in sweep["parameters"].items()}
    command, _ = agent_command(sweep, point, "run-x", monkeypatch, tmp_path)
    config = {name: {"value": value} for name, value in point.items()}
    ours = build_command(sweep, Point(1, "run-x", config), tmp_path / "p.yaml", tmp_path / "p.json")
    assert ours == command


@pytest.mark.slow
@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_point_runs_as_the_agent_would(path: Path, tmp_path, monkeypatch):
    sweep = as_the_server_stores_it(path)
    rng = np.random.default_rng(0)
    point = {name: sample(spec, rng) for name, spec in sweep["parameters"].items()}
    run_id = f"run-{path.stem.replace('_', '-')}"
    command, env = agent_command(sweep, point, run_id, monkeypatch, tmp_path)
    assert command[:2] == ["/usr/bin/env", sweep["program"]]
    assert all(f"--{k}={v}" in command for k, v in point.items())
    assert env["WANDB_RUN_ID"] == run_id and env["WANDB_SWEEP_ID"] == "sweep0"
    overrides = tiny_args(tmp_path / "ignored", steps=4)  # fit_point.sh sets the run's folder
    overrides += ["--trainer.val_check_interval=2"]
    if "masks_nvidia" in str(point.get("config", "")):
        overrides.append(f"--data.mask_generator.init_args.root={SAMPLES / 'eval_masks'}")
    if any("studies" in c for c in command_configs(sweep)):  # the study's training masks
        user_cache_masks(monkeypatch, tmp_path / "home")
        env = env | {
            "HOME": os.environ["HOME"],
            "PCONV_WEIGHTS_DIR": os.environ["PCONV_WEIGHTS_DIR"],
        }
    root = tmp_path / "checkout"  # the agent runs at the repository root: these two are used
    root.mkdir()
    (root / "experiments").symlink_to(REPO / "experiments")
    (root / ".venv").symlink_to(sys.prefix)  # the interpreter running the tests
    env = env | {"WANDB_MODE": "offline"}
    result = subprocess.run(
        [*command, *overrides], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = root / "outputs" / "sweeps" / "sweep0" / run_id
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")
    assert ckpt["global_step"] == 4
    assert (run / "val_metrics_by_bucket.md").is_file()
    # the W&B save_dir follows trainer.default_root_dir
    assert list((run / "wandb").glob(f"offline-run-*-{run_id}"))
    hparams = {**ckpt["hyper_parameters"], **ckpt["datamodule_hyper_parameters"]}
    for name, value in point.items():  # the point's values reached the model and data
        if name == "config":
            generator = yaml.safe_load((REPO / value).read_text())["data"]["mask_generator"]
            assert hparams["mask_generator"]["class_path"] == generator["class_path"]
        else:
            field = name.split(".")[-1]
            assert hparams["loss_weights"][field] == pytest.approx(value)


def test_fit_point_names_a_missing_interpreter(tmp_path):
    result = subprocess.run(
        [REPO / "experiments" / "sweeps" / "fit_point.sh"],
        cwd=tmp_path,
        env=os.environ | {"PCONV_PYTHON": str(tmp_path / "nope")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "PCONV_PYTHON" in result.stderr
    assert str(tmp_path / "nope") in result.stderr


@pytest.fixture
def no_open_run():
    """WandbLogger reuses a run an earlier in-process test left open: finish it first."""
    wandb.finish()


class ScriptedPSNR(LightningModule):
    """Logs val/psnr 20, 25, 22 at its three validations: the last is not the best."""

    VALUES = (20.0, 25.0, 22.0)

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.validations = 0

    def training_step(self, batch, batch_idx):
        return (self.w - batch).pow(2).sum()

    def validation_step(self, batch, batch_idx) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        self.log("val/psnr", self.VALUES[self.validations])
        self.validations += 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(6, 1), batch_size=1)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(1, 1), batch_size=1)


def test_offline_run_summarises_val_psnr_by_its_maximum(tmp_path, no_open_run):
    logger = WandbLogger(save_dir=tmp_path, offline=True, project="pconv-test")
    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/psnr", mode="max")
    trainer = Trainer(
        max_steps=6,
        val_check_interval=2,
        logger=logger,
        callbacks=[best, CheckpointMetricSummary()],
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(ScriptedPSNR())
    try:
        assert dict(logger.experiment.summary["val/psnr"]) == {"max": 25.0}
        assert best.best_model_score.item() == 25.0
    finally:
        logger.experiment.finish()


@pytest.mark.slow
def test_cli_run_summary_is_the_best_checkpoints_score(tmp_path, monkeypatch, no_open_run):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(
        [
            "fit",
            f"--config={CONFIGS / 'quickstart.yaml'}",
            *tiny_args(tmp_path / "run", steps=4),
            "--trainer.check_val_every_n_epoch=null",
            "--trainer.val_check_interval=2",
        ]
    )
    run = cli.trainer.logger.experiment
    try:
        (best,) = [cb for cb in cli.trainer.checkpoint_callbacks if cb.monitor == "val/psnr"]
        summary = dict(run.summary["val/psnr"])
        assert summary == {"max": pytest.approx(best.best_model_score.item())}
    finally:
        run.finish()
