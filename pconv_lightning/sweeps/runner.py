"""Run a sweep's points one at a time, as ``wandb agent`` would, without a W&B server.

For each point: the engine proposes it from the finished points (:func:`.engine.propose`); the
sweep file's ``command`` is expanded by wandb's own agent functions (``${env}``,
``${program}``, ``${args}``, ...) and run from the current folder with the agent's
environment (``WANDB_RUN_ID``, ``WANDB_SWEEP_PARAM_PATH``) and ``WANDB_MODE=offline``; while
it runs, its offline W&B run is read every ``poll`` seconds, its metric rows are recorded, and
``early_terminate`` is asked whether to stop it (SIGTERM, then SIGKILL after ``kill_delay``, as
the agent does).

What differs from ``wandb agent``, on purpose: ``WANDB_SWEEP_ID`` is not set (an offline run
that names a sweep the server does not know fails to sync), so each run is a plain run of the
sweep's project, grouped as ``sweep-<id>``; ``PCONV_SWEEP_RUNS`` tells ``fit_point.sh`` to write
the run under ``DIR/runs/<run id>`` instead of ``outputs/sweeps/<sweep id>/<run id>``; and
``WANDB_DIR`` points there too, for programs that choose no folder of their own.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from pconv_lightning.sweeps import engine
from pconv_lightning.sweeps.records import INTERRUPTED, Point, SweepDir, new_run_id, now
from pconv_lightning.sweeps.wandb_runs import find_run_file, finite, read_run

MAX_INITIAL_FAILURES = 5  # as wandb agent (WANDB_AGENT_MAX_INITIAL_FAILURES)
FLUSH_SECONDS = "5"  # WANDB__TRANSACTION_LOG_FLUSH_INTERVAL, unless set: a fresh history


class SweepInterrupted(Exception):
    """SIGINT or SIGTERM reached ``pconv sweep`` while a point ran."""


def build_command(config: dict[str, Any], point: Point, param_path: Path, json_path: Path):
    """The point's command line exactly as ``wandb agent`` builds it (``Agent._command_run``)."""
    import platform

    from wandb.sdk.launch.sweeps import utils as sweep_utils

    sweep_command = sweep_utils.create_sweep_command(
        list(config["command"]) if config.get("command") else None
    )
    sweep_command = list(sweep_command)
    sweep_vars = sweep_utils.create_sweep_command_args({"args": point.config})
    if "${args_json_file}" in sweep_command:
        json_path.write_text(sweep_vars["args_json"][0])
    sweep_vars["interpreter"] = ["python"]
    sweep_vars["program"] = [config.get("program")]
    sweep_vars["args_json_file"] = [str(json_path)]
    if platform.system() != "Windows":
        sweep_vars["env"] = ["/usr/bin/env"]
    command: list[str] = []
    for chunk in map(str, sweep_command):
        if chunk.startswith("${") and chunk.endswith("}"):
            command += [str(c) for c in sweep_vars.get(chunk[2:-1]) or []]
        else:
            command.append(chunk)
    return command


