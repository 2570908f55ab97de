"""``pconv sweep FILE [--count N] [--out DIR]``: a W&B sweep file run here, without a W&B server.

Run it from the folder ``wandb agent`` would run in (the repository root for the files in
experiments/sweeps/). The same file keeps working with ``wandb sweep`` and ``wandb agent``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Run a W&B sweep file without a W&B server: W&B's own sweep engine (the `sweeps` package)
proposes each point from the file (grid, random or bayes; hyperband early_terminate), and each
point runs as `wandb agent` would run it (the file's command and program, --key=value
arguments), one at a time, with WANDB_MODE=offline. The points' metric histories are read from
their offline W&B runs and fed back to the engine. Everything is written to DIR as it goes:
run the same command again to resume a stopped sweep; `wandb sync` uploads the runs later."""

EPILOG = """\
examples (from the repository root):
  pconv sweep experiments/sweeps/loss_weights.yaml --count 10
  pconv sweep experiments/sweeps/mask_generators.yaml --out outputs/sweeps/masks
  pconv sweep experiments/sweeps/loss_weights.yaml --summary-only   # table and plot again
docs/sweeps.md has the details."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv sweep",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the W&B sweep file (YAML)")
    parser.add_argument(
        "--count",
        type=int,
        metavar="N",
        default=None,
        help="points the sweep has in all when this run ends, counting those DIR already "
        "holds (unlike `wandb agent --count`, which counts one agent's runs); default: until "
        "the grid is done or the file's run_cap, or until stopped",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        default=None,
        help="the sweep's folder: records, summary and runs (default: outputs/sweeps/<FILE "
        "name>); a folder that holds this sweep is resumed",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        metavar="RUNS",
        default=None,
        help="where the points' runs go (checkpoints, W&B files): default DIR/runs, ignored by "
        "git; a folder outside DIR keeps DIR small enough to commit",
    )
    parser.add_argument(
        "--poll",
        type=float,
        metavar="S",
        default=5.0,
        help="seconds between reads of a running point's W&B run (default: 5)",
    )
    parser.add_argument(
        "--kill-delay",
        type=float,
        metavar="S",
        default=30.0,
        help="seconds between SIGTERM and SIGKILL for a point that is stopped (default: 30)",
    )
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="write DIR's summary (table, best point, plot) and run nothing",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count is not None and args.count < 0:
        print("pconv sweep: error: --count must be 0 or more", file=sys.stderr)
        return 2
    from pconv_lightning.errors import PConvError, one_line
    from pconv_lightning.sweeps.runner import Sweep

    out = args.out if args.out is not None else Path("outputs") / "sweeps" / args.file.stem
    try:
        sweep = Sweep(
            args.file, out, args.count, args.runs, poll=args.poll, kill_delay=args.kill_delay
        )
        if args.summary_only:
            return sweep.summarize()
        return sweep.run()
    except PConvError as err:
        print(f"pconv sweep: error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
