"""With no --checkpoint, `pconv inpaint`, `pconv app` and `pconv evaluate` use the released
reference model (weights/reference_256.safetensors, fp16); without it they say what to pass."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from test_inference import _load, workspace  # noqa: F401  (workspace: a fixture)
from training_helpers import REPO, SAMPLES

from pconv_lightning.app.command import main as app_main
from pconv_lightning.checkpoints import reference
from pconv_lightning.checkpoints.pieces import half_state
from pconv_lightning.cli import cli_main
from pconv_lightning.models import PConvUNet


def _inpaint_args(ws, name: str) -> list[str]:
    return [
        "inpaint",
        f"--image={ws / 'photos'}",
        f"--mask={ws / 'masks'}",
        f"--output={ws / name}",
    ]


@pytest.fixture
def released(tmp_path, monkeypatch):
    """A tiny 3-layer network released as the project does: fp16 safetensors."""
    torch.manual_seed(3)
    path = tmp_path / "weights" / "reference_256.safetensors"
    path.parent.mkdir()
    save_file(half_state(PConvUNet(layers=3).state_dict()), str(path))
    monkeypatch.setattr(reference, "REFERENCE_WEIGHTS", path)
    return path


@pytest.fixture
def unreleased(tmp_path, monkeypatch):
    path = tmp_path / "nowhere" / "reference_256.safetensors"
    monkeypatch.setattr(reference, "REFERENCE_WEIGHTS", path)
    return path


def test_the_default_is_the_checkouts_weights_folder():
    assert reference.REFERENCE_WEIGHTS == REPO / "weights" / "reference_256.safetensors"


def test_inpaint_without_checkpoint_uses_the_released_weights(workspace, released):  # noqa: F811
    assert cli_main(_inpaint_args(workspace, "default")) == 0
    assert cli_main([*_inpaint_args(workspace, "explicit"), f"--checkpoint={released}"]) == 0
    other = f"--checkpoint={workspace / 'net.safetensors'}"  # another network
    assert cli_main([*_inpaint_args(workspace, "other"), other]) == 0
    for name in ("a.png", "b.png"):
        default = _load(workspace / "default" / name)
        assert np.array_equal(default, _load(workspace / "explicit" / name))
        assert not np.array_equal(default, _load(workspace / "other" / name))


def test_inpaint_and_app_without_any_model_say_what_to_pass(workspace, unreleased, capsys):  # noqa: F811
    assert cli_main(_inpaint_args(workspace, "out")) == 2
    err = capsys.readouterr().err
    assert err.startswith("pconv inpaint: error: no --checkpoint given")
    assert str(unreleased) in err and "pass --checkpoint" in err
    assert not (workspace / "out").exists()
    assert app_main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pconv app: error: no --checkpoint given") and str(unreleased) in err


def _evaluate(out, *extra: str) -> list[str]:
    args = [
        "evaluate",
        f"--images={SAMPLES / 'val'}",
        "--builtin-masks=1",
        "--size=64",
        "--per-cell=1",
        "--no-progress",
        f"--out={out}",
        *extra,
    ]
    assert cli_main(args) == 0
    with (out / "metrics.csv").open() as f:
        return sorted({row["method"] for row in csv.DictReader(f)})


def test_evaluate_defaults_to_the_released_model(tmp_path, released):
    assert _evaluate(tmp_path / "a", "--no-baselines") == ["reference"]


def test_evaluate_without_any_model_runs_the_baselines_and_says_so(tmp_path, unreleased, capsys):
    assert _evaluate(tmp_path / "b") == ["mean", "ns", "patchmatch", "telea"]
    assert "no --checkpoint given and no reference model at" in capsys.readouterr().err
    bare = ["evaluate", f"--images={SAMPLES / 'val'}", "--builtin-masks=1", "--no-baselines"]
    assert cli_main([*bare, f"--out={tmp_path / 'c'}"]) == 2
    assert "error: nothing to evaluate: give --checkpoint" in capsys.readouterr().err
