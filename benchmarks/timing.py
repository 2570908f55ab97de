"""Side-by-side timing: candidates measured alternately in one run, median of repetitions."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def alternate(
    candidates: dict[str, Callable[[], object]], device: torch.device, reps: int, warmup: int = 1
) -> dict[str, float]:
    """Median seconds per call of each candidate, calls interleaved so drift hits all alike."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(reps):
        for name, fn in candidates.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def print_table(header: list[str], rows: list[list[object]]) -> None:
    """A Markdown table."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def _cpu_times() -> list[int] | None:
    """The machine's aggregate CPU times from /proc/stat (Linux), None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:9]]
    except OSError:
        return None


class Stolen:
    """Share of the machine's CPU time that a virtual machine's host took (``steal`` in
    /proc/stat) while the block ran: a row measured with much stolen is not a fair one.

    ``with Stolen() as s: ...`` then ``s.percent`` (``nan`` where /proc/stat is missing)."""

    def __enter__(self) -> Stolen:
        self.start, self.percent = _cpu_times(), float("nan")
        return self

    def __exit__(self, *exc: object) -> None:
        end = _cpu_times()
        if self.start is not None and end is not None:
            delta = [b - a for a, b in zip(self.start, end, strict=True)]
            self.percent = 100 * delta[7] / max(1, sum(delta))
