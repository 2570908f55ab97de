"""``--model.init_weights``: a run starts from a file's network weights and nothing else."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from training_helpers import CONFIGS, StartState, tiny_args

from pconv_lightning.checkpoints.network import load_init_weights
from pconv_lightning.checkpoints.pieces import half_state, save_pieces
from pconv_lightning.cli import cli_main
from pconv_lightning.errors import ConfigError
from pconv_lightning.models import PConvUNet


def _fit(tmp_path, monkeypatch, name: str, *extra: str, steps: int = 1):
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        f"--config={CONFIGS / 'quickstart.yaml'}",
        *tiny_args(tmp_path / name, steps=steps),
        "--trainer.logger=false",
        "--trainer.callbacks+=training_helpers.StartState",
        *extra,
    ]
    cli = cli_main(args)
    return cli, StartState.last


def _assert_net_equals(started: dict[str, torch.Tensor], file_state: dict[str, torch.Tensor]):
    assert started.keys() == file_state.keys()
    for key, value in file_state.items():
        assert torch.equal(started[key], value.to(started[key].dtype)), key


@pytest.mark.slow
def test_init_from_a_checkpoint_takes_the_network_only(tmp_path, monkeypatch):
    # a stage-2 run at step 3 with Adam state and lr 5e-5
    _fit(tmp_path, monkeypatch, "first", "--stage2.at_step=1", steps=3)
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True, map_location="cpu")
    assert saved["global_step"] == 3 and saved["optimizer_states"][0]["state"]
    net_state = {k[4:]: v for k, v in saved["state_dict"].items() if k.startswith("net.")}

    cli, start = _fit(tmp_path, monkeypatch, "second", f"--model.init_weights={ckpt}")
    _assert_net_equals(start.net, net_state)
    assert start.step == 0 and start.optimizer_state == 0  # fresh Adam, step 0
    assert start.lr == pytest.approx(2e-4) and start.frozen_bn is False  # stage 1 again
    assert cli.trainer.global_step == 1


@pytest.mark.slow
def test_init_from_fp16_safetensors_and_pieces(tmp_path, monkeypatch):
    net = PConvUNet(layers=6)
    for parameter in net.parameters():  # not He init's zero biases: every tensor distinct
        torch.nn.init.normal_(parameter, std=0.05)
    half = half_state(net.state_dict())
    save_file(half, str(tmp_path / "net.safetensors"))
    _, start = _fit(
        tmp_path, monkeypatch, "a", f"--model.init_weights={tmp_path / 'net.safetensors'}"
    )
    _assert_net_equals(start.net, load_file(tmp_path / "net.safetensors"))
    assert all(v.dtype != torch.float16 for v in start.net.values())  # cast to the net's dtype

    save_pieces(half, tmp_path / "pieces", piece_bytes=2_000_000, info={"step": 7})
    _, start = _fit(tmp_path, monkeypatch, "b", f"--model.init_weights={tmp_path / 'pieces'}")
    _assert_net_equals(start.net, half)


@pytest.mark.slow
def test_resuming_a_run_restores_its_checkpoint_over_init_weights(tmp_path, monkeypatch):
    other = tmp_path / "other.safetensors"
    save_file(half_state(PConvUNet(layers=6).state_dict()), str(other))
    _fit(tmp_path, monkeypatch, "run", steps=2)
    ckpt = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    net_state = {k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    _, start = _fit(
        tmp_path, monkeypatch, "run", f"--model.init_weights={other}", "--ckpt_path=last", steps=3
    )
    assert start.step == 2
    _assert_net_equals(start.net, net_state)


def test_another_architecture_is_refused_naming_both(tmp_path):
    save_file(PConvUNet(layers=7).state_dict(), str(tmp_path / "seven.safetensors"))
    with pytest.raises(ConfigError) as err:
        load_init_weights(PConvUNet(layers=6), tmp_path / "seven.safetensors")
    message = str(err.value)
    assert "seven.safetensors" in message
    assert "(layers=7, in/out channels 3/3)" in message
    assert "(layers=6, in/out channels 3/3)" in message
    assert "30 tensors differ" in message  # encoder.6 and decoder.6 (7 layers) vs decoder.5
