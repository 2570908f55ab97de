"""The ``pconv`` command: one tree of commands, each imported only when it runs.

``fit``, ``validate``, ``test`` and ``predict`` are LightningCLI's
(:mod:`pconv_lightning.training_cli`); every other command is a ``module:function`` taking its
argument list and returning an exit code. ``pconv --help`` lists them all without importing
any. Tests and notebooks call :func:`cli_main` in-process with a list of arguments.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

TRAINING = {
    "fit": "train a model from YAML configs (LightningCLI)",
    "validate": "score a checkpoint on the validation set (--ckpt_path)",
    "test": "score a checkpoint on the test set (--ckpt_path)",
    "predict": "write composites for a folder of images with masks by stem (--ckpt_path)",
}
# command -> ("module:function" taking argv and returning an exit code, one-line help)
TOOLS: dict[str, tuple[str, str]] = {
    "inpaint": ("pconv_lightning.inference.command:main", "repair photos at any size"),
    "export": ("pconv_lightning.export:main", "export a checkpoint to ONNX"),
    "app": ("pconv_lightning.app.command:main", "the web page: paint a hole, get the repair"),
    "evaluate": (
        "pconv_lightning.evaluation.command:main",
        "score checkpoints and baselines by hole-ratio bucket",
    ),
    "ablate": (
        "pconv_lightning.evaluation.ablation:main",
        "compare configs with seeds: spread and paired intervals",
    ),
    "sweep": (
        "pconv_lightning.sweeps.command:main",
        "run a W&B sweep file here, without a W&B server",
    ),
    "masks": ("pconv_lightning.masks.commands:main", "make, index and measure mask sets"),
    "shards": ("pconv_lightning.data.shards:main", "pack an image folder into litdata shards"),
    "weights": (
        "pconv_lightning.vgg.command:main",
        "derive the ImageNet VGG16 weights offline (pconv weights vgg16)",
    ),
}


def usage() -> str:
    """``pconv --help``: every command with one line."""
    rows = [*TRAINING.items(), *((name, line) for name, (_, line) in TOOLS.items())]
    width = max(len(name) for name, _ in rows)
    lines = [
        "usage: pconv COMMAND [ARGS ...]   (pconv COMMAND --help for its options)",
        "",
        "Image inpainting with partial convolutions (Liu et al., ECCV 2018).",
        "",
        "commands:",
        *(f"  {name:<{width}}  {line}" for name, line in rows),
    ]
    return "\n".join(lines)


def load_tool(name: str) -> Any:
    """Import the function behind tool ``name``."""
    module, function = TOOLS[name][0].split(":")
    return getattr(importlib.import_module(module), function)


def cli_main(args: list[str] | None = None) -> Any:
    """Run ``pconv`` with ``args`` (default: ``sys.argv[1:]``).

    Returns the CLI object for Lightning subcommands (its ``trainer``, ``model`` and
    ``datamodule`` are there to inspect) and the exit code for every other command.
    """
    argv = sys.argv[1:] if args is None else list(args)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] in TOOLS:
        return load_tool(argv[0])(argv[1:])
    if argv[0] not in TRAINING:
        print(f"{usage()}\n\npconv: error: unknown command {argv[0]!r}", file=sys.stderr)
        return 2
    from pconv_lightning.training_cli import run

    return run(args)


def main() -> None:
    """Console-script entry point."""
    from pconv_lightning.errors import report_errors
    from pconv_lightning.extras import MissingExtraError

    argv = sys.argv[1:]
    try:
        result = report_errors(cli_main, f"pconv {argv[0] if argv else ''}".strip())
    except MissingExtraError as err:  # e.g. `pconv app` without gradio
        sys.exit(f"pconv: error: {err}")
    if isinstance(result, int):
        sys.exit(result)
