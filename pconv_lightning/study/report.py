"""The study's report from the result files in ``OUT/scores/`` alone (no checkpoint needed):
``report.md``, ``spread.csv``, ``paired.csv``, ``by_hole_ratio.png``, ``curves.png`` and
``examples.png``."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from pconv_lightning.study.design import Study
from pconv_lightning.study.stats import (
    ALL,
    BUCKETS,
    HIGHER_IS_BETTER,
    METRICS,
    paired_differences,
    spread,
)

HEADERS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS", "l1_hole": "hole L1 (%)"}
DIGITS = {"psnr": 2, "ssim": 4, "lpips": 4, "l1_hole": 3}


def load_scores(study: Study) -> pd.DataFrame:
    """Every finished run's per-pair scores, with its arm and seed (arms in study order)."""
    frames = []
    for arm in study.arms:
        for seed in range(arm.seeds):
            path = study.out / "scores" / f"{arm.name}_seed{seed}.csv"
            if path.is_file():
                frames.append(pd.read_csv(path).assign(arm=arm.name, seed=seed))
    if not frames:
        raise FileNotFoundError(f"no finished runs in {study.out / 'scores'}")
    return pd.concat(frames, ignore_index=True)


def _cell(row: pd.Series, digits: int) -> str:
    if row["seeds"] < 2:
        return f"{row['mean']:.{digits}f} (1 seed)"
    return (
        f"{row['mean']:.{digits}f} ± {row['std']:.{digits}f} "
        f"({row['min']:.{digits}f}-{row['max']:.{digits}f})"
    )


