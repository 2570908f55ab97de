"""The time-budgeted GPU run's scripts (docs/gpu.md) rehearsed on the CPU (TINY=1): bench.sh
and start_runs.sh (benchmark, choice of the settings, start of the training chain and of the
mixed-precision proof), collect.sh (starting weights that arrive later, collection of the
weight pieces and reports), fetch and merge; and their parts: the choice of batch / lr /
compile / steps and of where the proof runs, stage 2 by time, last.ckpt exported at a
deadline, the staging of the starting weights, the mask split."""

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
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.trainer.states import RunningStage
from safetensors.torch import load_file
from torchvision.models.vgg import cfgs, make_layers
from training_helpers import REPO, SAMPLES

from pconv_lightning.callbacks import Stage2Finetune
from pconv_lightning.checkpoints.pieces import half_state, merge_pieces, save_pieces
from pconv_lightning.data.pack import build_pack
from pconv_lightning.models import PConvUNet

SHARED_MASKS = REPO.parent / "shared" / "data" / "nvidia_irregular_masks_test"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script(name: str):
    return _load(REPO / "scripts" / "gpu" / f"{name}.py", name)


def _row(batch: int, rate: float, compiled: bool = False, **kw) -> dict:
    base = {
        "size": 256, "net": "pconv", "precision": "bf16-mixed", "channels_last": True,
        "peak_gib": 20.0, "gflop_per_image": 181.3, "first_step_s": 1.0,
    }  # fmt: skip
    row = base | {"batch": batch, "images_per_s": rate, "compile": compiled} | kw
    row.setdefault("tflop_per_s", round(rate * row["gflop_per_image"] / 1e3, 1))
    return row


def _table(rows: list[dict], loader: float | None = 1000.0, total_gib: float = 139.0) -> dict:
    return {
        "rows": rows,
        "loader": None if loader is None else {"images_per_s": loader},
        "total_gib": total_gib,
    }


def test_pick_config_follows_the_table():
    pick = _script("pick_config").pick
    rows = [
        _row(32, 400.0),
        _row(64, 420.0),
        _row(32, 460.0, True, first_step_s=40.0),  # compiling twice costs more than it gains
        _row(32, 900.0, net="plain"),
        _row(32, 999.0, precision="16-mixed"),
    ]
    chosen = pick(_table(rows), seconds=570)
    assert (chosen["BATCH"], chosen["COMPILE"], chosen["RATE"]) == (64, "false", 420.0)
    assert float(chosen["LR"]) == pytest.approx(5e-4)  # 2e-4 * sqrt(64 / 6) = 6.5e-4, capped
    # room for the proof: 300 x 8 x 181.3 GFLOP x (2 + 4) / 76 TFLOP/s = 34 s <= 50 s
    assert chosen["MP_MODE"] == "concurrent" and chosen["TRAIN_S"] == 570 - 30 - 15
    busy = 300 * 8 * 181.3 / 1e3 * 6 / 76.1
    expected = int(0.9 * 420 * (525 - 2 * busy) / 64)
    assert chosen["EXPECTED_STEPS"] == expected
    assert chosen["MAX_STEPS"] == int(1.3 * expected) and chosen["AT_STEP"] == int(
        0.8 * int(1.3 * expected)
    )
    rows.append(_row(32, 600.0, True, first_step_s=5.0))  # fast to compile and 1.4x: compile
    chosen = pick(_table(rows), seconds=570, init=True)
    assert (chosen["BATCH"], chosen["COMPILE"]) == (32, "true")
    assert float(chosen["LR"]) == pytest.approx(2e-4)  # from reference weights: the paper's lr


@pytest.mark.parametrize(
    ("loader", "total_gib", "tflops", "reason"),
    [
        (500.0, 139.0, None, "processor"),  # 500 < 1.3 x 420: the loader has no spare workers
        (None, 139.0, None, "processor"),  # the data path was not measured
        (1000.0, 30.0, None, "memory"),  # 20 + (2 x 20 x 8 / 64 + 4) GiB > 85% of 30
        (1000.0, 139.0, 20.0, "GPU"),  # 300 x 8 x 181.3 x 6 / 20 = 130 s > 50
    ],
)
def test_mixed_precision_runs_after_training_without_room(loader, total_gib, tflops, reason):
    pick = _script("pick_config").pick
    row = _row(64, 420.0) | ({"tflop_per_s": tflops} if tflops else {})
    chosen = pick(_table([row], loader, total_gib), seconds=570, mp_alone_s=100)
    assert chosen["MP_MODE"] == "after" and reason in chosen["MP_REASON"]
    assert chosen["TRAIN_S"] == 570 - 30 - 15 - 100  # the proof's time comes off the training
    forced = pick(_table([row], loader, total_gib), seconds=570, mp_mode="concurrent")
    assert forced["MP_MODE"] == "concurrent" and "MP_MODE" in forced["MP_REASON"]
    late = pick(_table([row], loader, total_gib), seconds=150)  # a late start
    assert late["MP_MODE"] == "concurrent" and "too little time" in late["MP_REASON"]
    assert late["TRAIN_S"] == 150 - 45 and late["MAX_STEPS"] >= 10
    skipped = pick(_table([row], loader, total_gib), seconds=570, mp_mode="skip")
    assert skipped["MP_MODE"] == "skip" and skipped["TRAIN_S"] == 570 - 30 - 15  # all trains


