"""`pconv sweep`: W&B sweep files run offline with W&B's own engine (the `sweeps` package).

Grid and bayes sweeps of tiny `pconv fit` points on the shipped samples (the engine's proposals
are the points run, the metric is read from each point's offline W&B run, the parameters reach
the model), a sweep killed between points resumes without rerunning one, hyperband stops a
point with a worse history, a bad sweep file fails in one line naming the field, and the parts:
the transaction-log reader, the engine shim and the summary."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from training_helpers import CONFIGS, REPO, tiny_args

from pconv_lightning.cli import cli_main
from pconv_lightning.extras import MissingExtraError
from pconv_lightning.sweeps import engine
from pconv_lightning.sweeps.records import Point, SweepDir
from pconv_lightning.sweeps.runner import Sweep
from pconv_lightning.sweeps.summary import plotted, rows, write_summary
from pconv_lightning.sweeps.wandb_runs import read_run

METRIC = {"name": "val/lpips", "goal": "minimize"}
HOLE = "model.loss_weights.hole"
STYLE = "model.loss_weights.style"

# A stand-in program for the machinery's own tests: logs val/lpips = (x - 2)^2 + 1/(i + 1) at
# each of its `--steps` "validations" to an offline W&B run; a weak point (x > 4) waits `--pause`
# seconds after each.
FAKE_PROGRAM = """\
import sys, time, wandb
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
x = float(args["x"])
run = wandb.init(project="pconv-test", config={"note": "x" * int(args.get("pad", 0))})
for i in range(int(args.get("steps", 4))):
    run.log({"val/lpips": (x - 2) ** 2 + 1 / (i + 1), "val/psnr": 20.0 - x + i,
             "trainer/global_step": 2 * i, "blob": "y" * int(args.get("pad", 0))})
    time.sleep(float(args.get("pause", 0)) if x > 4 else 0)
