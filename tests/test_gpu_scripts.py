"""The GPU session's scripts rehearsed on the CPU (TINY=1): benchmark, start of the reference run
and of the mixed-precision proof, collection of the weight pieces and reports, fetch and merge;
the mask split and the choice of batch / lr / steps from the throughput table."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers
from training_helpers import REPO, SAMPLES

from pconv_lightning.checkpoint import load_network
from pconv_lightning.data.pack import build_pack

SHARED_MASKS = REPO.parent / "shared" / "data" / "nvidia_irregular_masks_test"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(batch: int, rate: float, compiled: bool, **kw) -> dict:
    base = {"size": 256, "net": "pconv", "precision": "bf16-mixed", "channels_last": True}
    return base | {"batch": batch, "images_per_s": rate, "compile": compiled} | kw


def test_pick_config_follows_the_table():
    pick = _script("pick_config").pick
    rows = [
        _row(32, 400.0, False),
        _row(64, 420.0, False),
        _row(32, 460.0, True),  # 1.095x the best eager row: not worth compiling
        _row(32, 900.0, False, net="plain"),
        _row(32, 999.0, False, precision="16-mixed"),
    ]
    chosen = pick(rows, seconds=1000, efficiency=0.85, compile_gain=1.15)
    assert (chosen["BATCH"], chosen["COMPILE"], chosen["RATE"]) == (64, "false", 420.0)
    assert float(chosen["LR"]) == pytest.approx(5e-4)  # 2e-4 * sqrt(64 / 6) = 6.5e-4, capped
    assert chosen["MAX_STEPS"] == int(0.85 * 420 * 1000 / 64) == 5578
    assert chosen["AT_STEP"] == 4462
    rows.append(_row(24, 500.0, True))  # 1.19x: compile
    chosen = pick(rows, seconds=1000, efficiency=0.85, compile_gain=1.15)
    assert (chosen["BATCH"], chosen["COMPILE"]) == (24, "true")
    assert float(chosen["LR"]) == pytest.approx(2e-4 * 2, rel=1e-2)


@pytest.mark.prerequisite(SHARED_MASKS.is_dir(), reason="needs ../shared/data")
def test_mask_split_halves_every_bucket_and_border_group(tmp_path):
    even, odd = _script("split_masks").split(SHARED_MASKS, tmp_path / "even", tmp_path / "odd")
    assert (even, odd) == (1000, 1000)
    even_names = {p.name for p in (tmp_path / "even").glob("*.png")}
    odd_names = {p.name for p in (tmp_path / "odd").glob("*.png")}
    assert not even_names & odd_names and "00000.png" in even_names and "00006.png" in odd_names
    for names in (even_names, odd_names):  # blocks of 1,000 = 6 buckets x border / no border
        groups = [sum(int(n[:5]) // 1000 == block for n in names) for block in range(12)]
        assert min(groups) >= 83 and max(groups) <= 84
    assert (tmp_path / "odd" / "manifest.csv").is_file()


@pytest.mark.slow
def test_gpu_session_rehearsed_on_cpu(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pconv_lightning", "benchmarks", "experiments", "scripts"):
        (repo / name).symlink_to(REPO / name)
    build_pack(SAMPLES / "train", repo / ".gpu" / "train_pool_256.pack", size=64, fmt="png")
    shutil.copytree(SAMPLES / "eval_masks", repo / ".gpu" / "masks_train")
    vgg = make_layers(cfgs["D"][:10])  # random conv1_1..pool3, in the shared file's layout
    torch.save(vgg.state_dict(), repo / ".gpu" / "vgg16_pool3.pth")
    out = tmp_path / "out"
    env = os.environ | {
        "TINY": "1",
        "OUT": str(out),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "OMP_NUM_THREADS": "2",
        "WATCH": "240",
    }

    def bash(*args: str) -> str:
        done = subprocess.run(["bash", *args], cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    assert "| size |" in bash("scripts/gpu/bench.sh")
    log = bash("scripts/gpu/start_runs.sh", "30")
    assert "chosen: batch" in log and "training finished" in log
    deadline = time.monotonic() + 300
    while not (repo / "outputs" / "mp" / "mixed_precision.json").is_file():
        assert time.monotonic() < deadline, (repo / "outputs" / "mp" / "mp.log").read_text()
        time.sleep(2)
    shutil.rmtree(out)
    bash("scripts/gpu/collect.sh", "5")
    files = sorted(p.name for p in out.iterdir())
    assert files[-1] == "reports.tar.gz" and "pieces.json" in files and len(files) <= 8
    assert all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())
    with tarfile.open(out / "reports.tar.gz") as tar:
        names = tar.getnames()
    assert {"outputs/mp/mixed_precision.png", "outputs/bench/gpu_bench.json"} <= set(names)
    assert "outputs/reference_256/csv/run/metrics.csv" in names
    bash("scripts/gpu/fetch.sh", str(out), str(tmp_path / "fetched"))
    net = load_network(tmp_path / "fetched" / "reference_256_fp16.safetensors")
    assert net.multiple == 2**6
    result = json.loads((repo / "outputs" / "mp" / "mixed_precision.json").read_text())
    assert all(r["all_finite"] for r in result["results"].values())


def test_mixed_precision_counts_the_steps_the_scaler_skipped():
    spec = importlib.util.spec_from_file_location(
        "mixed_precision", REPO / "benchmarks" / "mixed_precision.py"
    )
    mp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp)
    scales = iter([65536.0, 32768.0, 16384.0, 16384.0, 32768.0, 16384.0, 16384.0])

    class Scaler:
        def get_scale(self) -> float:
            return next(scales)

    trainer = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=Scaler()), global_step=0)
    recorder = mp.LossRecorder()
    for step in range(1, 8):
        trainer.global_step = step
        recorder.on_train_batch_end(trainer, None, {"loss": torch.tensor(2.0 / step)}, None, 0)
    assert [r["skipped"] for r in recorder.rows] == [False, True, True, False, False, True, False]
    result = mp.summary(recorder.rows, None, settle=3, reference=recorder.rows[:4])
    assert result["skipped_steps"] == [2, 3, 6] and result["skipped_after_settle"] == 1
    assert result["all_finite"] and result["mean_abs_rel_diff_vs_32"] == 0.0
    assert result["compare_steps"] == 4 and result["final_scale"] == 16384.0
