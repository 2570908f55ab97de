"""Under pytest-xdist (setup.cfg: a worker per core) each worker, and every process a test
starts (notebook kernels, `pconv` subprocesses), uses its share of the cores: two threads per
process on a 2-core machine with two workers ran notebook 04 four times slower (160 s, not 40)."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from conftest import missing_prerequisite


def test_a_test_subprocess_uses_the_workers_share_of_the_cores():
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers is None:
        missing_prerequisite("runs under pytest-xdist (the suite's default, setup.cfg)")
    share = max(1, (os.cpu_count() or 1) // int(workers))
    child = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (torch.get_num_threads(), int(child.stdout)) == (share, share)
