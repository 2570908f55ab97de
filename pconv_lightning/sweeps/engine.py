"""W&B's sweep engine (``sweeps`` 0.2, the ``[sweep]`` extra): the sweep file checked as the
engine checks it, the next point it proposes, and the points hyperband stops.

Two things about the engine under current libraries, kept here and nowhere else:

- ``sweeps`` declares its run model with a pydantic-1 ``class Config`` and its
  ``allow_population_by_field_name``, which pydantic 2 ignores, with two warnings at import
  (silenced around that import only). As a
  result ``SweepRun(history=...)`` silently drops the history: :func:`sweep_run` passes the
  history and summary by their aliases (``sampledHistory``, ``summaryMetrics``), the names the
  W&B server uses, which every pydantic version accepts.
- The engine proposes numpy scalars; :func:`plain` turns a proposal into the JSON values the
  W&B server would store and hand to ``wandb agent``.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from pconv_lightning.errors import ConfigError
from pconv_lightning.extras import require

# the states a W&B run can be in, as the engine reads them
ENGINE_STATES = ("running", "finished", "failed", "crashed", "killed")


class SweepFileError(ConfigError):
    """A sweep file the engine (or ``pconv sweep``) cannot run; one line naming the field."""


def engine() -> ModuleType:
    """The ``sweeps`` package, imported without its pydantic-2 warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Valid config keys have changed in V2", category=UserWarning
        )
        warnings.filterwarnings(
            "ignore", message="Support for class-based `config` is deprecated", category=Warning
        )
        return require("sweeps", "sweep", "pconv sweep")


def sweep_run(
    name: str,
    state: str,
    config: dict[str, Any],
    history: list[dict[str, Any]] | None = None,
    summary: dict[str, Any] | None = None,
) -> Any:
    """A ``sweeps.SweepRun`` that keeps its history and summary under pydantic 2 too."""
    return engine().SweepRun(
        name=name,
        state=state,
        config=config,
        sampledHistory=list(history or []),
        summaryMetrics=dict(summary or {}),
    )


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into JSON numbers and lists."""

    def default(obj: Any) -> Any:
        if hasattr(obj, "tolist"):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON data")

    return json.loads(json.dumps(value, default=default))


def _field(error: Any) -> str:
    """The dotted name of the field a jsonschema error is about."""
    path = [str(p) for p in error.absolute_path]
    if error.validator in ("required", "additionalProperties"):
        path += re.findall(r"'([^']+)'", error.message)[:1]
    return ".".join(path) or "(top level)"


def _message(error: Any) -> str:
    if error.validator == "required":
        return "missing"
    return " ".join(error.message.split())


def _leaves(error: Any) -> list[Any]:
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


def _explain(error: Any) -> str:
    """``field: message`` for a schema error. A parameter or early_terminate matches one of
    several forms (``anyOf``): name the problem of the form its ``distribution`` (or its keys)
    chose, rather than the engine's "is not valid under any of the given schemas"."""
    if error.validator not in ("anyOf", "oneOf"):
        return f"{_field(error)}: {_message(error)}"
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).extend(_leaves(sub))

    def off_form(leaf: Any) -> bool:  # the error says this form is not the one meant
        named = re.findall(r"'([^']+)'", leaf.message)[:1]
        return (
            leaf.validator == "additionalProperties"
            or list(leaf.absolute_path)[-1:] == ["distribution"]
            or (leaf.validator == "required" and named == ["distribution"])
        )

    chosen = [leaves for leaves in branches.values() if not any(map(off_form, leaves))]
    if chosen and chosen[0]:
        return f"{_field(chosen[0][0])}: {_message(chosen[0][0])}"
    instance = error.instance
    if isinstance(instance, dict) and "distribution" in instance:
        where = ".".join([*map(str, error.absolute_path), "distribution"])
        return f"{where}: {instance['distribution']!r} is not a distribution the engine knows"
    if list(error.absolute_path)[:1] == ["parameters"]:
        return f"{_field(error)}: not a parameter form the engine knows (values, value, or min and max)"
    return f"{_field(error)}: matches none of the forms the engine allows"


