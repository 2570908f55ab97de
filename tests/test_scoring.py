"""Scoring a training run: `pconv test` and `pconv predict` given the run's checkpoint read the
run's own config.yaml (its crop size, data and network without repeating its --config files)
and leave the run's config.yaml and logs as training wrote them."""

from __future__ import annotations

import io
from contextlib import redirect_stderr
from pathlib import Path

import pytest
import wandb
from training_helpers import CONFIGS, REPO, tiny_args

from pconv_lightning.cli import cli_main
from pconv_lightning.scoring import run_config, with_run_config


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (not W&B's links to its per-process service log)."""
    files = (p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


@pytest.mark.slow
def test_scoring_a_run_uses_its_config_and_keeps_its_record(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # quickstart.yaml's data paths are relative to the checkout
    root = tmp_path / "run"
    # quickstart.yaml says 128x128 crops and its W&B logger; the run trains at 64
    cli_main(["fit", f"--config={CONFIGS / 'quickstart.yaml'}", *tiny_args(root, size=64)])
    wandb.finish()  # the end of the `pconv fit` process: each command below is a new one
    record = _files(root)
    assert "config.yaml" in record and any(name.startswith("wandb/") for name in record)
    ckpt = root / "checkpoints" / "last.ckpt"

    err = io.StringIO()
    with redirect_stderr(err):
        tested = cli_main(["test", f"--ckpt_path={ckpt}"])
    assert f"the run's own config {root / 'config.yaml'}" in err.getvalue()
    assert tested.datamodule.hparams.image_size == 64
    assert next(iter(tested.datamodule.test_dataloader()))["image"].shape[-1] == 64
    assert tested.model.net.layers == 6  # tiny_args' network, not base.yaml's 7
    assert (root / "test_metrics_by_bucket.md").is_file()

    out = tmp_path / "predicted"
    wandb.finish()
    cli_main(["predict", f"--ckpt_path={ckpt}", f"--prediction_writer.output_dir={out}"])
    wandb.finish()
    assert len(list(out.glob("*.png"))) == 4  # quickstart.yaml's predict folder, from the run

    after = _files(root)
    assert {name: after[name] for name in record} == record  # nothing rewritten
    new = sorted(set(after) - set(record))
    # the scoring commands' own config and W&B runs go to <run>/test and <run>/predict
    assert all(n.startswith(("test/", "predict/", "test_metrics_by_bucket.")) for n in new), new
    assert "test/config.yaml" in new and "predict/config.yaml" in new
    assert any(n.startswith("test/wandb/") for n in new)


def test_run_config_is_inserted_only_for_a_scoring_command_on_a_run_checkpoint(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"x")
    assert run_config(str(ckpt)) is None  # no config.yaml yet
    (run / "config.yaml").write_text("seed_everything: 0\n")
    assert run_config(str(ckpt)) == run / "config.yaml"
    args = ["test", "--config=mine.yaml", "--ckpt_path", str(ckpt)]
    assert with_run_config(args) == ["test", f"--config={run / 'config.yaml'}", *args[1:]]
    assert (
        with_run_config(["predict", f"--ckpt_path={ckpt}"])[1] == f"--config={run / 'config.yaml'}"
    )
    for unchanged in (
        ["fit", f"--ckpt_path={ckpt}"],  # resuming trains: its own configs only
        ["test", "--ckpt_path=last"],
        ["test", f"--ckpt_path={run / 'config.yaml'}"],  # not under checkpoints/
        ["test", f"--ckpt_path={ckpt}", "--help"],
    ):
        assert with_run_config(unchanged) == unchanged
