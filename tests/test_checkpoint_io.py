"""Atomic checkpoints: a SIGKILL at any point of a save leaves a complete checkpoint, with
TMPDIR on another filesystem; leftovers are swept on the next start; every run uses it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from training_helpers import CONFIGS, REPO, tiny_args

from pconv_lightning.checkpoints.atomic import TEMP_SUFFIX, AtomicCheckpointIO, sweep_partial

# A fork server (imports once): for each line on stdin it forks a saver that prints its pid,
# saves checkpoint 0 (complete, then "ready"), then 1, 2, ... until killed. Each checkpoint
# holds its number and an 8 MB tensor filled with it, so a complete file is easy to tell.
CHILD = """
import importlib, os, sys, torch
module, name = sys.argv[1].rsplit(".", 1)
io, path = getattr(importlib.import_module(module), name)(), sys.argv[2]
for _ in sys.stdin:
    if os.fork() == 0:
        print(os.getpid(), flush=True)
        for n in range(10**6):
            io.save_checkpoint({"n": n, "weights": torch.full((2_000_000,), float(n))}, path)
            if n == 0:
                print("ready", flush=True)
    os.wait()
"""


def partials(directory: Path) -> list[Path]:
    return sorted(directory.glob(f".*{TEMP_SUFFIX}"))


def kill_during_saves(checkpoint_io: str, run_dir: Path, tmpdir: Path, seeds: int) -> list[str]:
    """SIGKILL a process saving ``run_dir/last.ckpt`` in a loop at a random moment, ``seeds``
    times, with ``TMPDIR=tmpdir``; after each kill, resume (load the file) and describe it:
    "complete", or what went wrong."""
    target = run_dir / "last.ckpt"
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-c", CHILD, checkpoint_io, str(target)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    outcomes = []
    try:
        for seed in range(seeds):
            server.stdin.write("go\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            assert server.stdout.readline().strip() == "ready"
            time.sleep(random.Random(seed).uniform(0.0, 0.5))
            os.kill(pid, signal.SIGKILL)
            left = len(partials(run_dir)) + len(list(tmpdir.iterdir()))
            try:
                state = AtomicCheckpointIO().load_checkpoint(target, weights_only=True)
                ok = torch.equal(state["weights"], torch.full((2_000_000,), float(state["n"])))
                outcomes.append("complete" if ok and left <= 1 else f"{left} temporary files")
            except Exception as err:
                outcomes.append(f"resume failed: {type(err).__name__}")
            for leftover in tmpdir.iterdir():
                leftover.unlink()
    finally:
        server.kill()
        server.wait()
    return outcomes


@pytest.mark.prerequisite(Path("/dev/shm").is_dir(), reason="needs /dev/shm as another filesystem")
def test_sigkill_at_random_points_of_a_save_leaves_a_complete_checkpoint(tmp_path):
    run_dir = tmp_path / "run" / "checkpoints"
    other_fs = Path("/dev/shm") / f"pconv-test-{os.getpid()}"
    other_fs.mkdir()
    try:
        assert os.stat(other_fs).st_dev != os.stat(tmp_path).st_dev
        outcomes = kill_during_saves(
            "pconv_lightning.checkpoints.atomic.AtomicCheckpointIO", run_dir, other_fs, seeds=10
        )
        assert outcomes == ["complete"] * 10
        assert not partials(run_dir)  # swept when resume loaded the file
    finally:
        for leftover in other_fs.iterdir():
            leftover.unlink()
        other_fs.rmdir()


def test_a_failed_save_keeps_the_previous_checkpoint_and_no_partial(tmp_path):
    io, target = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"n": 1}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot save this")

    with pytest.raises(RuntimeError, match="cannot save this"):
        io.save_checkpoint({"n": 2, "bad": Unpicklable()}, target)
    assert torch.load(target, weights_only=True) == {"n": 1}
    assert not partials(tmp_path)


def test_sweep_removes_only_partials_and_logs_them(tmp_path, caplog):
    (tmp_path / ".last.ckpt.abc123.pconv-partial").write_bytes(b"x" * 10)
    (tmp_path / "last.ckpt").write_bytes(b"keep")
    (tmp_path / ".hidden").write_bytes(b"keep")
    assert [p.name for p in sweep_partial(tmp_path)] == [".last.ckpt.abc123.pconv-partial"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "last.ckpt"]
    assert "removed 1 partial checkpoint" in caplog.text


def test_every_run_saves_through_the_atomic_plugin(tmp_path):
    from pconv_lightning.cli import cli_main

    root = tmp_path / "run"
    (root / "checkpoints").mkdir(parents=True)
    stale = root / "checkpoints" / ".last.ckpt.zzz.pconv-partial"
    stale.write_bytes(b"partial")
    args = ["fit", f"--config={CONFIGS / 'quickstart.yaml'}", *tiny_args(root, steps=1)]
    cli = cli_main([*args, "--trainer.logger=false", "--last_checkpoint.every_n_train_steps=1"])
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    assert (root / "checkpoints" / "last.ckpt").is_file() and not stale.exists()