def check(config: Any, source: str = "sweep file") -> dict[str, Any]:
    """``config`` checked as the engine checks it, with its defaults filled in; any problem is a
    one-line :class:`SweepFileError` that names ``source`` and the field."""
    sweeps = engine()
    from sweeps.config.schema import validator

    if not isinstance(config, dict):
        raise SweepFileError(f"{source}: a sweep file is a YAML mapping (method, parameters, ...)")
    errors = list(validator.iter_errors(config))
    if errors:
        error = max(errors, key=lambda e: len(e.absolute_path))  # the most specific
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SweepFileError(f"{source}: {_explain(error)}{more}")
    for message in sweeps.schema_violations_from_proposed_config(config):
        name, _, rest = message.removeprefix("Parameter ").partition(":")
        if name.strip() in config.get("parameters", {}):
            message = f"parameters.{name.strip()}:{rest}"
        raise SweepFileError(f"{source}: {' '.join(message.split())}")
    filled = dict(sweeps.SweepConfig(config))
    needs = [
        name
        for name, needed in (
            ("bayes search", filled["method"] == "bayes"),
            ("early_terminate", "early_terminate" in filled),
        )
        if needed
    ]
    if needs and "metric" not in filled:
        verb = "needs" if len(needs) == 1 else "need"
        raise SweepFileError(f"{source}: metric: missing; {' and '.join(needs)} {verb} one")
    if filled["method"] == "custom":
        raise SweepFileError(
            f"{source}: method: 'custom' needs the W&B server; use grid, random or bayes"
        )
    command = [str(c) for c in filled.get("command") or ["${program}"]]
    if "${program}" in command and not filled.get("program"):
        raise SweepFileError(f"{source}: program: the command runs ${{program}} but none is given")
    try:  # what the engine itself refuses only when it proposes or stops
        propose(filled, [], 0)
        if "early_terminate" in filled:
            sweeps.stop_runs(filled, [])
    except (ValueError, KeyError, TypeError) as err:
        raise SweepFileError(f"{source}: {_engine_field(str(err), filled)}") from err
    return filled


def _engine_field(message: str, config: dict[str, Any]) -> str:
    message = " ".join(message.split())
    for name in config.get("parameters", {}):
        if re.search(rf"\b{re.escape(name)}\b", message):
            return f"parameters.{name}: {message}"
    for key in ("early_terminate", "metric", "method", "parameters"):
        if key.replace("_", " ") in message.lower() or key in message:
            return f"{key}: {message}"
    return message


def load(path: Path) -> dict[str, Any]:
    """The sweep file at ``path``, parsed and checked (:func:`check`)."""
    path = Path(path)
    if not path.is_file():
        raise SweepFileError(f"{path}: no such sweep file")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SweepFileError(f"{path}: not YAML: {' '.join(str(err).split())}") from err
    return check(config, str(path))


def seed_for(sweep_id: str, number: int) -> int:
    """The numpy seed of point ``number``'s proposal: the same sweep proposes the same points."""
    return int.from_bytes(hashlib.sha256(f"{sweep_id}:{number}".encode()).digest()[:4], "little")


def propose(config: dict[str, Any], runs: list[Any], seed: int) -> dict[str, Any] | None:
    """The engine's next point (``{name: {"value": v}}``) given ``runs``, or None when the
    sweep has none left (a grid that is done)."""
    import numpy as np

    sweeps = engine()
    state = np.random.get_state()
    np.random.seed(seed)  # random and bayes draw from numpy's global generator
    try:
        with warnings.catch_warnings():  # the GP's fit on a handful of points
            warnings.filterwarnings("ignore", module="sklearn")
            run = sweeps.next_run(config, runs)
    finally:
        np.random.set_state(state)
    return None if run is None else plain(run.config)


def to_stop(config: dict[str, Any], runs: list[Any]) -> list[str]:
    """The names of the running ``runs`` that the sweep's ``early_terminate`` stops."""
    if "early_terminate" not in config:
        return []
    return [run.name for run in engine().stop_runs(config, runs)]
