"""``pconv ablate`` (also ``experiments/ablate_masks.py``): the mask-generator ablation.

Trains the same model with the same budget once per mask-generator config, evaluates every
run's ``last.ckpt`` on the same fixed evaluation masks with ``pconv evaluate``, and writes one
comparison report that names the winner per hole-ratio bucket.

For each generator config ``G`` (e.g. ``experiments/configs/masks_boxes.yaml``, run name
``boxes``) it runs, in this process::

    pconv fit --config BASE --config G --trainer.default_root_dir OUT/runs/NAME OVERRIDES...

so the base experiment, the seed (``seed_everything`` in the configs) and every override after
``--`` are identical across runs; only ``data.mask_generator`` differs. Then
``pconv evaluate --no-baselines`` scores all checkpoints in one run on the same pairs.

Examples::

    # tiny CPU budget on the shipped samples (about a minute)
    pconv ablate experiments/configs/masks_shapes.yaml experiments/configs/masks_boxes.yaml \\
        --base experiments/configs/quickstart.yaml --images data/samples/val \\
        --masks data/samples/eval_masks --size 128 --out outputs/ablation \\
        -- --trainer.max_steps=20 --trainer.logger=false
    # a GPU budget: every masks_*.yaml, 100k steps each, 100 built-in masks per cell
    pconv ablate experiments/configs/masks_*.yaml --base experiments/configs/imagenet_256.yaml \\
        --images /data/imagenet/val --limit 600 --builtin-masks 100 --size 256 \\
        --out outputs/ablation -- --data.train /data/imagenet/train \\
        --data.val /data/imagenet/val --trainer.max_steps=100000

Writes into ``OUT``: ``runs/NAME/`` (each training run), ``evaluation/`` (the full
``pconv evaluate`` report), ``ablation.md`` (winners per bucket and metric, then every
generator's scores), ``ablation.csv``, ``winners.csv`` and ``ablation.png`` (PSNR and SSIM
against the hole ratio, one line per generator). Winners: highest PSNR and SSIM, lowest L1;
ties go to the generator listed first. ``--reuse`` skips training for runs whose
``last.ckpt`` already exists (to resume an interrupted ablation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pconv_lightning.evaluation.command import main as evaluate_main

if TYPE_CHECKING:  # pandas and torch are imported to run, not for `pconv ablate --help`
    import pandas as pd

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "l1_hole": False, "lpips": False}


def run_name(config: Path) -> str:
    """``masks_strokes_thin.yaml`` -> ``strokes_thin``."""
    return config.stem.removeprefix("masks_")


def train(base: Path, generator: Path, root: Path, overrides: list[str]) -> Path:
    """One ``pconv fit`` run; returns its ``last.ckpt``."""
    from pconv_lightning.training_cli import run  # here: `pconv ablate --help` stays fast

    run(
        [
            "fit",
            f"--config={base}",
            f"--config={generator}",
            f"--trainer.default_root_dir={root}",
            *overrides,
        ]
    )
    checkpoint = root / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"the run with {generator} wrote no {checkpoint}")
    return checkpoint


def trained_steps(checkpoint: Path) -> int:
    """The ``global_step`` stored in a Lightning checkpoint (loaded without pickle)."""
    import torch

    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def winners(summary: pd.DataFrame) -> pd.DataFrame:
    """Per bucket (border ``all``, and overall): the best generator for every score."""
    import pandas as pd

    from pconv_lightning.evaluation.report import ALL, score_columns

    rows = summary[summary["border"] == ALL]
    table = []
    for bucket, part in rows.groupby("bucket", sort=False):
        best = {"bucket": bucket}
        for metric in score_columns(part):
            scores = part.set_index("method")[metric]
            best[metric] = scores.idxmax() if HIGHER_IS_BETTER[metric] else scores.idxmin()
        table.append(best)
    return pd.DataFrame(table)


def write_comparison(
    out: Path, summary: pd.DataFrame, runs: dict[str, tuple[Path, int, Path]]
) -> Path:
    """``ablation.md``, ``ablation.csv``, ``winners.csv`` and ``ablation.png`` in ``out``."""
    from pconv_lightning.evaluation.report import (
        ALL,
        FLOAT_FORMAT,
        HEADERS,
        markdown_table,
        plot_by_bucket,
        score_columns,
    )

    table = summary[summary["border"] == ALL].drop(columns="border")
    best = winners(summary)
    table.to_csv(out / "ablation.csv", index=False, float_format=FLOAT_FORMAT)
    best.to_csv(out / "winners.csv", index=False)
    scores = score_columns(table)
    lines = ["# Mask-generator ablation", ""]
    lines += [
        f"- {name}: {config}, {steps} steps, checkpoint {checkpoint}"
        for name, (config, steps, checkpoint) in runs.items()
    ]
    lines += [
        "- evaluation: evaluation/metrics.md (settings, pairs, per border cell)",
        "",
        "## Winner per hole-ratio bucket",
        "",
        markdown_table(best, {"bucket": "hole (%)", **{m: HEADERS[m] for m in scores}}),
        "",
        "## Scores (holes touching the border or not)",
        "",
        markdown_table(
            table,
            {"bucket": "hole (%)", "method": "generator", "n": "n"}
            | {m: HEADERS[m] for m in scores},
        ),
        "",
    ]
    (out / "ablation.md").write_text("\n".join(lines))
    plot_by_bucket(summary, out / "ablation.png", "mask-generator ablation")
    return out / "ablation.md"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv ablate",
        description=__doc__.split("\n")[0],
        epilog="Arguments after -- go to every `pconv fit` run unchanged.",
    )
    parser.add_argument("generators", type=Path, nargs="+", help="masks_*.yaml configs")
    parser.add_argument("--base", type=Path, required=True, help="the experiment config")
    parser.add_argument("--images", type=Path, required=True, help="evaluation image folder")
    masks = parser.add_mutually_exclusive_group(required=True)
    masks.add_argument("--masks", type=Path, help="evaluation mask folder")
    masks.add_argument("--builtin-masks", type=int, metavar="N", help="seeded set, N per cell")
    parser.add_argument("--size", type=int, default=256, help="evaluation size")
    parser.add_argument("--per-cell", type=int, help="pairs per cell (default: #images)")
    parser.add_argument("--limit", type=int, help="at most N evaluation images")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", help="evaluation device (default: cuda if available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --builtin-masks")
    parser.add_argument("--reuse", action="store_true", help="keep runs that have last.ckpt")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def evaluate_args(args: argparse.Namespace, checkpoints: dict[str, Path]) -> list[str]:
    """The ``pconv evaluate`` command line for the runs' checkpoints."""
    argv = [f"--checkpoint={name}={path}" for name, path in checkpoints.items()]
    argv += ["--no-baselines", f"--images={args.images}", f"--out={args.out / 'evaluation'}"]
    argv += [f"--masks={args.masks}"] if args.masks else [f"--builtin-masks={args.builtin_masks}"]
    options = {
        "size": args.size,
        "per-cell": args.per_cell,
        "limit": args.limit,
        "batch-size": args.batch_size,
        "device": args.device,
        "seed": args.seed,
    }
    return argv + [f"--{k}={v}" for k, v in options.items() if v is not None]


