"""The folder of one offline sweep (``pconv sweep --out DIR``), written as the sweep goes.

::

    DIR/sweep.yaml            the sweep file as it was given (a resumed sweep must match it)
    DIR/sweep.json            the sweep's id, the file's path, when it was created
    DIR/points/NNN-<run>.json one record per point: parameters, state, metric history
    DIR/runs/<run>/           the point's run: output.log, and what its program writes there
                              (fit_point.sh: checkpoints and the offline W&B run); ignored by
                              git (DIR/.gitignore); ``--runs`` puts these folders elsewhere
    DIR/summary.md|csv|png    the table, the best point and the plot (:mod:`.summary`)

The records are small JSON files, written atomically each time they change, so a sweep killed
at any moment resumes from them, and they can be committed while the runs stay out of git.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import string
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# states the engine is told about; "interrupted" (the sweep itself was stopped while the point
# ran) is kept on disk but left out, so that the engine proposes that point again
INTERRUPTED = "interrupted"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A W&B-style run id: 8 lowercase letters and digits."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


@dataclass
class Point:
    """One point of the sweep: what the engine proposed and what its run logged."""

    number: int
    run_id: str
    config: dict[str, dict[str, Any]]  # the engine's proposal: {name: {"value": v}}
    command: list[str] = field(default_factory=list)
    state: str = "running"  # running, finished, failed, crashed, interrupted
    stopped: bool = False  # early_terminate (hyperband) stopped it
    stop_info: str | None = None  # the engine's line about the stop
    exit_code: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # rows logging the metric
    summary: dict[str, Any] = field(default_factory=dict)
    run_file: str | None = None  # the offline W&B run's transaction log, relative to the runs
    host: str = field(default_factory=socket.gethostname)
    pid: int | None = None
    started: str = field(default_factory=now)
    ended: str | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {name: spec["value"] for name, spec in self.config.items()}

    @property
    def file_name(self) -> str:
        return f"{self.number:03d}-{self.run_id}.json"

    def values(self, key: str) -> list[Any]:
        return [row[key] for row in self.history if key in row]


class SweepDir:
    """``DIR`` of one sweep: its settings and its points; the points' runs under ``runs``
    (default ``DIR/runs``)."""

    def __init__(self, root: Path, runs: Path | None = None) -> None:
        self.root = Path(root)
        self.points_dir = self.root / "points"
        if runs is None and self.exists:
            runs = Path(self.info().get("runs", "runs"))
            runs = runs if runs.is_absolute() else self.root / runs
        self.runs = Path(runs) if runs is not None else self.root / "runs"

    @property
    def exists(self) -> bool:
        return (self.root / "sweep.json").is_file()

    def _runs_entry(self) -> str:
        inside = self.runs.resolve().is_relative_to(self.root.resolve())
        return os.path.relpath(self.runs, self.root) if inside else str(self.runs.resolve())

    def create(self, sweep_file: Path, text: str) -> str:
        """Start a new sweep here from ``sweep_file`` (its ``text``); returns its id."""
        self.points_dir.mkdir(parents=True, exist_ok=True)
        self.runs.mkdir(parents=True, exist_ok=True)
        runs = self._runs_entry()
        ignored = ["/.lock", *([f"/{runs}/"] if not Path(runs).is_absolute() else [])]
        (self.root / ".gitignore").write_text(
            "# pconv sweep: the lock, and the points' runs (checkpoints, W&B files)\n"
            + "\n".join(ignored)
            + "\n"
        )
        (self.root / "sweep.yaml").write_text(text)
        sweep_id = new_run_id()
        write_json(
            self.root / "sweep.json",
            {"id": sweep_id, "file": str(sweep_file), "created": now(), "runs": runs},
        )
        return sweep_id

    def same_runs(self, runs: Path) -> bool:
        """Whether ``runs`` is where this sweep keeps its runs."""
        return Path(runs).resolve() == self.runs.resolve()

    def info(self) -> dict[str, Any]:
        return json.loads((self.root / "sweep.json").read_text())

    def stored_text(self) -> str:
        return (self.root / "sweep.yaml").read_text()

    def points(self) -> list[Point]:
        found = sorted(self.points_dir.glob("[0-9]*.json"))
        return [Point(**json.loads(path.read_text())) for path in found]

    def save(self, point: Point) -> None:
        write_json(self.points_dir / point.file_name, asdict(point))

    def run_dir(self, point: Point) -> Path:
        return self.runs / point.run_id

    def run_file(self, point: Point) -> Path | None:
        """The point's W&B transaction log (``Point.run_file`` is relative to the runs)."""
        return None if point.run_file is None else self.runs / point.run_file
