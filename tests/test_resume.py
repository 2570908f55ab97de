"""``pconv fit --ckpt_path``: mismatches and "nothing to do" are errors naming both sides,
``last`` without a checkpoint is an error, a resumed run continues its W&B run, and bad
arguments or files end ``pconv fit`` with one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from training_helpers import CONFIGS, REPO, assert_restored, record_restored_state, tiny_args

from pconv_lightning.cli import cli_main
from pconv_lightning.errors import ConfigError, InputError, one_line

# The module-scoped fixture is built once, on one xdist worker, for all the tests here.
pytestmark = pytest.mark.xdist_group("resume")

QUICKSTART = f"--config={CONFIGS / 'quickstart.yaml'}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 6-layer run of 2 steps, logged to an offline W&B run; returns its root."""
    root = tmp_path_factory.mktemp("resume") / "run"
    cli = cli_main(
        [
            "fit",
            QUICKSTART,
            *tiny_args(root, steps=2),
            f"--trainer.logger.init_args.save_dir={root}",
        ]
    )
    (root / "run_id").write_text(cli.trainer.logger.version)
    return root


def fit(root: Path, *extra: str, steps: int = 3, layers: int = 6):
    return cli_main(["fit", QUICKSTART, *tiny_args(root, steps=steps, layers=layers), *extra])


def test_a_resumed_run_continues_the_same_wandb_run(trained, tmp_path, monkeypatch):
    last = trained / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True, map_location="cpu")
    save_dir = f"--trainer.logger.init_args.save_dir={trained}"
    seen = record_restored_state(monkeypatch)
    cli = fit(tmp_path / "resumed", f"--ckpt_path={last}", save_dir)
    assert cli.trainer.global_step == 3
    assert cli.trainer.logger.version == (trained / "run_id").read_text()
    assert_restored(seen, state)  # the network, Adam's moments and the scheduler: step 2's


def test_another_architecture_is_an_error_naming_both_sides(trained, tmp_path):
    last = trained / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match="layers=6 in the checkpoint but 7 in the config"):
        fit(tmp_path, f"--ckpt_path={last}", "--trainer.logger=false", layers=7)


def test_max_steps_at_the_checkpoints_step_is_nothing_to_do(trained, tmp_path):
    last = trained / "checkpoints" / "last.ckpt"
    with pytest.raises(
        ConfigError, match=r"nothing to do: .* is at step 2 and --trainer.max_steps=2"
    ):
        fit(tmp_path, f"--ckpt_path={last}", "--trainer.logger=false", steps=2)


def test_ckpt_path_last_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"--ckpt_path last: no last\*\.ckpt in .*checkpoints"):
        fit(tmp_path / "fresh", "--ckpt_path=last", "--trainer.logger=false")


def test_a_truncated_checkpoint_is_an_error_naming_it(trained, tmp_path):
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes((trained / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    with pytest.raises(InputError, match=r"cannot read --ckpt_path .*cut\.ckpt: .*truncated"):
        fit(tmp_path / "run", f"--ckpt_path={cut}", "--trainer.logger=false")


def test_one_line_keeps_the_original_message_of_a_worker_error():
    worker = ConfigError(
        "Caught ConfigError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        "call last):\n  File x\npconv_lightning.errors.ConfigError: no readable image left\n"
    )
    assert one_line(worker) == "no readable image left"
    assert one_line(ConfigError("plain")) == "plain"


def _bad_folder(root: Path) -> Path:
    folder = root / "bad"
    folder.mkdir()
    for i in range(3):
        (folder / f"bad{i}.jpg").write_bytes(b"not a jpeg")
    return folder


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--data.batch_size=-1", "pconv fit: error: data.batch_size must be >= 1, got -1"),
        (
            "--data.train={root}/nowhere",
            "pconv fit: error: image folder {root}/nowhere does not exist",
        ),
        ("--data.train={bad}", "pconv fit: error: no readable image left under {bad}"),
        (
            "--model.init_weights={root}/none.safetensors",
            "pconv fit: error: --model.init_weights {root}/none.safetensors does not exist",
        ),
    ],
)
def test_bad_arguments_end_fit_with_one_line_and_exit_2(tmp_path, override, message):
    bad = _bad_folder(tmp_path)
    values = {"root": tmp_path, "bad": bad}
    args = [
        *tiny_args(tmp_path / "run", steps=1),
        "--trainer.logger=false",
        override.format(**values),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pconv_lightning", "fit", QUICKSTART, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith(message.format(**values))