def test_pick_config_falls_back_without_a_table(tmp_path, monkeypatch, capsys):
    module = _script("pick_config")
    monkeypatch.setattr(sys, "argv", ["pick_config.py", str(tmp_path / "missing.json")])
    module.main()
    captured = capsys.readouterr()
    values = dict(line.split("=", 1) for line in captured.out.splitlines())
    assert values["BATCH"] == "32" and values["COMPILE"] == "false"
    assert values["MP_MODE"] == "after" and "fallback" in captured.err
    assert values["MP_REASON"].startswith("'")  # shell-quoted for eval


def _stage2_trainer(elapsed: float, at_step: int | None, step: int = 50, duration: float = 100):
    timer = Timer(duration={"seconds": duration})
    timer._start_time[RunningStage.TRAINING] = time.monotonic() - elapsed
    stage2 = Stage2Finetune(at_step=at_step)
    return SimpleNamespace(callbacks=[timer, stage2], global_step=step), stage2


@pytest.mark.parametrize(
    ("elapsed", "at_step", "expected"),
    [(50.0, 1000, 1000), (85.0, 1000, 50), (85.0, None, 50), (85.0, 30, 30), (50.0, None, None)],
)
def test_stage2_starts_at_four_fifths_of_max_time(elapsed, at_step, expected):
    callback = _script("timed_stage2").Stage2AtTimeFraction(0.8)
    trainer, stage2 = _stage2_trainer(elapsed, at_step)
    callback.on_train_batch_start(trainer, None, None, 0)
    assert stage2.at_step == expected


