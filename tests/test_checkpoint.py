"""Loading networks from checkpoints without pickle; the architecture comes from the weights."""

from __future__ import annotations

import pytest
import torch
from test_module import tiny_data, tiny_module, tiny_trainer

from pconv_lightning.checkpoints.network import (
    UnsafeCheckpointError,
    load_network,
    network_from_state_dict,
    save_network,
)
from pconv_lightning.models import PConvUNet


def same_weights(a: PConvUNet, b: PConvUNet) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_lightning_checkpoint_loads_without_pickle(tmp_path):
    module = tiny_module()
    trainer = tiny_trainer(tmp_path, steps=1)
    trainer.fit(module, tiny_data())
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    net = load_network(tmp_path / "run.ckpt")
    assert net.layers == 5 and not net.training
    assert same_weights(net, module.net)


@pytest.mark.parametrize(("layers", "channels"), [(3, 1), (7, 3)])
def test_architecture_is_read_from_the_weights(layers, channels, tmp_path):
    net = PConvUNet(layers=layers, in_channels=channels, out_channels=channels)
    save_network(net, tmp_path / "net.safetensors")
    loaded = load_network(tmp_path / "net.safetensors")
    assert (loaded.layers, loaded.in_channels) == (layers, channels)
    assert same_weights(loaded, net)
    torch.save(net.state_dict(), tmp_path / "net.pth")
    assert same_weights(load_network(tmp_path / "net.pth"), net)


class Payload:
    """Anything that is not a tensor or plain data needs pickle to load."""


def test_checkpoints_that_need_pickle_are_refused(tmp_path):
    torch.save(
        {"state_dict": PConvUNet(layers=3).state_dict(), "extra": Payload()}, tmp_path / "bad.ckpt"
    )
    with pytest.raises(UnsafeCheckpointError, match=r"bad\.ckpt.*pickle"):
        load_network(tmp_path / "bad.ckpt")
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        load_network(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="not a PConvUNet"):
        network_from_state_dict({"weight": torch.zeros(1)})
