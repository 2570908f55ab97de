"""Report files of an evaluation run.

- ``per_image.csv``: one row per method x pair with every score;
- ``metrics.csv`` / ``metrics.md``: mean scores per method x bucket x border, per method x
  bucket (border ``all``) and per method overall (bucket ``all``), with the run's settings and
  notes on skipped metrics in the Markdown;
- ``metrics_by_bucket.png``: PSNR and SSIM against the hole-ratio bucket, one line per method;
- ``examples.png``: one pair of each bucket, masked input | every method | ground truth.

Numbers are written with fixed precision, so two runs of the same evaluation give identical
files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from pconv_lightning.evaluation.runner import Evaluation
from pconv_lightning.metrics import bucket_label

ALL = "all"
FLOAT_FORMAT = "%.6f"
HEADERS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "l1": "L1 (%)",
    "l1_hole": "L1 hole (%)",
    "lpips": "LPIPS",
}
BORDER = {False: "inner", True: "border"}


def score_columns(frame: pd.DataFrame) -> list[str]:
    """The score columns present, in report order."""
    return [c for c in HEADERS if c in frame.columns]


def per_image_frame(evaluation: Evaluation, methods: list[str]) -> pd.DataFrame:
    """Per-image rows ordered by method (as given) then pair, with readable cell labels."""
    frame = pd.DataFrame(evaluation.rows)
    frame["method"] = pd.Categorical(frame["method"], categories=methods, ordered=True)
    frame = frame.sort_values(["method", "pair"], kind="stable").reset_index(drop=True)
    frame["bucket"] = frame["bucket"].map(bucket_label)
    frame["border"] = frame.pop("touches_border").map(BORDER)
    return frame


def summarize(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean scores and sample count per method x bucket x border, plus ``all`` rows.

    Rows come bucket by bucket (inner, border, all), then the overall rows; methods in the
    order of ``per_image['method']``'s categories.
    """
    scores = score_columns(per_image)
    buckets = [b for b in map(bucket_label, range(6)) if b in set(per_image["bucket"])]
    parts = []
    for bucket in [*buckets, ALL]:
        in_bucket = per_image if bucket == ALL else per_image[per_image["bucket"] == bucket]
        borders = [ALL] if bucket == ALL else [*BORDER.values(), ALL]
        for border in borders:
            cell = in_bucket if border == ALL else in_bucket[in_bucket["border"] == border]
            if cell.empty:
                continue
            means = cell.groupby("method", observed=True)[scores].mean()
            means.insert(0, "n", cell.groupby("method", observed=True).size())
            parts.append(means.reset_index().assign(bucket=bucket, border=border))
    summary = pd.concat(parts, ignore_index=True)
    summary["method"] = summary["method"].astype(str)
    return summary[["method", "bucket", "border", "n", *scores]]


def markdown_table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    """A Markdown table of ``frame``'s ``columns`` (name -> header); floats to 4 decimals."""
    lines = [
        "| " + " | ".join(columns.values()) + " |",
        "|" + "---|" * len(columns),
    ]
    for _, row in frame.iterrows():
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row[list(columns)]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_by_bucket(summary: pd.DataFrame, path: Path, title: str) -> Path:
    """PSNR and SSIM (border ``all``) against the hole-ratio bucket, one line per method."""
    rows = summary[(summary["bucket"] != ALL) & (summary["border"] == ALL)]
    buckets = list(dict.fromkeys(rows["bucket"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for axis, metric in zip(axes, ("psnr", "ssim"), strict=True):
        for method, part in rows.groupby("method", sort=False):
            axis.plot(part["bucket"], part[metric], marker="o", label=method)
        axis.set_xticks(range(len(buckets)), buckets)
        axis.set_xlabel("hole-to-image ratio (%)")
        axis.set_ylabel(HEADERS[metric])
        axis.grid(alpha=0.3)
    axes[1].legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_examples(evaluation: Evaluation, methods: list[str], path: Path) -> Path:
    """One row per bucket: masked input (holes white) | each method | ground truth."""
    examples = [evaluation.examples[b] for b in sorted(evaluation.examples)]
    titles = ["input", *methods, "ground truth"]
    size = examples[0].image.shape[-1]
    scale = max(size, 128) / 100
    fig, axes = plt.subplots(
        len(examples),
        len(titles),
        figsize=(len(titles) * scale, len(examples) * scale + 0.4),
        squeeze=False,
        constrained_layout=True,
    )
    for row, example in zip(axes, examples, strict=True):
        masked = example.image * example.mask + (1 - example.mask)
        panels = [masked, *(example.outputs[m] for m in methods), example.image]
        for axis, panel in zip(row, panels, strict=True):
            axis.imshow(panel.permute(1, 2, 0).clamp(0, 1).numpy())
            axis.set_xticks([])
            axis.set_yticks([])
        pair = example.pair
        row[0].set_ylabel(
            f"{bucket_label(pair.bucket)}%\n{BORDER[pair.touches_border]}, "
            f"{100 * pair.hole_ratio:.1f}% hole",
            fontsize=8,
        )
    for axis, title in zip(axes[0], titles, strict=True):
        axis.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(
    out: Path, evaluation: Evaluation, methods: list[str], settings: dict[str, str]
) -> pd.DataFrame:
    """Write every report file into ``out``; returns the summary table."""
    out.mkdir(parents=True, exist_ok=True)
    per_image = per_image_frame(evaluation, methods)
    per_image.to_csv(out / "per_image.csv", index=False, float_format=FLOAT_FORMAT)
    summary = summarize(per_image)
    summary.to_csv(out / "metrics.csv", index=False, float_format=FLOAT_FORMAT)
    columns = {"method": "method", "bucket": "hole (%)", "border": "border", "n": "n"}
    columns |= {c: HEADERS[c] for c in score_columns(summary)}
    lines = ["# Inpainting evaluation", ""]
    lines += [f"- {key}: {value}" for key, value in settings.items()]
    lines += [f"- {note}" for note in evaluation.notes]
    if evaluation.fid:
        lines += ["", "FID over the whole run (ground truth vs composites):", ""]
        lines += [f"- {name}: {value:.4f}" for name, value in evaluation.fid.items()]
    lines += ["", markdown_table(summary, columns), ""]
    (out / "metrics.md").write_text("\n".join(lines))
    plot_by_bucket(summary, out / "metrics_by_bucket.png", "composited output by hole ratio")
    plot_examples(evaluation, methods, out / "examples.png")
    return summary
