"""``pconv masks make | index | stats``: write evaluation sets or generator samples, index a
mask folder, and compare hole-ratio distributions.

Examples::

    pconv masks make eval_masks --per-cell 100 --size 256
    pconv masks make thick --count 500 \\
        --generator pconv_lightning.masks.StrokeMaskGenerator --init '{"preset": "thick"}'
    pconv masks stats pconv_lightning.masks.RandomShapesMaskGenerator \\
        --compare ../shared/data/nvidia_irregular_masks_test --plot ratios.png
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import yaml

from pconv_lightning.masks.base import MaskGenerator, mask_rng
from pconv_lightning.masks.evaluation import make_evaluation_set
from pconv_lightning.masks.io import save_mask
from pconv_lightning.masks.manifest import index_mask_folder
from pconv_lightning.masks.stats import (
    MaskStats,
    folder_stats,
    format_table,
    generator_stats,
    plot_histograms,
)


def _instantiate(value: Any) -> Any:
    """Build ``{"class_path": ..., "init_args": {...}}`` dicts (nested, as in LightningCLI YAML)."""
    if isinstance(value, list):
        return [_instantiate(v) for v in value]
    if isinstance(value, dict) and "class_path" in value:
        return build_generator(value["class_path"], value.get("init_args") or {})
    return value


def build_generator(class_path: str, init_args: dict[str, Any] | None = None) -> MaskGenerator:
    """Import ``package.module.Class`` and instantiate it with ``init_args``."""
    module_name, _, class_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"--generator {class_path!r} is not an importable class path") from err
    try:
        generator = cls(**{k: _instantiate(v) for k, v in (init_args or {}).items()})
    except TypeError as err:
        raise ValueError(f"cannot build {class_path} from --init {init_args}: {err}") from err
    if not isinstance(generator, MaskGenerator):
        raise TypeError(f"--generator {class_path} is not a MaskGenerator subclass")
    return generator


def _init_args(text: str) -> dict[str, Any]:
    """Parse ``--init`` as JSON or YAML mapping."""
    value = yaml.safe_load(text) if text else {}
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--init must be a JSON/YAML mapping, got {text!r}")
    return value


def _size(values: list[int]) -> tuple[int, int]:
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def _make(args: argparse.Namespace) -> int:
    generator = None if args.generator is None else build_generator(args.generator, args.init)
    if args.count is None:
        manifest = make_evaluation_set(
            args.out, args.per_cell, _size(args.size), args.seed, generator
        )
    else:
        if generator is None:
            raise ValueError("make --count needs --generator CLASS_PATH")
        args.out.mkdir(parents=True, exist_ok=True)
        height, width = _size(args.size)
        for index in range(args.count):
            save_mask(
                args.out / f"{index:06d}.png", generator(height, width, mask_rng(args.seed, index))
            )
        manifest = index_mask_folder(args.out)
    print(f"wrote {manifest}")
    return 0


def _index(args: argparse.Namespace) -> int:
    print(f"wrote {index_mask_folder(args.root, args.hole_value, args.threshold, args.output)}")
    return 0


def _stats_of(source: str, args: argparse.Namespace) -> MaskStats:
    if Path(source).is_dir():
        return folder_stats(source, args.hole_value, args.threshold)
    height, width = _size(args.size)
    return generator_stats(build_generator(source, args.init), args.count, height, width, args.seed)


def _stats(args: argparse.Namespace) -> int:
    sets = [_stats_of(args.source, args)]
    if args.compare is not None:
        sets.append(folder_stats(args.compare, args.hole_value, args.threshold))
    print("\n\n".join(format_table(s) for s in sets))
    if args.plot is not None:
        print(f"wrote {plot_histograms(args.plot, sets)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pconv masks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def sampling(p: argparse.ArgumentParser, count: int | None) -> None:
        p.add_argument("--init", type=_init_args, default={}, help="init args, JSON or YAML")
        p.add_argument("--size", type=int, nargs="+", default=[256], metavar="H [W]")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--count", type=int, default=count, help="number of generator masks")

    def pixels(p: argparse.ArgumentParser) -> None:
        p.add_argument("--hole-value", type=int, default=255, choices=(0, 255))
        p.add_argument("--threshold", type=int, default=127)

    make = sub.add_parser("make", help="write an evaluation set, or --count generator masks")
    make.add_argument("out", type=Path)
    make.add_argument("--per-cell", type=int, default=100, help="masks per bucket x border cell")
    make.add_argument("--generator", help="class path of a MaskGenerator (default: a mixture)")
    sampling(make, None)
    make.set_defaults(func=_make)

    index = sub.add_parser("index", help="write a manifest for an existing mask folder")
    index.add_argument("root", type=Path)
    index.add_argument("--output", type=Path, help="manifest path (default ROOT/manifest.csv)")
    pixels(index)
    index.set_defaults(func=_index)

    stats = sub.add_parser("stats", help="per-bucket hole-ratio table of a folder or generator")
    stats.add_argument("source", help="mask folder, or class path of a MaskGenerator")
    stats.add_argument("--compare", type=Path, help="second mask folder to compare against")
    stats.add_argument("--plot", type=Path, help="save a histogram PNG here")
    sampling(stats, 1000)
    pixels(stats)
    stats.set_defaults(func=_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; bad input prints ``pconv masks: error: ...`` and returns 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(getattr(args, "size", [1])) > 2:
        parser.error("--size takes H or H W")
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        print(f"pconv masks: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
