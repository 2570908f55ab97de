"""One line of the reference model's training log (weights/README.md), from a run's last.ckpt.

Reads the checkpoint's step and training budget (images seen at each size, wall time), the mean
training loss of its last logged steps (:func:`training_log`), and scores the checkpoint with
``pconv evaluate`` on Kodak24 at 256x256 with the held-back odd-numbered NVIDIA masks (a quick
run: ``--per-cell`` pairs per bucket x border cell). Prints the Markdown row and, with
``--card``, appends it to the card's training log table (the line after its last row).
With ``--baselines``, Telea, NS, PatchMatch and the mean fill are scored on the same pairs too, and their
table (the learning curve's yardstick) goes between the card's ``<!-- quick-baselines:begin -->``
and ``<!-- quick-baselines:end -->``.

    .venv/bin/python scripts/reference_log.py [--run DIR] [--card weights/README.md] [--baselines]
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
BASELINES_BEGIN = "<!-- quick-baselines:begin -->"
BASELINES_END = "<!-- quick-baselines:end -->"
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


def quick_scores(
    run: Path, images: Path, masks: Path, per_cell: int, baselines: bool = False
) -> pd.DataFrame:
    """``pconv evaluate``'s summary rows (all borders) by (method, bucket): ``model``, the run's
    last.ckpt, and with ``baselines`` Telea, NS, PatchMatch and the mean fill on the same pairs."""
    with tempfile.TemporaryDirectory() as out:
        code = evaluate(
            [
                "--checkpoint", f"model={run / 'checkpoints' / 'last.ckpt'}",
                "--images", str(images), "--masks", str(masks), "--size", "256",
                "--per-cell", str(per_cell), "--no-progress", "--device", "cpu", "--out", out,
                *([] if baselines else ["--no-baselines"]),
            ]
        )  # fmt: skip
        if code:
            raise SystemExit(f"pconv evaluate failed with exit code {code}")
        summary = pd.read_csv(Path(out) / "metrics.csv")
    return summary[summary["border"] == "all"].set_index(["method", "bucket"])


def per_bucket(scores: pd.DataFrame, metric: str, digits: int) -> str:
    """One method's ``metric`` per bucket and overall, as the log writes it: "35.0 / ... / 25.3"."""
    buckets = [b for b in BUCKET_NAMES if b in scores.index] + ["all"]
    return " / ".join(f"{scores.loc[b, metric]:.{digits}f}" for b in buckets)


def row(state: dict, scores: pd.DataFrame) -> str:
    """The Markdown row of the training log (``scores``: the model's rows by bucket)."""
    return (
        f"| {date.today()} | {state['step']:,} | {state['images'].get(128, 0):,} "
        f"| {state['images'].get(256, 0):,} | {state['wall_hours']:.2f} | {state['loss']:.3f} "
        f"| {per_bucket(scores, 'psnr', 1)} | {per_bucket(scores, 'lpips', 3)} |"
    )


def baseline_table(scores: pd.DataFrame) -> str:
    """The baselines' rows on the quick score's pairs (``scores`` by method and bucket)."""
    lines = [
        "| method | Kodak24 PSNR per bucket (dB) | Kodak24 LPIPS per bucket |",
        "|---|---|---|",
    ]
    for method in scores.index.unique("method").drop("model"):
        rows = scores.loc[method]
        lines.append(
            f"| {method} | {per_bucket(rows, 'psnr', 1)} | {per_bucket(rows, 'lpips', 3)} |"
        )
    return "\n".join(lines)


def replace_section(card: Path, body: str, begin: str, end: str) -> None:
    """Put ``body`` between the card's ``begin`` and ``end`` markers."""
    text = card.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{card} has no {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    card.write_text(f"{head}{begin}\n{body}\n{end}{rest.split(end, 1)[1]}")


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
    parser.add_argument(
        "--baselines", action="store_true", help="also score Telea, NS and the mean fill"
    )
    args = parser.parse_args()
    scores = quick_scores(args.run, args.images, args.masks, args.per_cell, args.baselines)
    line = row(training_state(args.run), scores.loc["model"])
    table = baseline_table(scores) if args.baselines else None
    print(HEADER, "|---|---|---|---|---|---|---|---|", line, table or "", sep="\n")
    if args.card:
        append_to_card(args.card, line)
        if table:
            replace_section(args.card, table, BASELINES_BEGIN, BASELINES_END)


if __name__ == "__main__":
    main()
