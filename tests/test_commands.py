"""The `pconv` command tree: one help listing every command, every command's --help, lazy
imports (no torch to print a tool's help), modules that depend downwards only, and the
messages a user sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from training_helpers import CONFIGS, REPO, SAMPLES, tiny_args

from pconv_lightning.cli import TOOLS, TRAINING, cli_main

COMMANDS = [*TRAINING, *TOOLS]
LISTED = ("fit", "validate", "test", "predict", "inpaint", "export", "app", "evaluate", "ablate")


def test_help_lists_every_command_with_a_line(capsys):
    assert cli_main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in [*LISTED, "masks", "shards", *COMMANDS]:
        line = next((row for row in out.splitlines() if row.split()[:1] == [name]), None)
        assert line is not None and len(line.split()) > 2, name


def test_unknown_command_fails_naming_it(capsys):
    assert cli_main(["fitt"]) == 2
    assert "unknown command 'fitt'" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_works(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main([command, "--help"])
    assert exit_info.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out


def _modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


@pytest.mark.parametrize("tool", list(TOOLS))
def test_tool_help_imports_no_torch(tool):
    code = (
        "from pconv_lightning.cli import cli_main\n"
        f"try:\n    cli_main([{tool!r}, '--help'])\nexcept SystemExit:\n    pass"
    )
    modules = _modules_after(code)
    assert "torch" not in modules and "lightning" not in modules


def test_modules_depend_downwards_only():
    assert "pconv_lightning.evaluation.ablation" not in _modules_after("import pconv_lightning.cli")
    ablation = _modules_after("import pconv_lightning.evaluation.ablation")
    assert "pconv_lightning.cli" not in ablation
    training = _modules_after("import pconv_lightning.training_cli")
    assert "pconv_lightning.cli" not in training
    assert "pconv_lightning.evaluation.ablation" not in training


def _pconv_fit(*args: str) -> subprocess.CompletedProcess:
    """``pconv fit --config quickstart.yaml ARGS`` from the command line, W&B offline."""
    config = f"--config={CONFIGS / 'quickstart.yaml'}"
    return subprocess.run(
        [sys.executable, "-m", "pconv_lightning", "fit", config, *args],
        cwd=REPO,
        env=os.environ | {"WANDB_MODE": "offline"},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_print_config_from_the_command_line_warns_nothing_and_builds_the_net():
    done = _pconv_fit("--print_config")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "args parameter is intended" not in done.stderr
    config = yaml.safe_load(done.stdout)
    assert config["model"]["net"]["class_path"] == "pconv_lightning.models.PConvUNet"


def test_quickstart_has_at_least_log_every_n_steps_batches_per_epoch():
    config = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    photos = len(list(Path(REPO / config["data"]["train"]).glob("*.jpg")))
    assert photos == len(list((SAMPLES / "train").iterdir()))
    batches = photos // config["data"]["batch_size"]  # drop_last
    assert config["trainer"]["log_every_n_steps"] <= batches


class _Trainer:
    def __init__(self, max_epochs: int | None) -> None:
        self.max_epochs = max_epochs


@pytest.mark.parametrize(
    ("max_epochs", "expected"), [(-1, "Epoch 49"), (None, "Epoch 49"), (100, "Epoch 49/99")]
)
def test_progress_bar_shows_no_negative_epoch_count(max_epochs, expected):
    from pconv_lightning.callbacks.progress import EpochProgressBar

    bar = EpochProgressBar()
    bar._trainer = _Trainer(max_epochs)
    assert bar._get_train_description(49).strip() == expected


class _Reads:
    """A progress bar's base whose ``get_metrics`` counts its reads (each one a host sync)."""

    reads = 0

    def get_metrics(self, trainer, pl_module):
        self.reads += 1
        return {"train/loss": float(trainer.global_step)}


def test_progress_bars_read_the_metrics_only_at_logging_steps():
    from pconv_lightning.callbacks.progress import MetricsAtLoggingSteps

    class Bar(MetricsAtLoggingSteps, _Reads):
        pass

    bar = Bar()
    trainer = SimpleNamespace(training=True, global_step=0, log_every_n_steps=10)
    shown = []
    for step in range(1, 31):
        trainer.global_step = step
        shown.append(bar.get_metrics(trainer, None)["train/loss"])
    assert bar.reads == 4  # the first call, then steps 10, 20, 30
    assert shown[:9] == [1.0] * 9 and shown[9:19] == [10.0] * 10 and shown[29] == 30.0
    trainer.training = False  # validation and the end of training: always read
    bar.get_metrics(trainer, None)
    assert bar.reads == 5


@pytest.mark.slow
def test_a_tiny_fit_prints_no_messages_that_tell_nothing(tmp_path):
    """Lightning's cloud-logger tip, W&B's obsolete-`anonymous` warning and its missing-git-root
    warning (the run folder did not exist when W&B looked for the commit) are not printed."""
    done = _pconv_fit(*tiny_args(tmp_path / "run", steps=1))
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    for noise in ("💡 Tip", "anonymous setting has no effect", "git root"):
        assert noise not in output, noise
