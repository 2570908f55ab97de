"""One line of the reference model's training log (weights/README.md), from a run's last.ckpt.

Reads the checkpoint's step and training budget (images seen at each size, wall time), the mean
training loss of its last logged steps (:func:`training_log`), and scores the checkpoint with
``pconv evaluate`` on Kodak24 at 256x256 with the held-back odd-numbered NVIDIA masks (a quick
run: ``--per-cell`` pairs per bucket x border cell, no baselines). Prints the Markdown row and,
with ``--card``, appends it to the card's training log table (the line after its last row).

    .venv/bin/python scripts/reference_log.py [--run DIR] [--card weights/README.md]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd
import torch

from pconv_lightning.evaluation.command import main as evaluate
from pconv_lightning.masks.buckets import BUCKET_NAMES

CACHE = Path.home() / ".cache" / "pconv_lightning"
HEADER = (
    "| date | step | images 128 | images 256 | wall h | loss | Kodak24 PSNR per bucket (dB) "
    "| Kodak24 LPIPS per bucket |"
)


def training_log(run: Path) -> pd.DataFrame:
    """The run's CSV training log, one row per logged step, over all its starts.

    CSVLogger writes ``csv/version_N/metrics.csv`` per start; the folders are joined in the
    order they were last written, and a step logged twice (a resume replays the steps after
    its checkpoint) keeps its newest row.
    """
    files = sorted((run / "csv").glob("*/metrics.csv"), key=lambda f: f.stat().st_mtime)
    if not files:
        raise SystemExit(f"no training log in {run / 'csv'} (expected */metrics.csv)")
    log = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    log = log.dropna(subset=["train/loss"]).drop_duplicates("step", keep="last")
    return log.sort_values("step", kind="stable").reset_index(drop=True)


def training_state(run: Path) -> dict:
    """Step, images per size, wall hours and mean loss of the last 200 logged steps."""
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    budget = ckpt["callbacks"]["TrainingBudget"]
    step = int(ckpt["global_step"])
    log = training_log(run)
    losses = log.loc[log["step"] < step, "train/loss"].tail(200 // 50)
    return {
        "step": step,
        "images": {int(k): int(v) for k, v in budget["counts"].items()},
        "wall_hours": budget["wall_seconds"] / 3600,
        "loss": float(losses.mean()) if len(losses) else float("nan"),
    }


def quick_scores(run: Path, images: Path, masks: Path, per_cell: int) -> pd.DataFrame:
    """``pconv evaluate``'s summary rows (all borders) of the run's last.ckpt."""
    with tempfile.TemporaryDirectory() as out:
        code = evaluate(
            [
                "--checkpoint", f"model={run / 'checkpoints' / 'last.ckpt'}",
                "--images", str(images), "--masks", str(masks), "--size", "256",
                "--per-cell", str(per_cell), "--no-baselines", "--no-progress",
                "--device", "cpu", "--out", out,
            ]
        )  # fmt: skip
        if code:
            raise SystemExit(f"pconv evaluate failed with exit code {code}")
        summary = pd.read_csv(Path(out) / "metrics.csv")
    return summary[summary["border"] == "all"].set_index("bucket")


def row(state: dict, scores: pd.DataFrame) -> str:
    """The Markdown row of the training log."""
    per_bucket = [b for b in BUCKET_NAMES if b in scores.index] + ["all"]
    psnr = " / ".join(f"{scores.loc[b, 'psnr']:.1f}" for b in per_bucket)
    lpips = " / ".join(f"{scores.loc[b, 'lpips']:.3f}" for b in per_bucket)
    return (
        f"| {date.today()} | {state['step']:,} | {state['images'].get(128, 0):,} "
        f"| {state['images'].get(256, 0):,} | {state['wall_hours']:.2f} | {state['loss']:.3f} "
        f"| {psnr} | {lpips} |"
    )


def append_to_card(card: Path, line: str) -> None:
    """Insert ``line`` after the last row of the card's training log table."""
    lines = card.read_text().splitlines()
    start = lines.index(HEADER)
    end = start + 2
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines.insert(end, line)
    card.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=CACHE / "runs" / "reference_cpu")
    parser.add_argument("--images", type=Path, default=Path("../shared/data/eval_kodak24"))
    parser.add_argument("--masks", type=Path, default=CACHE / "masks" / "nvidia_eval_odd")
    parser.add_argument("--per-cell", type=int, default=8)
    parser.add_argument("--card", type=Path, help="append the row to this model card")
    args = parser.parse_args()
    line = row(
        training_state(args.run), quick_scores(args.run, args.images, args.masks, args.per_cell)
    )
    print(HEADER, "|---|---|---|---|---|---|---|---|", line, sep="\n")
    if args.card:
        append_to_card(args.card, line)


if __name__ == "__main__":
    main()
