"""The release scripts of the reference model: scripts/reference_release.sh refuses a run that
has not met its budget; scripts/reference_figure.py draws the README's first picture."""

from __future__ import annotations

import json
import os
import runpy
import subprocess

import numpy as np
import yaml
from PIL import Image
from training_helpers import CONFIGS, REPO, SAMPLES

from pconv_lightning.checkpoints.network import save_network
from pconv_lightning.models import PConvUNet


def test_release_refuses_a_run_short_of_its_budget(tmp_path):
    budget = yaml.safe_load((CONFIGS / "reference_cpu.yaml").read_text())["trainer"]["max_steps"]
    export = tmp_path / "run" / "weights" / "step-0004013"
    export.mkdir(parents=True)
    (export / "pieces.json").write_text(json.dumps({"step": budget - 1}))
    (export.parent / "LATEST").write_text(export.name)
    env = {**os.environ, "RUN": str(tmp_path / "run")}
    env.pop("REHEARSAL", None)
    result = subprocess.run(
        ["bash", "scripts/reference_release.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"at step {budget - 1} of {budget}: the budget is not met" in result.stderr


def test_figure_rows_show_hole_repair_telea_and_original(tmp_path):
    net = PConvUNet(layers=7).eval()
    save_network(net, tmp_path / "net.safetensors")
    out = tmp_path / "repair.png"  # PNG: lossless, so the panels can be compared exactly
    figure = runpy.run_path(str(REPO / "scripts" / "reference_figure.py"))
    figure["main"](["--checkpoint", str(tmp_path / "net.safetensors"), "--out", str(out)])
    grid = np.asarray(Image.open(out).convert("RGB"))
    photos = sorted((SAMPLES / "val").glob("*.jpg"))
    assert grid.shape == (len(photos) * 260 + 4, 4 * 388 + 4, 3)  # 384x256 cells, 4 px padding
    for row, photo in enumerate(photos):
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        valid = np.asarray(Image.open(SAMPLES / "val_masks" / f"{photo.stem}.png").convert("L"))
        if rgb.shape[0] > rgb.shape[1]:  # portrait photos are turned to landscape
            rgb, valid = np.rot90(rgb), np.rot90(valid)
        valid = valid <= 127  # white = hole
        top = 4 + row * 260
        cells = [grid[top : top + 256, 4 + c * 388 : 4 + c * 388 + 384] for c in range(4)]
        holed, repaired, telea, original = cells
        assert np.array_equal(original, rgb)
        assert (holed[~valid] == 255).all() and np.array_equal(holed[valid], rgb[valid])
        for filled in (repaired, telea):  # valid pixels kept, holes filled
            assert np.array_equal(filled[valid], rgb[valid]) and (filled[~valid] != 255).any()