def point_env(config: dict[str, Any], sweep: SweepDir, sweep_id: str, point: Point, params: Path):
    """The environment of a point's process: the agent's, offline, no sweep id, and no W&B
    service of this process (``WANDB_SERVICE``, set by any ``wandb.init`` here): a point
    that starts its own service has its run file complete when that service exits, where a
    shared one writes the last records whenever it gets to them."""
    env = dict(os.environ)
    env.pop("WANDB_SWEEP_ID", None)
    env.pop("WANDB_SERVICE", None)
    run_dir = sweep.run_dir(point).resolve()
    env.update(
        WANDB_MODE="offline",
        WANDB_RUN_ID=point.run_id,
        WANDB_SWEEP_PARAM_PATH=str(params.resolve()),
        WANDB_DIR=str(run_dir),
        PCONV_SWEEP_RUNS=str(sweep.runs.resolve()),
    )
    env.setdefault("WANDB__TRANSACTION_LOG_FLUSH_INTERVAL", FLUSH_SECONDS)
    env.setdefault("WANDB_RUN_GROUP", f"sweep-{sweep_id}")
    if config.get("project"):
        env.setdefault("WANDB_PROJECT", str(config["project"]))
    if config.get("entity"):
        env.setdefault("WANDB_ENTITY", str(config["entity"]))
    return env


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def interrupts_raise():
    """SIGINT and SIGTERM raise :class:`SweepInterrupted` while the sweep runs."""

    def handler(signum, frame):
        raise SweepInterrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Sweep:
    """One offline sweep: the file, its folder, and how many points it should have in all."""

    def __init__(
        self,
        file: Path,
        out: Path,
        count: int | None = None,
        runs: Path | None = None,
        poll: float = 5.0,
        kill_delay: float = 30.0,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.file = Path(file)
        self.config = engine.load(self.file)
        self.metric = self.config.get("metric", {}).get("name")
        self.goal = self.config.get("metric", {}).get("goal", "minimize")
        self.dir = SweepDir(out, runs)
        if runs is not None and self.dir.exists and not self.dir.same_runs(runs):
            raise engine.SweepFileError(
                f"{out} keeps its runs in {self.dir.info()['runs']}, not {runs}: leave --runs out"
            )
        self.count = count
        self.poll = poll
        self.kill_delay = kill_delay
        self.echo = echo
        self.sweep_id = ""

    # -- the folder ---------------------------------------------------------------------
    def open(self) -> list[Point]:
        """Create the folder, or check it holds this sweep; settle points a kill left running."""
        text = self.file.read_text()
        if not self.dir.exists:
            self.sweep_id = self.dir.create(self.file, text)
            return []
        self.check_settings()
        points = self.dir.points()
        for point in points:
            if point.state != "running":
                continue
            if point.host == os.uname().nodename and alive(point.pid):
                raise engine.SweepFileError(
                    f"point {point.number} of {self.dir.root} still runs (pid {point.pid}): "
                    "wait for it or stop it, then start the sweep again"
                )
            self.refresh(point)
            point.state, point.ended = INTERRUPTED, point.ended or now()
            self.dir.save(point)
            self.echo(f"point {point.number} [{point.run_id}] was cut short: it runs again")
        return points

    def check_settings(self) -> None:
        """The folder holds a sweep of the same settings as the file (or an error says which
        differ); sets the sweep's id."""
        if not self.dir.exists:
            raise engine.SweepFileError(f"{self.dir.root}: no sweep here (no sweep.json)")
        stored = engine.check(yaml.safe_load(self.dir.stored_text()), str(self.dir.root))
        if stored != self.config:
            keys = {*stored, *self.config}
            changed = sorted(k for k in keys if stored.get(k) != self.config.get(k))
            raise engine.SweepFileError(
                f"{self.dir.root} holds a sweep of {self.dir.info()['file']} with other settings "
                f"({', '.join(changed)}): give another --out, or delete it to start again"
            )
        self.sweep_id = self.dir.info()["id"]

    def summarize(self) -> int:
        """Write the summary of the folder's points; run nothing."""
        from pconv_lightning.sweeps.summary import write_summary

        self.check_settings()
        write_summary(self.dir, self.config, self.dir.points())
        self.echo(f"summary: {self.dir.root / 'summary.md'}")
        return 0

    @contextmanager
    def locked(self):
        """Only one ``pconv sweep`` at a time in a folder."""
        self.dir.root.mkdir(parents=True, exist_ok=True)
        with open(self.dir.root / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise engine.SweepFileError(
                    f"another pconv sweep runs in {self.dir.root}"
                ) from None
            yield

    # -- one point ----------------------------------------------------------------------
    def refresh(self, point: Point) -> bool:
        """Read the point's offline W&B run; True when its metric history grew."""
        return self.read(point)[0]

    def read(self, point: Point) -> tuple[bool, bool]:
        """Read the point's offline W&B run into ``point``: (its metric history grew, the run
        has written its exit record)."""
        if point.run_file is None:
            found = find_run_file(self.dir.run_dir(point), point.run_id)
            if found is None:
                return False, False
            point.run_file = os.path.relpath(found, self.dir.runs)
        try:
            log = read_run(self.dir.run_file(point))
        except (OSError, ValueError):
            return False, False
        rows = log.rows_with(self.metric) if self.metric else []
        grew = len(rows) > len(point.history)
        point.history, point.summary = rows, log.summary
        return grew, log.exit_code is not None

    def settle(self, point: Point, timeout: float, wait: float = 0.5) -> None:
        """Read the run file until it holds the run's exit record: W&B's service can still be
        writing the last records for seconds after the point's process has exited. A run
        that was killed may never write one; its file is read until ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.read(point)[1] and time.monotonic() < deadline:
            time.sleep(wait)

    def engine_run(self, point: Point) -> Any:
        return engine.sweep_run(
            point.run_id, point.state, point.config, point.history, point.summary
        )

    def progress(self, point: Point) -> str:
        row = point.history[-1]
        value = row.get(self.metric)
        step = row.get("trainer/global_step", row.get("_step"))
        shown = f"{value:.4g}" if finite(value) else value
        return (
            f"  point {point.number} [{point.run_id}]: {self.metric} {shown} at validation "
            f"{len(point.history)} (step {step})"
        )

    def run_point(self, point: Point, done: list[Point]) -> None:
        run_dir = self.dir.run_dir(point)
        run_dir.mkdir(parents=True, exist_ok=True)
        params = run_dir / f"config-{point.run_id}.yaml"
        from wandb.sdk.lib import config_util

        config_util.save_config_file_from_dict(str(params), point.config)
        point.command = build_command(
            self.config, point, params, run_dir / f"config-{point.run_id}.json"
        )
        env = point_env(self.config, self.dir, self.sweep_id, point, params)
        shown = ", ".join(f"{k}={v}" for k, v in point.params.items())
        self.echo(f"point {point.number} [{point.run_id}]: {shown}")
        with open(run_dir / "output.log", "ab") as log:
            process = subprocess.Popen(point.command, env=env, stdout=log, stderr=subprocess.STDOUT)
        point.pid = process.pid
        self.dir.save(point)
        stop_sent: float | None = None
        try:
            while True:
                try:
                    code = process.wait(timeout=self.poll)
                except subprocess.TimeoutExpired:
                    code = None
                if self.refresh(point):
                    self.echo(self.progress(point))
                    if not point.stopped and code is None:
                        self.early_terminate(point, done)
                        if point.stopped:
                            process.terminate()
                            stop_sent = time.monotonic()
                    self.dir.save(point)
                if code is not None:
                    break
                if stop_sent is not None and time.monotonic() - stop_sent > self.kill_delay:
                    process.kill()
        except SweepInterrupted:
            self.end(process)
            self.refresh(point)
            point.state, point.ended = INTERRUPTED, now()
            self.dir.save(point)
            raise
        self.settle(point, timeout=120.0 if code == 0 else 10.0)
        point.exit_code, point.ended = code, now()
        point.state = "finished" if code == 0 or point.stopped else "failed"
        self.dir.save(point)

    def early_terminate(self, point: Point, done: list[Point]) -> None:
        if "early_terminate" not in self.config:
            return
        runs = [self.engine_run(p) for p in done] + [self.engine_run(point)]
        if point.run_id in engine.to_stop(self.config, runs):
            info = runs[-1].early_terminate_info or {}
            point.stopped = True
            point.stop_info = (info.get("lines") or [None])[-1]
            self.echo(f"  point {point.number} [{point.run_id}]: stopped early ({point.stop_info})")

    def end(self, process: subprocess.Popen) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=self.kill_delay)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # -- the sweep ----------------------------------------------------------------------
    def target(self) -> int | None:
        caps = [c for c in (self.count, self.config.get("run_cap")) if c is not None]
        return min(caps) if caps else None

    def run(self) -> int:
        """Run points until the sweep has ``count`` (or ``run_cap``) of them, or the engine
        has no more; returns the exit status (130 when interrupted)."""
        from pconv_lightning.sweeps.summary import write_summary

        with self.locked():
            points = self.open()
            done = [p for p in points if p.state in engine.ENGINE_STATES]
            target = self.target()
            self.echo(
                f"sweep {self.sweep_id} of {self.file} in {self.dir.root}: "
                f"{self.config['method']}"
                + (f", {self.metric} ({self.goal})" if self.metric else "")
                + (
                    f", {self.config['early_terminate']['type']}"
                    if "early_terminate" in self.config
                    else ""
                )
                + f"; {len(done)} point(s) done"
                + (f" of {target}" if target is not None else "")
            )
            failures = started = 0
            status = 0
            from wandb.env import get_agent_max_initial_failures

            max_failures = get_agent_max_initial_failures(MAX_INITIAL_FAILURES)
            try:
                with interrupts_raise():
                    while target is None or len(done) < target:
                        proposal = engine.propose(
                            self.config,
                            [self.engine_run(p) for p in done],
                            engine.seed_for(self.sweep_id, len(done)),
                        )
                        if proposal is None:
                            self.echo("the engine has no more points: the grid is done")
                            break
                        number = max((p.number for p in points), default=0) + 1
                        point = Point(number=number, run_id=new_run_id(), config=proposal)
                        points.append(point)
                        self.run_point(point, done)
                        done.append(point)
                        started += 1
                        self.report(point)
                        write_summary(self.dir, self.config, points)
                        failures += point.state == "failed"
                        if failures == started == max_failures:
                            self.echo(
                                f"the first {failures} points failed: stopping "
                                f"(see {self.dir.runs}/<run id>/output.log)"
                            )
                            status = 1
                            break
            except SweepInterrupted as err:
                self.echo(f"interrupted ({err}): the sweep resumes with the same command")
                status = 130
            write_summary(self.dir, self.config, points)
            self.echo(f"summary: {self.dir.root / 'summary.md'}")
            for pattern in sync_patterns(self.dir, points):
                self.echo(f"upload the points' offline W&B runs later with: wandb sync {pattern}")
            return status

    def report(self, point: Point) -> None:
        values = [v for v in point.values(self.metric) if finite(v)] if self.metric else []
        if point.state == "failed":
            tail = _tail(self.dir.run_dir(point) / "output.log")
            self.echo(
                f"point {point.number} [{point.run_id}] failed (exit {point.exit_code}): {tail}"
            )
        elif self.metric and not values:
            self.echo(
                f"point {point.number} [{point.run_id}] logged no {self.metric}: see "
                f"{self.dir.run_dir(point) / 'output.log'}"
            )
        else:
            best = (min if self.goal == "minimize" else max)(values) if values else None
            self.echo(
                f"point {point.number} [{point.run_id}] {point.state}"
                + (" (stopped early)" if point.stopped else "")
                + (f": best {self.metric} {best:.4g}" if best is not None else "")
            )


def sync_patterns(sweep: SweepDir, points: list[Point]) -> list[str]:
    """Shell patterns of the points' offline run folders, for ``wandb sync``."""
    patterns = set()
    for point in points:
        if point.run_file:
            parts = Path(point.run_file).parent.parts
            parts = tuple(
                "offline-run-*"
                if part.startswith("offline-run-")
                else part.replace(point.run_id, "*")
                for part in parts
            )
            patterns.add(str(sweep.runs.joinpath(*parts)))
    return sorted(patterns)


def _tail(path: Path, lines: int = 1) -> str:
    try:
        text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no output)"
    return " | ".join(text[-lines:]) if text else "(no output)"