def spread_table(table: pd.DataFrame, metric: str, arms: list[str]) -> str:
    """Markdown: arms x buckets, mean ± std (min-max) over seeds."""
    part = table[table["metric"] == metric].set_index(["arm", "bucket"])
    buckets = [b for b in [*BUCKETS, ALL] if b in part.index.get_level_values(1)]
    lines = [
        "| arm | seeds | " + " | ".join(f"{b} %" if b != ALL else "all" for b in buckets) + " |",
        "|---|---|" + "---|" * len(buckets),
    ]
    for arm in arms:
        if arm not in part.index.get_level_values(0):
            continue
        seeds = int(part.loc[(arm, ALL), "seeds"])
        cells = [_cell(part.loc[(arm, b)], DIGITS[metric]) for b in buckets]
        lines.append(f"| {arm} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _difference(row: pd.Series, digits: int) -> str:
    """A paired difference and its 95 % interval, ``*`` where the verdict calls it."""
    return (
        f"{row['difference']:+.{digits}f} [{row['low']:+.{digits}f}, {row['high']:+.{digits}f}]"
        + (" *" if row["verdict"].endswith(" better") else "")
    )


def overall_table(
    table: pd.DataFrame,
    paired: pd.DataFrame,
    metrics: tuple[str, ...],
    arms: list[str],
    reference: str,
) -> str:
    """Markdown: one row per arm over all pairs, each metric's mean over seeds (min-max), and
    beside it the arm minus the reference with its 95 % interval (``*``: a called difference)."""
    spread_all = table[table["bucket"] == ALL].set_index(["arm", "metric"])
    diffs = (
        paired[paired["bucket"] == ALL].set_index(["arm", "metric"]) if not paired.empty else None
    )
    lines = [
        "| arm | seeds | " + " | ".join(f"{HEADERS[m]} | - {reference}" for m in metrics) + " |",
        "|---|---|" + "---|---|" * len(metrics),
    ]
    for arm in arms:
        cells = []
        for metric in metrics:
            row, digits = spread_all.loc[(arm, metric)], DIGITS[metric]
            cells.append(
                f"{row['mean']:.{digits}f}"
                + (
                    f" ({row['min']:.{digits}f}-{row['max']:.{digits}f})"
                    if row["seeds"] > 1
                    else ""
                )
            )
            if diffs is None or (arm, metric) not in diffs.index:
                cells.append("")
                continue
            cells.append(_difference(diffs.loc[(arm, metric)], digits))
        seeds = int(spread_all.loc[(arm, metrics[0]), "seeds"])
        lines.append(f"| {arm} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(paired: pd.DataFrame, metric: str) -> str:
    """Markdown: arm - reference per bucket, the difference and its 95 % interval (``*``: a
    difference the verdict calls), with the verdict of the whole set."""
    part = paired[paired["metric"] == metric]
    buckets = [b for b in [*BUCKETS, ALL] if b in set(part["bucket"])]
    lines = [
        "| arm - reference | "
        + " | ".join(f"{b} %" if b != ALL else "all" for b in buckets)
        + " | verdict (all) |",
        "|---|" + "---|" * (len(buckets) + 1),
    ]
    digits = DIGITS[metric]
    for arm, rows in part.groupby("arm", sort=False):
        rows = rows.set_index("bucket")
        cells = [_difference(rows.loc[b], digits) for b in buckets]
        lines.append(
            f"| {arm} - {rows['reference'].iloc[0]} | "
            + " | ".join(cells)
            + f" | {rows.loc[ALL, 'verdict']} |"
        )
    return "\n".join(lines)


def plot_by_hole_ratio(table: pd.DataFrame, arms: list[str], path: Path) -> Path:
    """Each metric against the hole-ratio bucket: one line per arm (mean over seeds), the seeds'
    range shaded."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.6))
    centres = np.arange(5, 60, 10)
    for ax, metric in zip(axes, METRICS, strict=True):
        part = table[(table["metric"] == metric) & (table["bucket"] != ALL)]
        for arm in arms:
            rows = part[part["arm"] == arm].set_index("bucket").reindex(list(BUCKETS))
            if rows["mean"].isna().all():
                continue
            (line,) = ax.plot(centres, rows["mean"], marker="o", ms=3, label=arm)
            ax.fill_between(centres, rows["min"], rows["max"], color=line.get_color(), alpha=0.2)
        better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
        ax.set(xlabel="hole ratio (%)", title=f"{HEADERS[metric]}, {better} is better")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_curves(study: Study) -> pd.DataFrame:
    """Every finished run's validation curve, with arm, seed and images seen."""
    frames = []
    for arm in study.arms:
        for seed in range(arm.seeds):
            path = study.out / "scores" / f"{arm.name}_seed{seed}_curve.csv"
            info = path.with_name(f"{arm.name}_seed{seed}.json")
            if path.is_file() and info.is_file() and path.stat().st_size:
                batch = json.loads(info.read_text())["batch_size"]
                curve = pd.read_csv(path)
                frames.append(
                    curve.assign(arm=arm.name, seed=seed, images=(curve["step"] + 1) * batch)
                )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot_curves(curves: pd.DataFrame, arms: list[str], path: Path) -> Path | None:
    """Validation PSNR and LPIPS against training images per arm: the seeds' mean, range shaded."""
    if curves.empty:
        return None
    metrics = [m for m in ("val/psnr", "val/lpips") if m in curves.columns]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for arm in arms:
            rows = curves[curves["arm"] == arm].groupby("images")[metric]
            if not len(rows):
                continue
            stats = rows.agg(["mean", "min", "max"])
            (line,) = ax.plot(stats.index, stats["mean"], label=arm)
            ax.fill_between(
                stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2
            )
        ax.set(xlabel="training images", title=metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _strip(path: Path) -> torch.Tensor:
    """A saved strip of composites as a ``(3, H, W)`` float tensor in [0, 1]."""
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB"), np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1)


def examples_grid(study: Study, arms: list[str], path: Path) -> Path | None:
    """Rows: the six example pairs (one per bucket); columns: input (holes white), each arm's
    seed-0 composite, the original; a header row names the columns."""
    scores = study.out / "scores"
    strips = [scores / "examples_input.png"]
    names = ["input"]
    for arm in arms:
        if (scores / f"{arm}_seed0_examples.png").is_file():
            strips.append(scores / f"{arm}_seed0_examples.png")
            names.append(arm)
    strips.append(scores / "examples_truth.png")
    names.append("original")
    if not all(p.is_file() for p in strips) or len(names) < 3:
        return None
    columns = [_strip(p) for p in strips]  # each (3, S, 6 S)
    side = columns[0].shape[1]
    tiles = [
        col[:, :, k * side : (k + 1) * side]
        for k in range(columns[0].shape[2] // side)
        for col in columns
    ]
    grid = make_grid(torch.stack(tiles), nrow=len(columns), padding=2, pad_value=1.0)
    picture = Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    header = 14
    canvas = Image.new("RGB", (picture.width, picture.height + header), "white")
    canvas.paste(picture, (0, header))
    draw = ImageDraw.Draw(canvas)
    for i, name in enumerate(names):
        draw.text((2 + i * (side + 2), 1), name[: max(4, side // 6)], fill="black")
    canvas.save(path)
    return path


def write_report(study: Study, title: str, replicates: int = 4000) -> Path:
    """Write the report files into ``study.out``; returns ``report.md``."""
    scores = load_scores(study)
    metrics = tuple(m for m in METRICS if m in scores.columns)
    arms = [a.name for a in study.arms if a.name in set(scores["arm"])]
    table = spread(scores, metrics)
    table.to_csv(study.out / "spread.csv", index=False, float_format="%.6f")
    have_reference = study.reference in set(scores["arm"])
    paired = (
        paired_differences(scores, study.reference, metrics, replicates)
        if have_reference and len(arms) > 1
        else pd.DataFrame()
    )
    paired.to_csv(study.out / "paired.csv", index=False, float_format="%.6f")
    plot_by_hole_ratio(table, arms, study.out / "by_hole_ratio.png")
    curves = plot_curves(load_curves(study), arms, study.out / "curves.png")
    grid = examples_grid(study, arms, study.out / "examples.png")
    expected = {a.name: a.seeds for a in study.arms}
    done = scores.groupby("arm")["seed"].nunique().to_dict()
    pairs = scores[["pair"]].drop_duplicates().shape[0]
    photos = scores["image"].nunique()
    lines = [
        f"# {title}",
        "",
        f"- budget: {study.images_per_run:,} training images per run ({study.max_steps:,} "
        f"steps of {study.batch_size}); base config {study.base}",
        f"- evaluation: {pairs} pairs of {photos} photos at {study.size}x{study.size}, the same "
        "for every run; metrics on the composite",
        "- runs finished: "
        + ", ".join(f"{a} {done.get(a, 0)}/{n} seeds" for a, n in expected.items()),
        "",
        "Each cell: the mean over seeds of the per-seed means, ± their standard deviation, and "
        "(min-max) over seeds. Paired differences: arm minus reference over the same pairs, "
        "with a 95 % bootstrap interval that resamples photos and each arm's seeds; `*` marks "
        "an interval that excludes 0 where both arms have at least 2 seeds, and only those are "
        "called a difference (with one seed, an interval covers the photos but not the "
        "training's luck).",
        "",
        "## Overall",
        "",
        overall_table(table, paired, metrics, arms, study.reference),
        "",
    ]
    for metric in metrics:
        lines += [f"## {HEADERS[metric]}", "", spread_table(table, metric, arms), ""]
        if not paired.empty:
            lines += [paired_table(paired, metric), ""]
    lines += ["## Plots", "", "![metrics by hole ratio](by_hole_ratio.png)", ""]
    if curves:
        lines += ["![learning curves](curves.png)", ""]
    if grid:
        lines += [
            "![examples: input, each arm's seed-0 composite, original](examples.png)",
            "",
        ]
    (study.out / "report.md").write_text("\n".join(lines))
    return study.out / "report.md"
