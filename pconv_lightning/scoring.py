"""Scoring a training run (``pconv validate|test|predict``) as it was trained, without touching
its record.

A checkpoint saved under ``<run>/checkpoints/`` is scored with the run's own ``config.yaml``
(the one ``pconv fit`` saved there) read first, so the crop size, data and network are the
run's without repeating its ``--config`` files; later ``--config`` files and arguments still
win. What a scoring command saves of its own (its config, its loggers' files) goes to
``<run>/<command>/``: the training run's ``config.yaml`` and logs stay as training left them.
"""

from __future__ import annotations

import sys
from pathlib import Path

SCORING = ("validate", "test", "predict")
RUN_CONFIG = "config.yaml"


def _ckpt_path(args: list[str]) -> str | None:
    """The value of ``--ckpt_path`` in ``args`` (the last one given), if any."""
    value = None
    for index, arg in enumerate(args):
        if arg == "--ckpt_path" and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--ckpt_path="):
            value = arg.split("=", 1)[1]
    return value


def run_config(ckpt_path: str) -> Path | None:
    """``<run>/config.yaml`` for a checkpoint file in ``<run>/checkpoints/``, if it exists."""
    path = Path(ckpt_path)
    if path.parent.name != "checkpoints" or not path.is_file():
        return None
    config = path.parent.parent / RUN_CONFIG
    return config if config.is_file() else None


def with_run_config(args: list[str]) -> list[str]:
    """``args`` (subcommand first) with ``--config <run>/config.yaml`` inserted right after a
    scoring subcommand whose ``--ckpt_path`` is a run's checkpoint; otherwise unchanged."""
    if not args or args[0] not in SCORING or any(a in ("-h", "--help") for a in args):
        return args
    ckpt_path = _ckpt_path(args[1:])
    config = run_config(ckpt_path) if ckpt_path else None
    if config is None:
        return args
    print(f"pconv {args[0]}: the run's own config {config} first", file=sys.stderr)
    return [args[0], f"--config={config}", *args[1:]]


def output_dir(root: str, subcommand: str) -> str:
    """Where a command's config and logger files go: the run folder for ``fit``,
    ``<root>/<subcommand>`` for a scoring command."""
    return root if subcommand == "fit" else str(Path(root) / subcommand)
