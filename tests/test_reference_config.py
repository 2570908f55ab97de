"""experiments/configs/reference_256.yaml as the GPU run uses it (a .gpu/ folder in the working
directory), shrunk to a few CPU steps; the fp16 weight pieces it leaves behind."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import shutil
from contextlib import redirect_stdout
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import yaml
from training_helpers import CONFIGS, REPO, SAMPLES

from pconv_lightning.checkpoints.network import network_from_state_dict
from pconv_lightning.checkpoints.pieces import half_state, merge_pieces, save_pieces
from pconv_lightning.cli import cli_main
from pconv_lightning.data.pack import build_pack
from pconv_lightning.masks import FileMaskGenerator, MixtureMaskGenerator, StrokeMaskGenerator


@pytest.mark.slow
def test_reference_config_runs_on_a_tiny_pack(tmp_path, monkeypatch):
    gpu = tmp_path / ".gpu"
    build_pack(SAMPLES / "train", gpu / "train_pool_256.pack", size=64, fmt="png")
    shutil.copytree(SAMPLES / "eval_masks", gpu / "masks_train")
    monkeypatch.chdir(tmp_path)
    cli = cli_main(
        [
            "fit",
            f"--config={CONFIGS / 'reference_256.yaml'}",
            "--trainer.accelerator=cpu",
            "--trainer.precision=32-true",
            "--trainer.max_steps=3",
            "--trainer.enable_progress_bar=false",
            "--stage2.at_step=2",
            "--data.image_size=64",
            "--data.batch_size=2",
            "--data.num_workers=0",
            "--model.vgg_weights=imagenet",  # the derived ImageNet weights (make venv)
            "--model.net.init_args.layers=6",
        ]
    )
    assert cli.trainer.global_step == 3
    generator = cli.datamodule.mask_generator
    assert isinstance(generator, MixtureMaskGenerator)
    assert isinstance(generator.generators[0], FileMaskGenerator)
    assert isinstance(generator.generators[1], StrokeMaskGenerator)
    assert generator.generators[0].root == Path(".gpu/masks_train")
    assert cli.datamodule.pack.shape == (12, 3, 64, 64)
    assert cli.trainer.precision == "32-true" and cli.model.channels_last
    assert cli.model.net.freeze_encoder_bn  # stage 2 switched on at step 2
    assert cli.model.optimizers().param_groups[0]["lr"] == pytest.approx(5e-5)
    last = next(c for c in cli.trainer.checkpoint_callbacks if c.save_last)
    assert last._train_time_interval == timedelta(minutes=2)
    out = tmp_path / "outputs" / "reference_256"
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert list(csv.DictReader((out / "csv" / "run" / "metrics.csv").open()))
    folder = out / "weights" / (out / "weights" / "LATEST").read_text()
    state, manifest = merge_pieces(folder)
    assert manifest["step"] == 3 and manifest["images_seen"] == 6
    net = network_from_state_dict({k: v.float() for k, v in state.items()}).eval()
    trained = cli.model.net.eval().to(memory_format=torch.contiguous_format)
    x, m = torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.3).float()
    with torch.no_grad():
        torch.testing.assert_close(net(x, m), trained(x, m), atol=0.05, rtol=0.01)


def test_pieces_are_bounded_and_merge_back_exactly(tmp_path):
    state = {f"w{i}": torch.randn(100, 50) for i in range(7)} | {"n": torch.tensor(3)}
    names = save_pieces(half_state(state), tmp_path, piece_bytes=25_000, info={"step": 9})
    assert len(names) == 4  # 10,000 bytes per fp16 tensor: two per piece, the last w/ "n"
    assert all((tmp_path / n).stat().st_size < 25_000 + 1_000 for n in names)
    merged, manifest = merge_pieces(tmp_path)
    assert manifest["step"] == 9 and merged["n"].dtype == torch.int64
    for key, value in state.items():
        assert torch.equal(merged[key], value.half() if value.is_floating_point() else value)
    (tmp_path / names[1]).write_bytes((tmp_path / names[1]).read_bytes()[:-10])
    with pytest.raises(ValueError, match=names[1]):
        merge_pieces(tmp_path)
    assert json.loads((tmp_path / "pieces.json").read_text())["tensors"] == 8


def _merged(*configs: str) -> dict:
    """The config ``pconv fit`` composes from ``configs`` (``--print_config``)."""
    out = io.StringIO()
    args = ["fit", *(f"--config={CONFIGS / c}" for c in configs), "--print_config"]
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        cli_main(args)
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(out.getvalue())


def test_continued_config_overrides_the_reference_recipe():
    base = _merged("reference_256.yaml")
    continued = _merged("reference_256.yaml", "reference_256_continued.yaml")
    assert continued["model"]["init_weights"] == ".gpu_init/reference_256.safetensors"
    assert continued["data"]["init_args"]["train"] == ".gpu/train_all_256.pack"
    assert continued["model"]["compile"] is False
    assert continued["model"]["optimizer"] == {
        "class_path": "torch.optim.Adam",
        "init_args": base["model"]["optimizer"]["init_args"] | {"lr": 2e-4},
    }
    steps = continued["trainer"]["max_steps"]
    assert continued["stage2"] == base["stage2"] | {"at_step": int(0.8 * steps)}
    assert continued["trainer"]["max_time"] == "00:00:07:15"
    assert continued["data"]["init_args"]["batch_size"] == 64
    # the rest is the reference recipe: network, size, masks, precision, exports, loss
    for key in ("net", "vgg_weights", "channels_last", "val_lpips", "loss_weights"):
        assert continued["model"][key] == base["model"][key]
    changed = {"train", "batch_size"}
    assert {k: v for k, v in continued["data"]["init_args"].items() if k not in changed} == {
        k: v for k, v in base["data"]["init_args"].items() if k not in changed
    }
    changed = {"max_time", "max_steps"}
    assert {k: v for k, v in continued["trainer"].items() if k not in changed} == {
        k: v for k, v in base["trainer"].items() if k not in changed
    }
    # scripts/gpu/ read the same pack from the configs (prepare.sh builds it)
    spec = importlib.util.spec_from_file_location("pack_of", REPO / "scripts/gpu/pack_of.py")
    pack_of = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pack_of)
    chain = [str(CONFIGS / "reference_256.yaml"), str(CONFIGS / "reference_256_continued.yaml")]
    assert pack_of.pack_of(chain) == continued["data"]["init_args"]["train"]
    assert pack_of.pack_of(chain[:1]) == base["data"]["init_args"]["train"]
