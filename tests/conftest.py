"""Shared fixtures. Tests never download: VGG16 weights and data are made here or shipped."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("WANDB_MODE", "offline")
# pytest-xdist runs one worker per core (setup.cfg): each worker, and each process a test
# starts (notebook kernels, `pconv` subprocesses), gets its share of the cores, so the workers
# do not oversubscribe them. A worker overrides OMP_NUM_THREADS: it inherits the controller's,
# which this file set for one process on every core. Outside xdist a value set by the user wins.
THREADS = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(THREADS)
else:
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
torch.set_num_threads(THREADS)


# The most the suite holds in the temporary folder at once: 1.6-2.8 GB measured on 2 workers,
# as a passing test's tmp_path is deleted at its teardown (setup.cfg); checkpoints are ~230 MB.
TEMP_SPACE_NEEDED = 5 * 2**30


def temp_space_problem(folder: str, needed: int = TEMP_SPACE_NEEDED) -> str | None:
    """Why ``folder`` is too full to run the suite in, or None."""
    free = shutil.disk_usage(folder).free
    if free >= needed:
        return None
    return (
        f"only {free / 2**30:.1f} GiB free in {folder}, the temporary folder; the suite needs "
        f"about {needed / 2**30:.0f} GiB there: free some, or set TMPDIR to a larger disk"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, in one line, on a disk too full for the suite's checkpoints: otherwise
    hundreds of tests each fail on "No space left on device"."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        problem = temp_space_problem(tempfile.gettempdir())
        if problem:
            pytest.exit(problem, returncode=1)


def in_ci() -> bool:
    """Whether the suite runs in CI (``CI=true``), which provides every prerequisite."""
    return os.environ.get("CI", "").strip().lower() == "true"


def missing_prerequisite(reason: str) -> NoReturn:
    """Skip the running test for a missing prerequisite (``../shared`` data, ``/dev/shm``,
    Chromium); under CI (``CI=true``) fail it instead: CI provides them all, so a missing one
    is a broken runner, and a skip would turn the test off unseen."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the test)", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "prerequisite(available, reason): skip the test when `available` is false, or fail it "
        "under CI=true (../shared data, /dev/shm, Chromium)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first, so that the xdist workers end together: the notebooks (marked slow
    here), then the other `slow` tests, then the rest, each in collection order."""
    for item in items:
        if item.nodeid.endswith(".ipynb"):
            item.add_marker(pytest.mark.slow)
    items.sort(
        key=lambda item: (not item.nodeid.endswith(".ipynb"), not item.get_closest_marker("slow"))
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("prerequisite"):
        (available,) = marker.args
        if not available:
            missing_prerequisite(marker.kwargs["reason"])


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def broken_dir(tmp_path: Path) -> Path:
    """Four good photos and three bad files: truncated JPEG, empty file, text named .png."""
    samples = REPO / "data" / "samples" / "train"
    root = tmp_path / "broken"
    root.mkdir()
    for name in ("kodim01.jpg", "kodim02.jpg", "kodim03.jpg", "kodim04.jpg"):
        shutil.copy(samples / name, root / name)
    (root / "kodim01b_cut.jpg").write_bytes((samples / "kodim05.jpg").read_bytes()[:3000])
    (root / "kodim02b_empty.jpg").write_bytes(b"")
    (root / "kodim03b_text.png").write_text("this is not a PNG")
    return root


@pytest.fixture(autouse=True)
def _no_open_wandb_run():
    """WandbLogger reuses a run that an earlier in-process test left open: finish it after
    every test, so each test's logger starts its own run."""
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()
