"""The reference model's card sections, from its evaluation runs and its training log.

Reads the ``metrics.csv`` of each ``pconv evaluate`` run (the model against Telea, NS and the
mean fill) and writes into the card, between ``<!-- evaluation:begin -->`` and
``<!-- evaluation:end -->``: the issue's three targets per run (met, or the buckets that miss
them) and each run's table per bucket and border group. With ``--weights``, writes the card's
release status (step, size and SHA-256 of the released file) between ``<!-- status:begin -->``
and ``<!-- status:end -->``. With ``--plot``, draws the training log: the training loss against
images seen and the card's quick Kodak24 scores; ``--run`` repeated draws a chain of runs, each
started from the previous one's export (``NAME=DIR@STEP``: that run up to the exported step).

    .venv/bin/python scripts/reference_report.py --card weights/README.md \\
        --weights weights/reference_256.safetensors \\
        --eval "Kodak24, 256x256=RUN/eval/kodak24_256" ... --plot weights/training_log.png
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter
from reference_log import (  # scripts/: the training log over all starts, the card's sections
    BASELINES_BEGIN,
    BASELINES_END,
    replace_section,
    training_log,
)
from safetensors import safe_open

from pconv_lightning.evaluation.compare import bucket_table, wins

CACHE = Path.home() / ".cache" / "pconv_lightning"
BEGIN, END = "<!-- evaluation:begin -->", "<!-- evaluation:end -->"
STATUS_BEGIN, STATUS_END = "<!-- status:begin -->", "<!-- status:end -->"
FROM_10 = ["10-20", "20-30", "30-40", "40-50", "50-60"]
# (text, metric, methods to beat, buckets): the targets, in its order
TARGETS = [
    ("better than mean fill, every bucket, PSNR", "psnr", ["mean"], None),
    ("better than mean fill, every bucket, SSIM", "ssim", ["mean"], None),
    ("better than mean fill, every bucket, LPIPS", "lpips", ["mean"], None),
    ("LPIPS better than Telea and NS from 10 % up", "lpips", ["telea", "ns"], FROM_10),
    ("PSNR better than Telea and NS at 40-60 %", "psnr", ["telea", "ns"], ["40-50", "50-60"]),
]


def target_cell(summary: pd.DataFrame, model: str, metric: str, others, buckets) -> str:
    """``met`` or ``missed: <buckets>`` for one target on one run (``buckets``: None for all;
    buckets the run has no pairs in are left out, ``no pairs`` when that is all of them)."""
    missed: list[str] = []
    for other in others:
        won = wins(summary, model, other, metric).drop("all")
        checked = [b for b in (buckets or won.index) if b in won.index]
        if not checked:
            return "no pairs"
        missed += [b for b in checked if not won[b] and b not in missed]
    return "met" if not missed else "missed: " + ", ".join(f"{b} %" for b in missed)


def evaluation_section(runs: dict[str, Path], model: str) -> str:
    """The card's evaluation section: the targets table, then a table per run."""
    summaries = {name: pd.read_csv(folder / "metrics.csv") for name, folder in runs.items()}
    lines = ["| target | " + " | ".join(summaries) + " |", "|" + "---|" * (len(runs) + 1)]
    for text, metric, others, buckets in TARGETS:
        cells = [target_cell(s, model, metric, others, buckets) for s in summaries.values()]
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    for name, summary in summaries.items():
        pairs = summary.loc[(summary["method"] == model) & (summary["bucket"] == "all"), "n"]
        lines += ["", f"**{name}** ({int(pairs.iloc[0])} image-mask pairs):", ""]
        lines.append(bucket_table(summary))
    return "\n".join(lines)


def release_status(weights: Path) -> str:
    """The card's status line: which step the released file is, its size and SHA-256."""
    with safe_open(str(weights), "pt") as f:
        meta = f.metadata() or {}
    if "step" not in meta:
        raise SystemExit(f"{weights} has no step in its metadata: not a run's fp16 export")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    return (
        f"**Released**: `{weights.name}` is the run's network at step {int(meta['step']):,} "
        f"(fp16, {weights.stat().st_size:,} bytes, SHA-256 `{digest}`). `pconv inpaint`, "
        "`pconv app` and `pconv evaluate` use it when no `--checkpoint` is given."
    )


