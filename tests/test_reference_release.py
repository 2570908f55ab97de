"""The release scripts of the reference model: scripts/reference_release.sh refuses a run that
has not met its budget and releases a rehearsal end to end, resumably; scripts/reference_figure.py draws the README's first picture."""

from __future__ import annotations

import hashlib
import json
import os
import runpy
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from safetensors.torch import load_file
from training_helpers import CONFIGS, REPO, SAMPLES

from pconv_lightning.checkpoints.network import save_network
from pconv_lightning.checkpoints.pieces import half_state, save_pieces
from pconv_lightning.evaluation.report import summarize
from pconv_lightning.models import PConvUNet


@pytest.mark.parametrize(
    "configs", [["reference_cpu.yaml"], ["reference_cpu.yaml", "reference_cpu_continued.yaml"]]
)
def test_release_refuses_a_run_short_of_its_budget(tmp_path, configs):
    merged: dict = {}
    for name in configs:  # the later config overrides, as LightningCLI merges them
        merged.update(yaml.safe_load((CONFIGS / name).read_text())["trainer"])
    budget = merged["max_steps"]
    export = tmp_path / "run" / "weights" / "step-0004013"
    export.mkdir(parents=True)
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump({"trainer": merged}))
    (export / "pieces.json").write_text(json.dumps({"step": budget - 1}))
    (export.parent / "LATEST").write_text(export.name)
    env = {**os.environ, "RUN": str(tmp_path / "run")}
    env.pop("REHEARSAL", None)
    result = subprocess.run(
        ["bash", "scripts/reference_release.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"at step {budget - 1} of {budget}: the budget is not met" in result.stderr


def test_release_of_a_chain_export_needs_no_run_budget_and_can_stop_after_evaluating(tmp_path):
    """EXPORT: the last link of a chain of runs (the card's training log holds the budget) is
    released whatever the run's own max_steps; EVAL_ONLY stops before the card is written."""
    export = tmp_path / "gpu" / "pieces-0000003"
    state = half_state(PConvUNet(layers=3).state_dict())
    save_pieces(state, export, 2**24, {"step": 3, "epoch": 0})
    env = {**os.environ, "RUN": str(tmp_path / "no-run"), "EXPORT": str(export)}
    env |= {"REHEARSAL": str(tmp_path / "out"), "SIZES": "", "EVAL_ONLY": "1"}
    result = subprocess.run(
        ["bash", "scripts/reference_release.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"releasing {export} (step 3 of its own run)" in result.stdout
    assert "EVAL_ONLY" in result.stdout
    assert load_file(tmp_path / "out" / "weights" / "reference_256.safetensors").keys() == (
        state.keys()
    )
    card = (tmp_path / "out" / "weights" / "README.md").read_text()
    assert card == (REPO / "weights" / "README.md").read_text()  # not written
    env.pop("EVAL_ONLY")  # to the end: the figure; the chain's status and plot stay the card's
    result = subprocess.run(
        ["bash", "scripts/reference_release.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "kept" in result.stdout  # the merged file holds these weights already
    assert (tmp_path / "out" / "docs" / "reference_repair.jpg").is_file()
    assert not (tmp_path / "out" / "docs" / "reference_training_log.png").exists()
    card = (tmp_path / "out" / "weights" / "README.md").read_text()
    assert card == (REPO / "weights" / "README.md").read_text()


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


def _kept_evaluation(folder, stamp: str) -> None:
    """A finished evaluation as the release leaves it: metrics.csv, examples.png, its stamp."""
    rows = [
        {"method": method, "pair": f"{b}/{i}", "bucket": bucket, "border": border,
         "psnr": 30.0 - 2 * b - k, "ssim": 0.9 - 0.05 * b, "lpips": 0.05 * (b + 1 + k)}
        for k, method in enumerate(["reference", "telea", "ns", "mean"])
        for b, bucket in enumerate(["1-10", "10-20", "20-30", "30-40", "40-50", "50-60"])
        for i, border in enumerate(["inner", "border"])
    ]  # fmt: skip
    folder.mkdir(parents=True)
    summarize(pd.DataFrame(rows)).to_csv(folder / "metrics.csv", index=False)
    Image.new("RGB", (64, 32), "grey").save(folder / "examples.png")
    (folder / "weights.stamp").write_text(f"{stamp}\n")


@pytest.mark.slow
def test_a_rehearsal_releases_everything_and_keeps_evaluations_of_the_same_export(tmp_path):
    """The whole release on a tiny stand-in (a 7-layer export, 2 photos an evaluation set, the
    shipped evaluation masks, one size above the work size) where Kodak24 was evaluated with
    this export before and CBSD68 with another: the first is kept, the second evaluated again,
    the model also run at the work size."""
    run, shared, cache, out = (tmp_path / name for name in ("run", "shared", "cache", "out"))
    export = run / "weights" / "step-0000002"
    state = half_state(PConvUNet(layers=7).state_dict())
    save_pieces(state, export, 2**24, {"step": 2, "epoch": 0})
    (run / "weights" / "LATEST").write_text(export.name)
    (run / "csv" / "version_0").mkdir(parents=True)
    pd.DataFrame(
        {"step": [0, 1], "train/loss": [9.0, 8.0], "train/images_seen": [8, 16], "train/stage": 1}
    ).to_csv(run / "csv" / "version_0" / "metrics.csv", index=False)
    (shared / "eval_cbsd68").mkdir(parents=True)
    for photo in ("kodim15", "kodim16"):
        shutil.copy(SAMPLES / "val" / f"{photo}.jpg", shared / "eval_cbsd68")
    shutil.copytree(SAMPLES / "eval_masks", cache / "masks" / "nvidia_eval_odd")
    stamp = hashlib.sha256((export / "pieces.json").read_bytes()).hexdigest()
    _kept_evaluation(out / "eval" / "kodak24_256", f"{stamp} per-cell 1 work-size 128")
    _kept_evaluation(out / "eval" / "cbsd68_256", f"{'0' * 64} per-cell 1 work-size 128")
    env = {**os.environ, "RUN": str(run), "SHARED": str(shared), "PCONV_CACHE_DIR": str(cache)}
    env |= {"REHEARSAL": str(out), "PER_CELL": "1", "SIZES": "256", "WORK_SIZE": "128"}
    released = REPO / "weights" / "reference_256.safetensors"
    before = released.read_bytes() if released.exists() else None
    result = subprocess.run(
        ["bash", "scripts/reference_release.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("evaluated with these weights already") == 1
    assert f"kept {out / 'eval' / 'kodak24_256'}:" in result.stdout
    evaluated = pd.read_csv(out / "eval" / "cbsd68_256" / "metrics.csv")
    methods = {"reference", "reference@128", "telea", "ns", "patchmatch", "mean"}
    assert set(evaluated["method"]) == methods
    assert evaluated.loc[evaluated["bucket"] == "all", "n"].tolist() == [12] * 6  # 2 photos
    stamped = (out / "eval" / "cbsd68_256" / "weights.stamp").read_text()
    assert stamped == f"{stamp} per-cell 1 work-size 128\n"
    weights = out / "weights" / "reference_256.safetensors"
    assert load_file(weights).keys() == state.keys()
    card = (out / "weights" / "README.md").read_text()
    assert hashlib.sha256(weights.read_bytes()).hexdigest() in card
    assert "| target | Kodak24, 256x256 | CBSD68, 256x256 |" in card
    for name in ("examples_kodak24_256.jpg", "examples_cbsd68_256.jpg", "training_log.png"):
        assert (out / "docs" / f"reference_{name}").is_file()
    assert Image.open(out / "docs" / "reference_repair.jpg").size == (4 * 388 + 4, 4 * 260 + 4)
    after = released.read_bytes() if released.exists() else None
    assert after == before  # the checkout's released file untouched


def test_a_released_file_is_evaluated_again_without_its_export(tmp_path):
    """WEIGHTS: the released file itself (its export lost with a machine) stamps the evaluations
    by its SHA-256; the file is not rewritten, each run's metrics.csv is copied beside the card
    and only the card's evaluation section is written."""
    weights = tmp_path / "released.safetensors"
    save_network(PConvUNet(layers=7).eval(), weights)
    out = tmp_path / "out"
    stamp = hashlib.sha256(weights.read_bytes()).hexdigest()
    for run in ("kodak24_256", "cbsd68_256"):
        _kept_evaluation(out / "eval" / run, f"{stamp} per-cell 1 work-size 128")
    env = {**os.environ, "RUN": str(tmp_path / "no-run"), "WEIGHTS": str(weights)}
    env |= {"REHEARSAL": str(out), "PER_CELL": "1", "SIZES": "256", "WORK_SIZE": "128"}
    result = subprocess.run(
        ["bash", "scripts/reference_release.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"evaluating the released {weights}" in result.stdout
    assert result.stdout.count("evaluated with these weights already") == 2
    assert not (out / "weights" / "reference_256.safetensors").exists()
    for run in ("kodak24_256", "cbsd68_256"):
        copied = out / "weights" / "evaluation" / run / "metrics.csv"
        assert copied.read_bytes() == (out / "eval" / run / "metrics.csv").read_bytes()
    card = (out / "weights" / "README.md").read_text()
    assert "| target | Kodak24, 256x256 | CBSD68, 256x256 |" in card
    status = REPO / "weights" / "README.md"
    section = status.read_text().split("<!-- status:begin -->")[1].split("<!-- status:end -->")[0]
    assert section in card  # the status is the card's own
    assert not (out / "docs" / "reference_training_log.png").exists()
    assert (out / "docs" / "reference_repair.jpg").is_file()


def test_release_names_a_missing_weights_file(tmp_path):
    env = {**os.environ, "WEIGHTS": str(tmp_path / "none.safetensors")}
    result = subprocess.run(
        ["bash", "scripts/reference_release.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"WEIGHTS={tmp_path / 'none.safetensors'}: no such file" in result.stderr
