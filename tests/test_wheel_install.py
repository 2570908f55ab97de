"""The package works outside a checkout: a wheel installed into a temporary folder finds its
base config (package data, read through importlib.resources)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml
from training_helpers import REPO


@pytest.mark.slow
def test_wheel_installed_elsewhere_builds_the_net_from_its_packaged_base_config(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and egg-info next to it
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "pconv_lightning",
        source / "pconv_lightning",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
    )
    (wheel,) = wheels.glob("pconv_lightning-*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import pconv_lightning; print(pconv_lightning.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site))  # the wheel's copy, not the checkout
    done = subprocess.run(
        [sys.executable, "-m", "pconv_lightning", "fit", "--print_config"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    config = yaml.safe_load(done.stdout)
    assert config["model"]["net"] is not None
    assert config["model"]["net"]["class_path"] == "pconv_lightning.models.PConvUNet"
    assert config["model"]["loss_weights"]["hole"] == 6.0  # the paper's, from base.yaml