def card_log(card: Path) -> pd.DataFrame:
    """The card's training log rows (its first table under ``## Training log``, up to the next
    heading): images seen and the quick Kodak24 scores (all buckets)."""
    section = card.read_text().split("## Training log", 1)[-1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 8 and re.fullmatch(r"\d{4}-\d\d-\d\d", cells[0]):
            images = int(cells[2].replace(",", "")) + int(cells[3].replace(",", ""))
            psnr, lpips = (float(c.split("/")[-1]) for c in cells[6:8])
            rows.append({"images": images, "psnr": psnr, "lpips": lpips})
    return pd.DataFrame(rows)


def card_baselines(card: Path) -> pd.DataFrame:
    """The overall quick scores of the baselines on the log's pairs (the card's
    quick-baselines table; empty when it has none), by method."""
    text = card.read_text()
    if BASELINES_BEGIN not in text:
        return pd.DataFrame(columns=["psnr", "lpips"])
    block = text.split(BASELINES_BEGIN, 1)[1].split(BASELINES_END, 1)[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and "/" in cells[1]:
            rows[cells[0]] = [float(c.split("/")[-1]) for c in cells[1:]]
    return pd.DataFrame.from_dict(rows, orient="index", columns=["psnr", "lpips"])


def chain_log(runs: list[tuple[str, Path, int | None]]) -> pd.DataFrame:
    """The training logs of a chain of runs (each started from the previous one's weights), in
    order, each up to its ``last`` step (the export the next one started from; None: all), its
    images seen counted on from the previous run's; ``run`` names the link."""
    parts, offset = [], 0
    for name, folder, last in runs:
        log = training_log(folder)
        if last is not None:
            log = log[log["step"] <= last]
        log = log.assign(run=name, **{"train/images_seen": log["train/images_seen"] + offset})
        parts.append(log)
        offset = int(log["train/images_seen"].max())
    return pd.concat(parts, ignore_index=True)


def plot_training_log(runs: list[tuple[str, Path, int | None]], card: Path, path: Path) -> None:
    """Training loss (mean of 10 logged steps) and the card's quick scores against images seen
    over the chain of runs; a line where each run and each run's stage 2 begins."""
    log = chain_log(runs)
    scores, baselines = card_log(card), card_baselines(card)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for _, part in log.groupby("run", sort=False):
        axes[0].plot(part["train/images_seen"], part["train/loss"], lw=0.5, alpha=0.4, c="C0")
        smooth = part["train/loss"].rolling(10, min_periods=1).mean()
        axes[0].plot(part["train/images_seen"], smooth, c="C0")
    axes[0].set(ylabel="training loss (Eq. 7)", yscale="log")
    for axis, metric, label in ((axes[1], "psnr", "PSNR (dB)"), (axes[2], "lpips", "LPIPS")):
        axis.plot(scores["images"], scores[metric], marker="o", label="model")
        for i, (method, value) in enumerate(baselines[metric].items()):
            style = ("--", ":", "-.")[i % 3]
            axis.axhline(value, color="black", ls=style, lw=0.8, label=f"{method} (same pairs)")
        if len(baselines):
            axis.legend(fontsize="small")
        axis.set(ylabel=f"Kodak24 at 256, all buckets: {label}")
    starts = {}  # the images seen when each run, and each run's stage 2, began
    for name, part in log.groupby("run", sort=False):
        starts[name if len(runs) > 1 else ""] = (part["train/images_seen"].iloc[0], "--")
        if "train/stage" in part:
            stage2 = part.loc[part["train/stage"] > 1, "train/images_seen"]
            if len(stage2):
                starts[f"stage 2{f' ({name})' if len(runs) > 1 else ''}"] = (stage2.iloc[0], ":")
    for axis in axes:
        axis.set_xlabel("training images seen")
        axis.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
        axis.grid(alpha=0.3)
        for i, (text, (seen, style)) in enumerate(item for item in starts.items() if item[0]):
            axis.axvline(seen, color="grey", ls=style, lw=0.8)
            if axis is axes[0]:  # labelled once, staggered: the starts may be close together
                y = 1.01 + 0.07 * (i % 3)
                axis.text(seen, y, text, transform=axis.get_xaxis_transform(), fontsize="small")
    fig.suptitle("reference model: training log")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def chain_link(text: str) -> tuple[str, Path, int | None]:
    """``[NAME=]DIR[@LAST_STEP]``: one run of the chain."""
    name, _, rest = text.rpartition("=")
    folder, at, last = rest.partition("@")
    folder = Path(folder).expanduser()
    if not (folder / "csv").is_dir() or (at and not last.isdigit()):
        raise argparse.ArgumentTypeError(
            f"--run expects [NAME=]DIR[@LAST_STEP] with DIR/csv/*/metrics.csv, got {text!r}"
        )
    return name or folder.name, folder, int(last) if at else None


def named_folder(text: str) -> tuple[str, Path]:
    name, sep, folder = text.rpartition("=")
    if not sep or not (Path(folder).expanduser() / "metrics.csv").is_file():
        raise argparse.ArgumentTypeError(
            f"--eval expects NAME=FOLDER with a metrics.csv, got {text!r}"
        )
    return name, Path(folder).expanduser()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", type=Path, default=Path("weights/README.md"))
    parser.add_argument(
        "--eval", type=named_folder, action="append", default=[], metavar="NAME=DIR"
    )
    parser.add_argument("--model", default="reference", help="the model's method name")
    parser.add_argument("--weights", type=Path, help="the released file, for the card's status")
    parser.add_argument(
        "--run",
        type=chain_link,
        action="append",
        metavar="[NAME=]DIR[@LAST_STEP]",
        help="the run's folder; repeated: a chain of runs, in order (default: the CPU run)",
    )
    parser.add_argument("--plot", type=Path, help="write the training log plot here")
    args = parser.parse_args(argv)
    if args.weights:
        replace_section(args.card, release_status(args.weights), STATUS_BEGIN, STATUS_END)
    if args.eval:
        replace_section(args.card, evaluation_section(dict(args.eval), args.model), BEGIN, END)
    if args.plot:
        runs = args.run or [chain_link(str(CACHE / "runs" / "reference_cpu"))]
        plot_training_log(runs, args.card, args.plot)


if __name__ == "__main__":
    main()
