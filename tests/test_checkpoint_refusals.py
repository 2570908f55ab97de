"""One kind of error for a bad weights file, in every command that reads one: ``inpaint``,
``export``, ``evaluate``, ``app``, and ``fit``/``predict`` with ``--ckpt_path`` or
``--model.init_weights``. Each prints one line naming the file and what is wrong with it,
exits 2 and writes nothing first; a file that needs pickle is refused without torch's advice
to load it with ``weights_only=False`` and without torch's warnings; a file that is not a
checkpoint says what it is not (not "mmap ... is it truncated?")."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from training_helpers import CONFIGS, REPO, SAMPLES, tiny_args

from pconv_lightning.app.command import main as app_main
from pconv_lightning.checkpoints.network import (
    UnsafeCheckpointError,
    read_weights_file,
    weights_kind,
)
from pconv_lightning.cli import cli_main
from pconv_lightning.errors import InputError, PConvError
from pconv_lightning.evaluation.command import main as evaluate_main
from pconv_lightning.models import PConvUNet

FORBIDDEN = ("Traceback", "weights_only=False", "will likely succeed", "Warning", "mmap")


class Payload:
    """Not plain data: loading it needs pickle."""


def _state() -> dict[str, torch.Tensor]:
    return {f"net.{k}": v for k, v in PConvUNet(layers=3).state_dict().items()}


def make_bad(root: Path) -> dict[str, tuple[Path, str]]:
    """Bad weights files and a word their message must hold."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "pickle_zip": (root / "pickle_zip.ckpt", "pickle"),
        "pickle_legacy": (root / "pickle_legacy.ckpt", "pickle"),
        "plain_pickle": (root / "plain.pth", "pickle"),
        "random": (root / "random.ckpt", "not a checkpoint"),
        "empty": (root / "empty.ckpt", "empty"),
    }
    torch.save({"state_dict": _state(), "x": Payload()}, files["pickle_zip"][0])
    torch.save(
        {"state_dict": _state(), "x": Payload()},
        files["pickle_legacy"][0],
        _use_new_zipfile_serialization=False,
    )
    with open(files["plain_pickle"][0], "wb") as f:
        pickle.dump({"state_dict": {}, "x": Payload()}, f, protocol=4)
    files["random"][0].write_bytes(np.random.default_rng(0).bytes(20_000))
    files["empty"][0].write_bytes(b"")
    return files


BAD = ["pickle_zip", "pickle_legacy", "plain_pickle", "random", "empty"]


def assert_one_line(err: str, prog: str, path: Path, word: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"{prog}: error: "), line
    assert str(path) in line and word in line, line
    for bad in FORBIDDEN:
        assert bad not in line, line


@pytest.mark.parametrize("kind", BAD)
def test_the_reader_says_what_is_wrong(tmp_path, kind):
    path, word = make_bad(tmp_path)[kind]
    error = UnsafeCheckpointError if word == "pickle" else InputError
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's notes on old pickles are not shown
        with pytest.raises(error) as info:
            read_weights_file(path, "--ckpt_path", mmap=True)
    assert isinstance(info.value, PConvError)  # one line, exit 2 in every command
    message = str(info.value)
    assert str(path) in message and word in message and "\n" not in message
    for bad in FORBIDDEN:
        assert bad not in message, message
    if kind == "pickle_zip":
        assert "Payload" in message  # what it holds besides tensors


def test_kinds_are_told_from_the_first_bytes(tmp_path):
    files = make_bad(tmp_path)
    assert [weights_kind(files[k][0]) for k in BAD] == [
        "zip",
        "legacy",
        "pickle",
        "unknown",
        "empty",
    ]


@pytest.fixture
def photo(tmp_path):
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "photo.png")
    hole = np.zeros((32, 32), np.uint8)
    hole[8:16, 8:16] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    return tmp_path


@pytest.mark.parametrize("kind", ["pickle_zip", "pickle_legacy", "random"])
def test_inpaint_export_evaluate_and_app(photo, capsys, kind):
    path, word = make_bad(photo / "bad")[kind]
    out = photo / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inpaint = [
            "inpaint",
            f"--checkpoint={path}",
            f"--image={photo / 'photo.png'}",
            f"--mask={photo / 'mask.png'}",
            f"--output={out}",
        ]
        assert cli_main(inpaint) == 2
        assert_one_line(capsys.readouterr().err, "pconv inpaint", path, word)
        assert cli_main(["export", f"--checkpoint={path}", f"--output={out / 'x.onnx'}"]) == 2
        assert_one_line(capsys.readouterr().err, "pconv export", path, word)
        evaluate = [
            f"--checkpoint=net={path}",
            f"--images={SAMPLES / 'val'}",
            "--builtin-masks=1",
            "--size=64",
            "--no-progress",
            f"--out={photo / 'eval'}",
        ]
        assert evaluate_main(evaluate) == 2  # was 1: the only command with another code
        assert_one_line(capsys.readouterr().err, "pconv evaluate", path, word)
        assert app_main(["--checkpoint", str(path)]) == 2
        assert_one_line(capsys.readouterr().err, "pconv app", path, word)
    assert not out.exists()
    assert not [p for p in (photo / "eval").rglob("*") if p.is_file()]


def test_app_says_no_hole_plainly():
    from pconv_lightning.app.inputs import InpaintError, editor_inputs

    editor = {"background": np.full((32, 32, 3), 90, np.uint8), "layers": []}
    with pytest.raises(InpaintError) as info:
        editor_inputs(editor, None, 255, 10**6)
    assert "nothing to fill" in str(info.value) and "has no hole" in str(info.value)
    assert "the hole has no hole" not in str(info.value)


def _pconv(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, "-W", "default", "-m", "pconv_lightning", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "option", "kind"),
    [
        ("fit", "--ckpt_path", "pickle_zip"),
        ("fit", "--model.init_weights", "pickle_zip"),
        ("predict", "--ckpt_path", "random"),
    ],
)
def test_fit_and_predict_refuse_before_writing_anything(tmp_path, command, option, kind):
    """With the quick-start config's offline W&B logger: no run folder is made."""
    path, word = make_bad(tmp_path / "bad")[kind]
    root = tmp_path / "run"
    args = [
        command,
        f"--config={CONFIGS / 'quickstart.yaml'}",
        *tiny_args(root),
        f"{option}={path}",
    ]
    if command == "predict":
        args += [
            f"--data.predict={SAMPLES / 'val'}",
            f"--data.predict_masks={SAMPLES / 'val_masks'}",
        ]
    done = _pconv(*args)
    assert done.returncode == 2, done.stderr[-3000:]
    assert_one_line(done.stderr, f"pconv {command}", path, word)
    assert not root.exists(), sorted(str(p) for p in root.rglob("*"))
