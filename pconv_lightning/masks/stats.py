"""Hole-ratio statistics of a mask folder or a generator: per-bucket table and histogram."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pconv_lightning.masks.base import MaskGenerator, mask_rng
from pconv_lightning.masks.buckets import BUCKET_EDGES, BUCKET_NAMES, ratio_bucket
from pconv_lightning.masks.files import list_mask_files
from pconv_lightning.masks.io import load_mask
from pconv_lightning.masks.manifest import describe_mask


@dataclass(frozen=True)
class MaskStats:
    """Hole ratios and border contact of a set of masks.

    Shape:
        - ratios: ``(n,)`` float64; borders: ``(n,)`` bool.
    """

    name: str
    ratios: np.ndarray
    borders: np.ndarray


def folder_stats(root: str | Path, hole_value: int = 255, threshold: int = 127) -> MaskStats:
    """Stats of every PNG/JPEG mask under ``root``, from the pixels."""
    described = [describe_mask(load_mask(f, hole_value, threshold)) for f in list_mask_files(root)]
    return MaskStats(
        str(root),
        np.array([d[0] for d in described]),
        np.array([d[2] for d in described], dtype=bool),
    )


def generator_stats(
    generator: MaskGenerator, count: int, height: int, width: int, seed: int = 0
) -> MaskStats:
    """Stats of masks ``0..count-1`` of ``generator`` seeded with ``seed``."""
    described = [describe_mask(generator(height, width, mask_rng(seed, i))) for i in range(count)]
    return MaskStats(
        f"{generator!r} at {height}x{width}",
        np.array([d[0] for d in described]),
        np.array([d[2] for d in described], dtype=bool),
    )


def format_table(stats: MaskStats) -> str:
    """Per-bucket counts, share, border split and mean ratio, plus the out-of-range rows."""
    buckets = np.array([ratio_bucket(r) for r in stats.ratios], dtype=int)
    low = stats.ratios <= BUCKET_EDGES[0]
    groups = [("0-1", low), *((n, buckets == i) for i, n in enumerate(BUCKET_NAMES))]
    groups += [("60-100", (buckets < 0) & ~low), ("all", np.ones_like(low))]
    total = max(len(stats.ratios), 1)
    lines = [
        stats.name,
        f"{'hole (%)':<10}{'count':>7}{'share':>8}{'border':>8}{'inner':>7}{'mean ratio':>12}",
    ]
    for name, sel in groups:
        count = int(sel.sum())
        mean = f"{stats.ratios[sel].mean():.3f}" if count else "-"
        border = int(stats.borders[sel].sum())
        lines.append(
            f"{name:<10}{count:>7}{count / total:>8.1%}{border:>8}{count - border:>7}{mean:>12}"
        )
    return "\n".join(lines)


def plot_histograms(path: str | Path, sets: list[MaskStats]) -> Path:
    """Save overlaid hole-ratio histograms of ``sets`` with the bucket edges marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(0, 1, 51)
    for stats in sets:
        ax.hist(stats.ratios, bins=bins, density=True, alpha=0.5, label=stats.name[:70])
    for edge in BUCKET_EDGES:
        ax.axvline(edge, color="k", lw=0.8, ls="--")
    ax.set(xlabel="hole ratio", ylabel="density", title="Hole-ratio distribution")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