def _net_pieces(folder: Path, layers: int, step: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(step)
    net = PConvUNet(layers)
    for parameter in net.parameters():  # every tensor distinct (He init zeroes the biases)
        torch.nn.init.normal_(parameter, std=0.05)
    half = half_state(net.state_dict())
    save_pieces(half, folder, piece_bytes=300_000, info={"step": step})
    return half


def test_last_checkpoint_is_exported_when_newer_than_the_last_export(tmp_path):
    export_newer = _script("ckpt_pieces").export_newer
    run = tmp_path / "run"
    _net_pieces(run / "weights" / "step-0000005", 3, 5)
    (run / "weights" / "LATEST").write_text("step-0000005")
    assert export_newer(run) is None  # no last.ckpt
    state = PConvUNet(3).state_dict()
    ckpt = {"global_step": 5, "epoch": 0, "state_dict": {f"net.{k}": v for k, v in state.items()}}
    ckpt["state_dict"]["loss.vgg.w"] = torch.ones(2)
    (run / "checkpoints").mkdir(parents=True)
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    assert export_newer(run) is None  # the export at step 5 is as new
    ckpt["global_step"] = 9
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    folder = export_newer(run, piece_mb=0.1)
    assert folder.name == "step-0000009" and (run / "weights" / "LATEST").read_text() == folder.name
    merged, manifest = merge_pieces(folder)
    assert manifest["step"] == 9 and "last.ckpt" in manifest["source"]
    assert merged.keys() == state.keys() and len(manifest["pieces"]) > 1
    assert torch.equal(merged["encoder.0.conv.weight"], state["encoder.0.conv.weight"].half())


def test_merging_into_a_file_with_the_same_weights_keeps_its_bytes(tmp_path, capsys):
    """The merged file's bytes vary between merges (safetensors writes the metadata in no fixed
    order), so a release run again must not rewrite a committed file that holds these weights."""
    from pconv_lightning.checkpoints.pieces import main as merge

    half = _net_pieces(tmp_path / "export", 3, 5)
    out = tmp_path / "released.safetensors"
    assert merge([str(tmp_path / "export"), str(out)]) == 0
    before = out.read_bytes()
    os.utime(out, (0, 0))
    assert merge([str(tmp_path / "export"), str(out)]) == 0
    assert "kept" in capsys.readouterr().out
    assert out.read_bytes() == before and out.stat().st_mtime == 0
    other = _net_pieces(tmp_path / "other", 3, 6)  # another network
    assert merge([str(tmp_path / "other"), str(out)]) == 0
    merged = load_file(out)
    assert out.stat().st_mtime > 0 and all(torch.equal(merged[k], other[k]) for k in half)


def test_newest_reference_weights_are_staged(tmp_path):
    stage_init = _script("stage_init")
    release = tmp_path / "weights" / "reference_256.safetensors"
    cpu_run = tmp_path / "cpu_run"
    assert stage_init.candidates(release, cpu_run) == []
    export = cpu_run / "weights" / "step-0000007"
    half = _net_pieces(export, 4, 7)
    (cpu_run / "weights" / "LATEST").write_text("step-0000007\n")
    release.parent.mkdir()
    release.write_bytes(b"")
    os.utime(release, (0, 0))  # older than the export
    found = stage_init.candidates(release, cpu_run)
    assert found == [release, export] and max(found, key=stage_init._mtime) == export
    info = stage_init.stage(export, tmp_path / ".gpu_init", tmp_path / ".gpu" / "init.json", 4)
    assert info["kind"] == "pieces" and info["step"] == 7
    assert json.loads((tmp_path / ".gpu" / "init.json").read_text()) == info
    merged, _ = merge_pieces(tmp_path / ".gpu_init")
    assert all(torch.equal(merged[k], v) for k, v in half.items())
    with pytest.raises(ValueError, match="not the 5-layer PConvUNet"):
        stage_init.stage(export, tmp_path / "x", tmp_path / "x.json", 5)
    from safetensors.torch import save_file

    save_file(half, str(release))
    info = stage_init.stage(release, tmp_path / ".gpu_init", tmp_path / "i.json", 4)
    assert info["kind"] == "safetensors"
    assert [p.name for p in (tmp_path / ".gpu_init").iterdir()] == ["reference_256.safetensors"]


@pytest.mark.prerequisite(SHARED_MASKS.is_dir(), reason="needs ../shared/data")
def test_mask_split_halves_every_bucket_and_border_group(tmp_path):
    from pconv_lightning.masks.split import split_even_odd

    even, odd = split_even_odd(SHARED_MASKS, tmp_path / "even", tmp_path / "odd")
    assert (even, odd) == (1000, 1000)
    even_names = {p.name for p in (tmp_path / "even").glob("*.png")}
    odd_names = {p.name for p in (tmp_path / "odd").glob("*.png")}
    assert not even_names & odd_names and "00000.png" in even_names and "00006.png" in odd_names
    for names in (even_names, odd_names):  # blocks of 1,000 = 6 buckets x border / no border
        groups = [sum(int(n[:5]) // 1000 == block for n in names) for block in range(12)]
        assert min(groups) >= 83 and max(groups) <= 84
    assert (tmp_path / "odd" / "manifest.csv").is_file()


def _device_checkout(tmp_path: Path, pack: str = "train_pool_256.pack") -> Path:
    """What the GPU host has: the scripts and a tiny .gpu/ (pack, masks, VGG)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pconv_lightning", "benchmarks", "experiments", "scripts"):
        (repo / name).symlink_to(REPO / name)
    build_pack(SAMPLES / "train", repo / ".gpu" / pack, size=64, fmt="png")
    shutil.copytree(SAMPLES / "eval_masks", repo / ".gpu" / "masks_train")
    vgg = make_layers(cfgs["D"][:10])  # random conv1_1..pool3, in the shared file's layout
    torch.save(vgg.state_dict(), repo / ".gpu" / "vgg16_pool3.pth")
    return repo


def _runner(repo: Path, out: Path, **extra: str):
    env = os.environ | {
        "TINY": "1",
        "OUT": str(out),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",  # a loaded 2-core machine: more threads only spin
        "STARTUP_S": "5",
        "EXIT_S": "5",
        "MP_ALONE_S": "20",
        "FULL_MIN_S": "100000",  # the full table: test_full_table_runs_tiny
        "SETTLE_S": "0",
        # The GPU machine has no network and no cache: nothing may need ImageNet VGG16 weights
        # other than the carried .gpu/vgg16_pool3.pth (LPIPS's full VGG16 stopped the first
        # GPU run in 15 s).
        "PCONV_WEIGHTS_DIR": str(repo.parent / "no_derived_weights"),
        "TORCH_HOME": str(repo.parent / "no_torch_hub"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        **extra,
    }

    def bash(*args: str) -> str:
        done = subprocess.run(["bash", *args], cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout + done.stderr

    return bash


def _returned(out: Path) -> list[str]:
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())
    return files


def _rehearse(
    tmp_path: Path, mp_mode: str, init: bool, config: str | None = None
) -> tuple[Path, Path]:
    """The three steps on the host; ``config``: CONFIG, used on top of reference_256.yaml (the
    host then has only the pack it names)."""
    pack = "train_all_256.pack" if config else "train_pool_256.pack"
    repo = _device_checkout(tmp_path, pack)
    if init:  # prepare.sh's staging: .gpu/init.json now, .gpu_init/ later
        half = _net_pieces(tmp_path / "export", 6, 11)
        _script("stage_init").stage(tmp_path / "export", tmp_path / "staged",
                                    repo / ".gpu" / "init.json", layers=6)  # fmt: skip
    out = tmp_path / "out"
    bash = _runner(repo, out, MP_MODE=mp_mode, **({"CONFIG": config} if config else {}))
    # measure and start
    assert "| size |" in bash("scripts/gpu/bench.sh")
    log = bash("scripts/gpu/start_runs.sh", "200")  # 200 - 5 - 5 - 20 s: room for "after"
    assert "chosen: batch" in log and f"mixed precision: {mp_mode}" in log
    configs = "experiments/configs/reference_256.yaml" + (f" + {config}" if config else "")
    assert f"config: {configs}; pack: .gpu/{pack}" in log
    assert "fallback" not in log  # the benchmark's table decided
    assert _returned(out) == ["bench.log", "chosen.txt", "gpu_bench.csv", "gpu_bench.json"]
    fit = json.loads((out / "gpu_bench.json").read_text())["fit"]  # pconv fit against raw
    assert [(row["compile"], row["epoch_ends_timed"]) for row in fit] == [(False, 0), (True, 0)]
    assert all(row["fit_images_per_s"] > 0 and row["raw_images_per_s"] > 0 for row in fit)
    shutil.rmtree(out)
    # collect: the starting weights land in .gpu_init first
    if init:
        shutil.copytree(tmp_path / "staged", repo / ".gpu_init")
    summary = bash("scripts/gpu/collect.sh", "400")
    assert "training: exit 0" in summary, summary
    files = _returned(out)
    assert files[-2:] == ["reports.tar.gz", "summary.txt"] and "pieces.json" in files
    with tarfile.open(out / "reports.tar.gz") as tar:
        names = set(tar.getnames())
    run = "outputs/reference_256"
    assert {f"{run}/csv/run/metrics.csv", f"{run}/chain.log", f"{run}/chosen.txt"} <= names
    assert "outputs/bench/gpu_bench.json" in names
    if mp_mode == "skip":  # the proof passed before: nothing of it runs
        assert not (repo / "outputs" / "mp" / "mixed_precision.json").exists()
    else:
        assert "outputs/mp/mixed_precision.png" in names
        result = json.loads((repo / "outputs" / "mp" / "mixed_precision.json").read_text())
        assert all(r["all_finite"] for r in result["results"].values())
    chain = (repo / run / "chain.log").read_text()
    if init:
        assert "init weights: .gpu_init" in chain
        final = load_file(next((out).glob("piece-*.safetensors")))
        convs = [k for k in final if k.endswith("conv.weight")]
        assert convs and all((final[k] - half[k]).abs().max() < 5e-3 for k in convs)  # 3 steps
    else:
        assert "init weights" not in chain and "mixed-precision proof (after" in chain
    bash("scripts/gpu/fetch.sh", str(out), str(tmp_path / "fetched"))
    return repo, tmp_path / "fetched" / "reference_256_fp16.safetensors"


@pytest.mark.slow
def test_budgeted_run_rehearsed_on_cpu_from_scratch(tmp_path):
    _, merged = _rehearse(tmp_path, mp_mode="after", init=False)
    state = load_file(merged)
    assert "encoder.5.conv.weight" in state and "encoder.6.conv.weight" not in state


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mp_mode", "config"),
    [("concurrent", None), ("skip", "experiments/configs/reference_256_continued.yaml")],
    ids=["concurrent", "skip-continued"],
)
def test_budgeted_run_rehearsed_on_cpu_from_reference_weights(tmp_path, mp_mode, config):
    _rehearse(tmp_path, mp_mode=mp_mode, init=True, config=config)


@pytest.mark.slow
def test_collect_stops_a_run_at_its_deadline_and_keeps_last_ckpt(tmp_path):
    repo = _device_checkout(tmp_path)
    run = repo / "outputs" / "reference_256"
    _net_pieces(run / "weights" / "step-0000002", 3, 2)
    (run / "weights" / "LATEST").write_text("step-0000002")
    state = PConvUNet(3).state_dict()
    (run / "checkpoints").mkdir(parents=True)
    ckpt = {"global_step": 4, "state_dict": {f"net.{k}": v for k, v in state.items()}}
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    # a training that would outlast the lease, waited for by its chain as train_chain.sh does
    chain = subprocess.Popen(
        ["bash", "-c", "sleep 300 & echo $! > train.pid; wait $!; echo $? > train.rc"], cwd=run
    )
    out = tmp_path / "out"
    try:
        started = time.monotonic()
        # stop at 60 - 50 - 5 = 5 s; then up to 35 s for ckpt_pieces.py (its torch import)
        summary = _runner(repo, out, COLLECT_S="50", STOP_S="5")("scripts/gpu/collect.sh", "60")
        assert chain.wait(timeout=5) == 0
    finally:
        chain.kill()
    assert time.monotonic() - started < 90
    assert "training: exit 143" in summary and "weights: step-0000004" in summary  # SIGTERM
    assert (repo / "outputs" / "stop").is_file()
    assert json.loads((out / "pieces.json").read_text())["step"] == 4


def test_collect_returns_at_once_when_the_training_failed(tmp_path):
    repo = _device_checkout(tmp_path)
    run = repo / "outputs" / "reference_256"
    run.mkdir(parents=True)
    (run / "train.rc").write_text("1\n")
    (run / "train.log").write_text("FileNotFoundError: VGG16 ImageNet weights not found\n")
    (repo / "outputs" / "chain.done").touch()
    out = tmp_path / "out"
    summary = _runner(repo, out, FULL_MIN_S="0")("scripts/gpu/collect.sh", "400")
    assert "the training failed (exit 1): no full table" in summary
    assert "training: exit 1" in summary and "VGG16 ImageNet weights" in summary
    assert not (repo / "outputs" / "bench_full").exists()


def test_full_table_runs_tiny(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    gpu = _load(REPO / "benchmarks" / "gpu.py", "gpu_bench")
    monkeypatch.setattr(
        sys, "argv", ["gpu.py", "--device", "cpu", "--tiny", "--full", "--out", str(tmp_path)]
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: a second thread only waits (a loaded machine)
    try:
        gpu.main()
    finally:
        torch.set_num_threads(threads)
    result = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert result["mode"] == "full" and not result["failed"]
    configs = {(r["precision"], r["channels_last"], r["compile"]) for r in result["rows"]}
    assert ("32", False, False) in configs and ("bf16-mixed", True, True) in configs
    assert {r["net"] for r in result["rows"] if r["compile"]} == {"pconv", "plain"}


def test_mixed_precision_counts_the_steps_the_scaler_skipped():
    mp = _load(REPO / "benchmarks" / "mixed_precision.py", "mixed_precision")
    scales = iter([65536.0, 32768.0, 16384.0, 16384.0, 32768.0, 16384.0, 16384.0])

    class Scaler:
        def get_scale(self) -> float:
            return next(scales)

    trainer = SimpleNamespace(
        precision_plugin=SimpleNamespace(scaler=Scaler()), global_step=0, callback_metrics={}
    )
    recorder = mp.LossRecorder()
    for step in range(1, 8):
        trainer.global_step = step
        trainer.callback_metrics = {"train/loss_hole": torch.tensor(1.0 / step)}  # as logged
        recorder.on_train_batch_end(trainer, None, {"loss": torch.tensor(2.0 / step)}, None, 0)
    assert [r["hole"] for r in recorder.rows] == pytest.approx([1 / s for s in range(1, 8)])
    assert [r["skipped"] for r in recorder.rows] == [False, True, True, False, False, True, False]
    result = mp.summary(recorder.rows, None, settle=3, reference=recorder.rows[:4])
    assert result["skipped_steps"] == [2, 3, 6] and result["skipped_after_settle"] == 1
    assert result["all_finite"] and result["mean_abs_rel_diff_vs_32"] == 0.0
    assert result["compare_steps"] == 4 and result["final_scale"] == 16384.0
    assert result["final_hole_rel_diff_vs_32"] == 0.0 and "final_tv_rel_diff_vs_32" not in result
    assert not result["passed"]  # a step skipped after settling
    assert mp.summary(recorder.rows, None, settle=6, reference=[])["passed"]