def run(args: argparse.Namespace, overrides: list[str]) -> Path:
    """Train every generator, evaluate all runs, write the comparison; returns its path."""
    import pandas as pd

    names = [run_name(g) for g in args.generators]
    if len(set(names)) != len(names):
        raise ValueError(f"generator configs must have distinct names, got {names}")
    for config in [args.base, *args.generators]:
        if not config.is_file():
            raise FileNotFoundError(f"config {config} does not exist")
    checkpoints = {}
    for name, config in zip(names, args.generators, strict=True):
        root = args.out / "runs" / name
        checkpoint = root / "checkpoints" / "last.ckpt"
        if not (args.reuse and checkpoint.is_file()):
            checkpoint = train(args.base, config, root, overrides)
        checkpoints[name] = checkpoint
    if evaluate_main(evaluate_args(args, checkpoints)) != 0:
        raise RuntimeError(f"the evaluation failed; see above and {args.out / 'evaluation'}")
    summary = pd.read_csv(args.out / "evaluation" / "metrics.csv", dtype={"bucket": str})
    runs = {
        name: (config, trained_steps(checkpoints[name]), checkpoints[name])
        for name, config in zip(names, args.generators, strict=True)
    }
    return write_comparison(args.out, summary, runs)


def main(argv: list[str] | None = None) -> int:
    """Run ``pconv ablate``; arguments after ``--`` are ``pconv fit`` overrides."""
    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    try:
        report = run(args, argv[split + 1 :])
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"pconv ablate: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