run.finish()
"""


def tiny_sweep(tmp_path: Path, method: str, parameters: dict, **extra) -> Path:
    """A sweep file of tiny `pconv fit` points (4 steps, validation every 2) on the samples,
    run by fit_point.sh as the repository's sweep files are."""
    tiny = [a for a in tiny_args(tmp_path / "unused", steps=4) if "default_root_dir" not in a]
    config = {
        "program": "experiments/sweeps/fit_point.sh",
        "project": "pconv-test",
        "method": method,
        "metric": METRIC,
        "parameters": parameters,
        "command": [
            "${env}",
            "${program}",
            "--config",
            "experiments/configs/imagenet_256.yaml",
            "--config",
            "experiments/configs/sweep_256.yaml",
            *tiny,
            "--trainer.val_check_interval=2",
            "${args}",
        ],
        **extra,
    }
    path = tmp_path / f"{method}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def fake_sweep(tmp_path: Path, parameters: dict, command_args=(), **extra) -> Path:
    program = tmp_path / "fake_point.py"
    program.write_text(FAKE_PROGRAM)
    config = {
        "program": str(program),
        "method": "grid",
        "metric": METRIC,
        "parameters": parameters,
        "command": ["${env}", sys.executable, "${program}", *command_args, "${args}"],
        **extra,
    }
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def at_repo_root(monkeypatch):
    """Points run from the repository root (as `wandb agent` runs them) with this Python."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PCONV_PYTHON", sys.executable)
    monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)


def sweep_points(out: Path) -> list[Point]:
    return SweepDir(out).points()


def replayed_proposals(config: dict, points: list[Point], sweep_id: str) -> list[dict]:
    """What the engine proposes for each point given the points finished before it."""
    proposals, done = [], []
    for point in points:
        proposals.append(engine.propose(config, done, engine.seed_for(sweep_id, len(done))))
        done.append(
            engine.sweep_run(point.run_id, point.state, point.config, point.history, point.summary)
        )
    return proposals


def checkpoint(out: Path, point: Point) -> dict:
    path = SweepDir(out).run_dir(point) / "checkpoints" / "last.ckpt"
    return torch.load(path, weights_only=False, map_location="cpu")


def assert_point_ran_pconv_fit(out: Path, point: Point) -> None:
    """The point finished with both validations' metrics read from its W&B run, its
    parameters reached the model, and the values read are the run's own (its best
    checkpoint's val/psnr is the best val/psnr read)."""
    assert point.state == "finished" and point.exit_code == 0 and not point.stopped
    assert len(point.history) == 2 and all(np.isfinite(point.values("val/lpips")))
    ckpt = checkpoint(out, point)
    assert ckpt["global_step"] == 4
    weights = ckpt["hyper_parameters"]["loss_weights"]
    for name, value in point.params.items():
        assert weights[name.split(".")[-1]] == pytest.approx(value)
    (best,) = [
        state["best_model_score"]
        for key, state in ckpt["callbacks"].items()
        if key.startswith("ModelCheckpoint") and "val/psnr" in key
    ]
    assert max(point.values("val/psnr")) == pytest.approx(best.item(), rel=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a few tiny fits: slow on a loaded 2-core machine
def test_bayes_sweep_runs_the_engines_proposals(tmp_path, at_repo_root):
    parameters = {
        HOLE: {"distribution": "uniform", "min": 2.0, "max": 12.0},
        STYLE: {"distribution": "log_uniform_values", "min": 30.0, "max": 500.0},
    }
    path = tiny_sweep(tmp_path, "bayes", parameters)
    out = tmp_path / "sweep"
    assert cli_main(["sweep", str(path), "--count", "3", "--out", str(out), "--poll", "0.5"]) == 0
    points = sweep_points(out)
    assert len(points) == 3
    sweep_id = json.loads((out / "sweep.json").read_text())["id"]
    proposals = replayed_proposals(engine.load(path), points, sweep_id)
    assert [p.config for p in points] == proposals  # each point is what the engine proposed
    assert len({p.params[HOLE] for p in points}) == 3
    for point in points:
        assert 2.0 <= point.params[HOLE] <= 12.0 and 30.0 <= point.params[STYLE] <= 500.0
        assert_point_ran_pconv_fit(out, point)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a few tiny fits: slow on a loaded 2-core machine
def test_grid_sweep_killed_between_points_resumes_and_runs_the_engines_points(
    tmp_path, at_repo_root, capsys
):
    path = tiny_sweep(tmp_path, "grid", {HOLE: {"values": [2.0, 6.0, 12.0]}})
    out = tmp_path / "sweep"
    command = ["sweep", str(path), "--out", str(out), "--poll", "0.5"]
    sweep = subprocess.Popen(
        [sys.executable, "-m", "pconv_lightning", *command],
        start_new_session=True,  # the sweep and its points: one group to kill
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 900
    first = None
    while time.monotonic() < deadline and sweep.poll() is None:
        found = sorted((out / "points").glob("001-*.json")) if out.exists() else []
        if found and json.loads(found[0].read_text())["state"] == "finished":
            first = found[0]
            break
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)  # between points (or as the second starts)
    sweep.wait()
    assert first is not None, "the first point did not finish"
    record = first.read_text()
    log = SweepDir(out).runs / first.stem.split("-")[1] / "output.log"
    log_size = log.stat().st_size

    assert cli_main(command) == 0
    assert "; 1 point(s) done" in capsys.readouterr().out
    assert first.read_text() == record and log.stat().st_size == log_size  # not rerun
    points = sweep_points(out)
    assert {p.state for p in points} <= {"finished", "interrupted"}
    assert all(p.params[HOLE] == 6.0 for p in points if p.state == "interrupted")
    finished = [p for p in points if p.state == "finished"]
    assert [p.params[HOLE] for p in finished] == [2.0, 6.0, 12.0]  # the grid, each point once
    config = engine.load(path)
    assert [p.config for p in finished] == replayed_proposals(config, finished, "unused")
    for point in finished:
        assert_point_ran_pconv_fit(out, point)
        assert point.command[:2] == ["/usr/bin/env", "experiments/sweeps/fit_point.sh"]
        assert point.command[-1] == f"--{HOLE}={point.params[HOLE]}"
    table = [r for r in rows(config, points) if r["state"] == "finished"]
    assert [r["val/lpips best"] for r in table] == [min(p.values("val/lpips")) for p in finished]
    summary = (out / "summary.md").read_text()
    assert "Best point:" in summary and (out / "summary.png").stat().st_size > 0
    # each run is a plain offline W&B run that `wandb sync` can upload: no sweep id in it,
    # grouped by the sweep, with the point's parameters in its config
    sweep_id = json.loads((out / "sweep.json").read_text())["id"]
    run_file = SweepDir(out).run_file(finished[0])
    assert run_file.parent.name.startswith("offline-run-")
    run = read_run(run_file).run
    assert run["id"] == finished[0].run_id and run["project"] == "pconv-lightning"
    assert run["group"] == f"sweep-{sweep_id}" and run["sweep_id"] == ""
    assert HOLE.encode() in run_file.read_bytes()


def hand_made(number: int, state: str, values: list[float]) -> Point:
    return Point(
        number=number,
        run_id=f"run{number}",
        config={"x": {"value": float(number)}},
        state=state,
        history=[{"val/lpips": v, "_step": i} for i, v in enumerate(values)],
    )


def test_hyperband_stops_a_point_whose_history_is_worse(tmp_path):
    early = {"type": "hyperband", "min_iter": 1, "eta": 2}
    sweep = Sweep(fake_sweep(tmp_path, {"x": {"values": [1.0]}}, early_terminate=early), tmp_path)
    done = [
        hand_made(1, "finished", [0.50, 0.40, 0.35, 0.30]),
        hand_made(2, "finished", [0.60, 0.45, 0.42, 0.40]),
        hand_made(3, "finished", [0.55, 0.50, 0.47, 0.45]),
    ]
    worse = hand_made(4, "running", [0.70, 0.65])  # past band 1, worse than every point there
    sweep.early_terminate(worse, done)
    assert worse.stopped and "STOP" in worse.stop_info
    better = hand_made(5, "running", [0.45, 0.38])
    sweep.early_terminate(better, done)
    assert not better.stopped
    young = hand_made(6, "running", [0.9])  # no band reached yet: never stopped
    sweep.early_terminate(young, done)
    assert not young.stopped


@pytest.mark.slow
def test_hyperband_stops_a_running_point(tmp_path, monkeypatch):
    """The stop reaches the process: a weak third point is terminated after its first band."""
    monkeypatch.setenv("WANDB__TRANSACTION_LOG_FLUSH_INTERVAL", "0.2")
    early = {"type": "hyperband", "min_iter": 1, "eta": 2}
    path = fake_sweep(
        tmp_path,
        {"x": {"values": [2.0, 2.5, 5.0]}},
        ["--steps=6", "--pause=0.5"],
        early_terminate=early,
    )
    out = tmp_path / "sweep"
    assert cli_main(["sweep", str(path), "--out", str(out), "--poll", "0.2"]) == 0
    points = sweep_points(out)
    assert [p.stopped for p in points] == [False, False, True]
    assert points[2].state == "finished" and 2 <= len(points[2].history) < 6
    assert points[2].exit_code != 0  # terminated
    assert rows(engine.load(path), points)[2]["stopped early"] == "yes"


BAD_FILES = [
    ("method: bayesian", "method"),
    ("metric: {name: val/lpips, goal: lower}", "metric.goal"),
    (
        "parameters: {model.loss_weights.style: {distribution: log_uniform_values, min: 0, max: 1.0}}",
        "parameters.model.loss_weights.style.min",
    ),
    (
        "parameters: {model.loss_weights.hole: {min: 12.0, max: 2.0}}",
        "parameters.model.loss_weights.hole",
    ),
    ("early_terminate: {type: hyperband, eta: 2}", "early_terminate"),
    ("method: grid", "parameters.model.loss_weights.hole"),  # grid of a continuous range
    ("colour: blue", "colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FILES, ids=[f for _, f in BAD_FILES])
def test_a_file_the_engine_rejects_fails_in_one_line_naming_the_field(
    tmp_path, capsys, change, field
):
    config = {
        "program": "fit.py",
        "method": "random",
        "metric": METRIC,
        "parameters": {"model.loss_weights.hole": {"min": 2.0, "max": 12.0}},
    }
    config.update(yaml.safe_load(change))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli_main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"pconv sweep: error: {path}: {field}")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_rejected_file_prints_one_line_from_the_console(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("program: x.py\nmethod: bayes\nparameters: {a: {min: 1.0, max: 2.0}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pconv_lightning", "sweep", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"pconv sweep: error: {path}: metric: ")


@pytest.mark.slow
def test_a_sweep_whose_first_points_all_fail_stops(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_AGENT_MAX_INITIAL_FAILURES", "2")
    config = {
        "method": "grid",
        "metric": METRIC,
        "parameters": {"x": {"values": [1, 2, 3]}},
        "command": [sys.executable, "-c", "import sys; print('no data'); sys.exit(3)", "${args}"],
    }
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "sweep"
    assert cli_main(["sweep", str(path), "--out", str(out), "--poll", "0.1"]) == 1
    points = sweep_points(out)
    assert [(p.state, p.exit_code) for p in points] == [("failed", 3), ("failed", 3)]
    printed = capsys.readouterr().out
    assert "failed (exit 3): no data" in printed and "the first 2 points failed" in printed


def test_every_sweep_file_of_the_repository_passes_the_engine():
    for path in sorted((REPO / "experiments" / "sweeps").glob("*.yaml")):
        config = engine.load(path)
        assert engine.propose(config, [], 0) is not None


def test_a_changed_sweep_file_is_not_resumed_into_an_old_folder(tmp_path, capsys):
    path = fake_sweep(tmp_path, {"x": {"values": [1.0, 2.0]}})
    out = tmp_path / "sweep"
    assert cli_main(["sweep", str(path), "--count", "0", "--out", str(out)]) == 0
    assert (out / "sweep.json").is_file() and sweep_points(out) == []
    path.write_text(path.read_text().replace("grid", "random"))
    assert cli_main(["sweep", str(path), "--count", "0", "--out", str(out)]) == 2
    assert "with other settings (method)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_point_cut_short_is_run_again_and_the_finished_ones_are_kept(tmp_path):
    """A record a kill left 'running' (its process gone) becomes 'interrupted' and is left out
    of what the engine sees, so the engine proposes that grid point again."""
    path = fake_sweep(tmp_path, {"x": {"values": [1.0, 3.0]}})
    out = tmp_path / "sweep"
    messages: list[str] = []
    sweep = Sweep(path, out, count=0, echo=messages.append)
    sweep.run()
    folder = SweepDir(out)
    finished = Point(1, "aaaaaaaa", {"x": {"value": 1.0}}, state="finished", exit_code=0)
    finished.history = [{"val/lpips": 1.5}]
    cut = Point(2, "bbbbbbbb", {"x": {"value": 3.0}}, pid=2**22 + 12345)  # no such process
    folder.save(finished)
    folder.save(cut)
    sweep = Sweep(path, out, poll=0.2, echo=messages.append)
    assert sweep.run() == 0
    points = sweep_points(out)
    assert [(p.params["x"], p.state) for p in points] == [
        (1.0, "finished"),
        (3.0, "interrupted"),
        (3.0, "finished"),
    ]
    assert points[0].history == [{"val/lpips": 1.5}]  # not rerun
    assert any("cut short" in m for m in messages)


def make_run_file(tmp_path: Path, *args: str) -> Path:
    program = tmp_path / "fake_point.py"
    program.write_text(FAKE_PROGRAM)
    env = os.environ | {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    subprocess.run([sys.executable, str(program), *args], env=env, check=True, capture_output=True)
    (path,) = [p for p in tmp_path.rglob("run-*.wandb") if p.parent.name != "latest-run"]
    return path


@pytest.mark.slow
def test_the_transaction_log_reader_reads_what_the_run_logged(tmp_path):
    path = make_run_file(tmp_path, "--x=3", "--steps=3", "--pad=40000")  # rows span blocks
    log = read_run(path)
    rows_ = log.rows_with("val/lpips")
    assert [r["val/lpips"] for r in rows_] == pytest.approx([2.0, 1.5, 1 + 1 / 3])
    assert [r["trainer/global_step"] for r in rows_] == [0, 2, 4]
    assert all(len(r["blob"]) == 40000 for r in rows_)
    assert log.summary["val/lpips"] == pytest.approx(1 + 1 / 3) and log.exit_code == 0
    assert log.run["project"] == "pconv-test" and log.run["id"] in path.name
    data = path.read_bytes()
    cut = tmp_path / "cut.wandb"
    for size in (7, 100, 40000, 70000, len(data) - 3):  # a file still being written
        cut.write_bytes(data[:size])
        partial = read_run(cut).rows_with("val/lpips")
        assert partial == rows_[: len(partial)]


def test_the_engine_shim_keeps_history_and_summary_and_imports_quietly():
    rows_ = [{"val/lpips": 0.3}, {"val/lpips": 0.2}]
    run = engine.sweep_run("a", "finished", {"x": {"value": 1}}, rows_, {"val/lpips": 0.2})
    assert run.history == rows_ and run.summary_metrics == {"val/lpips": 0.2}
    assert run.metric_extremum("val/lpips", "minimum") == 0.2
    assert engine.plain({"x": {"value": np.float64(0.5)}, "n": np.int64(3)}) == {
        "x": {"value": 0.5},
        "n": 3,
    }
    assert type(engine.plain(np.float64(0.5))) is float
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            "from pconv_lightning.sweeps.engine import engine; engine()",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_summary_table_best_point_and_plot(tmp_path):
    config = engine.check(
        {
            "method": "bayes",
            "metric": METRIC,
            "program": "x.py",
            "parameters": {
                HOLE: {"min": 2.0, "max": 12.0},
                STYLE: {"distribution": "log_uniform_values", "min": 30.0, "max": 500.0},
            },
        }
    )
    folder = SweepDir(tmp_path)
    folder.points_dir.mkdir()
    points = []
    for number, (hole, lpips, stopped) in enumerate(
        [(2.0, [0.30, 0.25], False), (6.0, [0.28, 0.20, 0.22], False), (11.0, [0.4], True)], 1
    ):
        history = [{"val/lpips": v, "val/psnr": 20.0 + i} for i, v in enumerate(lpips)]
        points.append(
            Point(
                number,
                f"run{number}",
                {HOLE: {"value": hole}, STYLE: {"value": 100.0}},
                state="finished",
                stopped=stopped,
                history=history,
            )
        )
    cut = Point(4, "run4", {HOLE: {"value": 3.0}, STYLE: {"value": 50.0}}, state="interrupted")
    cut.history = [{"val/lpips": 0.1}]  # better than any, from part of the budget
    points.append(cut)
    write_summary(folder, config, points)
    table = rows(config, points)
    assert [p.number for p, _ in plotted(config, points, table)] == [1, 2, 3]
    assert table[3]["state"] == "interrupted"
    assert table[1]["val/lpips best"] == 0.20 and table[1]["val/lpips final"] == 0.22
    assert table[1]["val/psnr at best"] == 21.0 and table[1]["val/psnr final"] == 22.0
    assert table[2]["stopped early"] == "yes" and table[0]["hole"] == 2.0
    summary = (tmp_path / "summary.md").read_text()
    assert "Best point: 2 [run2], val/lpips 0.2" in summary
    assert (tmp_path / "summary.png").stat().st_size > 0
    best = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert best == {"model": {"loss_weights": {"hole": 6.0, "style": 100.0}}}
    # the file is a config `pconv fit` takes after the experiment's own
    printed = io.StringIO()
    with redirect_stdout(printed), pytest.raises(SystemExit):
        cli_main(
            [
                "fit",
                f"--config={CONFIGS / 'quickstart.yaml'}",
                f"--config={tmp_path / 'best.yaml'}",
                "--print_config",
            ]
        )
    weights = yaml.safe_load(printed.getvalue())["model"]["loss_weights"]
    assert (weights["hole"], weights["style"], weights["valid"]) == (6.0, 100.0, 1.0)


def test_pconv_sweep_without_the_sweep_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sweeps", None)
    path = fake_sweep(tmp_path, {"x": {"values": [1.0]}})
    with pytest.raises(MissingExtraError, match=r'pip install "pconv-lightning\[sweep\]"'):
        cli_main(["sweep", str(path), "--out", str(tmp_path / "out")])


def test_a_point_starts_its_own_wandb_service(tmp_path, monkeypatch):
    """A W&B service of the sweep's process (an earlier wandb.init there, as in a notebook or
    a test worker) is not shared with the points: its records of a point's run reached the
    file late, after the point had exited."""
    from pconv_lightning.sweeps.runner import point_env

    monkeypatch.setenv("WANDB_SERVICE", "2-123-unix-/tmp/wandb.sock")
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc")
    point = Point(1, "aaaaaaaa", {"x": {"value": 1.0}})
    env = point_env({}, SweepDir(tmp_path), "s1", point, tmp_path / "params.yaml")
    assert "WANDB_SERVICE" not in env and "WANDB_SWEEP_ID" not in env
    assert env["WANDB_MODE"] == "offline" and env["WANDB_RUN_ID"] == "aaaaaaaa"
