"""A truncated checkpoint is one line naming the file and exit 2 in inpaint, app and export
(``pconv fit`` is covered in test_resume.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_lightning.app.command import main as app_main
from pconv_lightning.checkpoints.network import save_network
from pconv_lightning.cli import cli_main
from pconv_lightning.models import PConvUNet


@pytest.fixture(params=["net.safetensors", "net.pth"])
def truncated(request, tmp_path):
    torch.manual_seed(0)
    net = PConvUNet(layers=3)
    whole = tmp_path / f"whole{request.param[3:]}"
    if whole.suffix == ".pth":
        torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, whole)
    else:
        save_network(net, whole)
    cut = tmp_path / request.param
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "photo.png")
    hole = np.zeros((32, 32), np.uint8)
    hole[8:16, 8:16] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    return cut


def _one_line_naming(err: str, path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"cannot read checkpoint {path}" in lines[0] and "truncated" in lines[0]


def test_inpaint(truncated, capsys):
    root = truncated.parent
    args = [
        f"--image={root / 'photo.png'}",
        f"--mask={root / 'mask.png'}",
        f"--output={root / 'out'}",
    ]
    assert cli_main(["inpaint", f"--checkpoint={truncated}", *args]) == 2
    _one_line_naming(capsys.readouterr().err, truncated)


def test_app(truncated, capsys):
    assert app_main(["--checkpoint", str(truncated)]) == 2
    _one_line_naming(capsys.readouterr().err, truncated)


def test_export(truncated, capsys):
    output = f"--output={truncated.parent / 'x.onnx'}"
    assert cli_main(["export", f"--checkpoint={truncated}", output]) == 2
    _one_line_naming(capsys.readouterr().err, truncated)
