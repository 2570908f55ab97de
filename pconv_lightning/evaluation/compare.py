"""A model against the baselines, bucket by bucket, from ``pconv evaluate``'s ``metrics.csv``.

The summary rows with border ``all`` give one mean per method x bucket; :func:`wins` says, per
bucket, whether the model's mean is better than another method's (higher PSNR and SSIM, lower
L1 and LPIPS). :func:`bucket_table` lays one run out as methods x metrics rows against bucket
columns, with the inner / border split over all buckets, for a model card.
"""

from __future__ import annotations

import pandas as pd

from pconv_lightning.evaluation.report import ALL, HEADERS

HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "l1_hole": False, "lpips": False}
DECIMALS = {"psnr": 2, "ssim": 3, "l1": 2, "l1_hole": 2, "lpips": 3}


def bucket_means(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Means of ``metric`` (border ``all``): one row per method, one column per bucket and
    ``all``, in the summary's order."""
    if metric not in summary.columns:
        raise KeyError(f"metrics.csv has no {metric!r} column (has {list(summary.columns)})")
    rows = summary[summary["border"] == ALL]
    table = rows.pivot(index="method", columns="bucket", values=metric)
    return table.loc[list(dict.fromkeys(rows["method"])), list(dict.fromkeys(rows["bucket"]))]


def wins(summary: pd.DataFrame, model: str, other: str, metric: str) -> pd.Series:
    """Per bucket (and ``all``): True where ``model`` is better than ``other`` on ``metric``."""
    means = bucket_means(summary, metric)
    for name in (model, other):
        if name not in means.index:
            raise KeyError(f"no method {name!r} in metrics.csv (has {list(means.index)})")
    diff = means.loc[model] - means.loc[other]
    return diff > 0 if HIGHER_IS_BETTER[metric] else diff < 0


def bucket_table(
    summary: pd.DataFrame, metrics: tuple[str, ...] = ("psnr", "ssim", "lpips")
) -> str:
    """A Markdown table: a row per metric x method, a column per bucket, ``all``, and the
    inner / border means over the pairs of all buckets; the best method of each column in
    bold."""
    buckets = [b for b in dict.fromkeys(summary["bucket"]) if b != ALL]
    columns = [*buckets, ALL, "inner", "border"]
    lines = [
        "| metric | method | "
        + " | ".join(f"{c} %" if c in buckets else c for c in columns)
        + " |",
        "|" + "---|" * (len(columns) + 2),
    ]
    for metric in metrics:
        means = bucket_means(summary, metric)
        split = summary[(summary["bucket"] != ALL) & (summary["border"] != ALL)]
        weighted = split.assign(total=split[metric] * split["n"])
        sums = weighted.groupby(["method", "border"], sort=False)[["total", "n"]].sum()
        by_border = (sums["total"] / sums["n"]).unstack()  # the mean over the border's pairs
        means = means.join(by_border.reindex(columns=["inner", "border"]))[columns]
        best = means.max() if HIGHER_IS_BETTER[metric] else means.min()
        for method, row in means.iterrows():
            cells = [
                f"**{v:.{DECIMALS[metric]}f}**" if v == best[c] else f"{v:.{DECIMALS[metric]}f}"
                for c, v in row.items()
            ]
            lines.append(f"| {HEADERS[metric]} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
