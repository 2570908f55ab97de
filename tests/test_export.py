"""ONNX export: dynamic sizes, onnxruntime against PyTorch, and ``pconv inpaint`` on the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_lightning.checkpoints.network import load_network, save_network
from pconv_lightning.cli import cli_main
from pconv_lightning.inference import OnnxEngine
from pconv_lightning.models import PConvUNet

# The module-scoped fixture is built once, on one xdist worker, for all the tests here.
pytestmark = pytest.mark.xdist_group("export")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    """A 4-layer network with non-trivial BatchNorm statistics, as safetensors and ONNX
    (written by ``pconv export``)."""
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    net = PConvUNet(layers=4)
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.1, 0.1)
    save_network(net, root / "net.safetensors")
    code = cli_main(
        ["export", f"--checkpoint={root / 'net.safetensors'}", f"--output={root / 'net.onnx'}"]
    )
    assert code == 0
    return root / "net.safetensors", root / "net.onnx"


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 48, 80), (2, 96, 64)])
def test_onnxruntime_agrees_with_pytorch(exported, batch, height, width):
    weights, onnx_file = exported
    net = load_network(weights)
    engine = OnnxEngine(onnx_file)
    assert engine.multiple == net.multiple == 16
    g = torch.Generator().manual_seed(height)
    image = torch.rand(batch, 3, height, width, generator=g)
    mask = (torch.rand(batch, 1, height, width, generator=g) > 0.4).float()
    mask[:, :, 10:30, 20:40] = 0  # a large hole as well as scattered ones
    with torch.inference_mode():
        expected = net(image, mask).numpy()
    got = engine(image.numpy(), mask.numpy())
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4


def test_inpaint_runs_the_onnx_file(exported, tmp_path):
    weights, onnx_file = exported
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    hole = np.zeros((50, 70), np.uint8)
    hole[5:30, 10:50] = 255
    Image.fromarray(hole).save(tmp_path / "m.png")
    results = {}
    for name, checkpoint in {"onnx": onnx_file, "torch": weights}.items():
        args = [f"--image={tmp_path / 'p.png'}", f"--mask={tmp_path / 'm.png'}"]
        code = cli_main(
            ["inpaint", f"--checkpoint={checkpoint}", *args, f"--output={tmp_path / name}"]
        )
        assert code == 0
        results[name] = np.asarray(Image.open(tmp_path / name / "p.png")).astype(int)
    assert np.abs(results["onnx"] - results["torch"]).max() <= 1  # one uint8 rounding step


def test_export_errors(tmp_path, capsys):
    assert cli_main(["export", "--checkpoint=missing.ckpt", f"--output={tmp_path / 'x.onnx'}"]) == 2
    assert "missing.ckpt does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["export", "--checkpoint=a.ckpt", "--output=x.pt"])
    assert "--output must end in .onnx" in capsys.readouterr().err
