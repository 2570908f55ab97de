"""Statistics of a seeded comparison: per-seed means, their spread, and paired differences with
a bootstrap interval that covers both the evaluation photos and the training seeds.

Scores arrive as one row per (arm, seed, pair) with the pair's photo, bucket and metrics. Every
arm is scored on the same pairs, so two arms are compared pair by pair. The interval of a
difference resamples, in each of ``replicates`` rounds, the photos with replacement (a photo
brings all its pairs: pairs of one photo are not independent) and each arm's seeds with
replacement (so that a difference one lucky seed made is not taken for an effect), and takes
the 2.5 and 97.5 percentiles of the resampled differences (Efron and Tibshirani 1993, the
percentile interval).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("psnr", "ssim", "lpips", "l1_hole")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "l1_hole": False, "lpips": False}
ALL = "all"
BUCKETS = ("1-10", "10-20", "20-30", "30-40", "40-50", "50-60")


def bucket_label(bucket: int) -> str:
    """``0`` -> ``"1-10"`` (hole ratio in percent)."""
    return BUCKETS[bucket]


def seed_means(scores: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Mean of every metric per arm, seed and bucket (``"all"``: every pair)."""
    per_bucket = scores.assign(bucket=scores["bucket"].map(bucket_label))
    frames = [per_bucket, scores.assign(bucket=ALL)]
    joined = pd.concat(frames, ignore_index=True)
    return joined.groupby(["arm", "seed", "bucket"], sort=False)[list(metrics)].mean().reset_index()


def spread(scores: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per arm, bucket and metric: the mean over seeds of the per-seed means, their standard
    deviation (ddof 1; NaN for one seed), minimum, maximum and the number of seeds."""
    means = seed_means(scores, metrics).melt(
        id_vars=["arm", "seed", "bucket"], value_vars=list(metrics), var_name="metric"
    )
    grouped = means.groupby(["arm", "bucket", "metric"], sort=False)["value"]
    return grouped.agg(mean="mean", std="std", min="min", max="max", seeds="count").reset_index()


def paired_bootstrap(
    arm: np.ndarray,
    reference: np.ndarray,
    photos: np.ndarray,
    replicates: int = 4000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean paired difference ``arm - reference`` and its 95 % percentile interval.

    Args:
        arm, reference: per-seed scores of the same pairs, shape ``(seeds, pairs)`` each (the
            two arms may have different seed counts).
        photos: ``(pairs,)`` the photo of each pair (any hashable labels): the resampling unit.
        replicates: bootstrap rounds; seed: their random generator's seed.

    Returns:
        ``(difference, low, high)``; the difference is that of the seed means, over all pairs.
    """
    arm, reference = np.asarray(arm, np.float64), np.asarray(reference, np.float64)
    if arm.ndim != 2 or reference.ndim != 2 or arm.shape[1] != reference.shape[1]:
        raise ValueError(
            f"expected (seeds, pairs) arrays with the same pairs, got {arm.shape} and "
            f"{reference.shape}"
        )
    _, cluster = np.unique(np.asarray(photos), return_inverse=True)
    count = np.bincount(cluster).astype(np.float64)  # pairs per photo
    # per-photo sums of each seed's scores: (seeds, photos)
    arm_sums = np.stack([np.bincount(cluster, weights=row) for row in arm])
    ref_sums = np.stack([np.bincount(cluster, weights=row) for row in reference])
    difference = float(arm.mean(0).mean() - reference.mean(0).mean())
    rng = np.random.default_rng(seed)
    n_photos = len(count)
    photo_weights = rng.multinomial(n_photos, np.full(n_photos, 1 / n_photos), replicates)
    arm_seeds = rng.multinomial(len(arm), np.full(len(arm), 1 / len(arm)), replicates) / len(arm)
    ref_seeds = rng.multinomial(
        len(reference), np.full(len(reference), 1 / len(reference)), replicates
    ) / len(reference)
    per_photo = arm_seeds @ arm_sums - ref_seeds @ ref_sums  # (replicates, photos)
    resampled = (photo_weights * per_photo).sum(1) / (photo_weights @ count)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return difference, float(low), float(high)


MIN_SEEDS = 2  # a side with one seed has no seed spread: its interval covers the photos only


def verdict(
    metric: str,
    low: float,
    high: float,
    arm: str,
    reference: str,
    seeds: tuple[int, int] = (MIN_SEEDS, MIN_SEEDS),
) -> str:
    """Which arm the interval shows to be better on ``metric``, or that it shows neither.

    ``seeds`` = (the arm's, the reference's) seed counts: below :data:`MIN_SEEDS` on either
    side no arm is called better, whatever the interval, since one seed's luck cannot be told
    from an effect."""
    short = [
        f"{name} has {n} seed"
        for name, n in zip((arm, reference), seeds, strict=True)
        if n < MIN_SEEDS
    ]
    if short:
        return f"no verdict: {', '.join(short)}"
    if low <= 0 <= high:
        return "no difference shown"
    arm_higher = low > 0
    better = arm if arm_higher == HIGHER_IS_BETTER[metric] else reference
    return f"{better} better"


def paired_differences(
    scores: pd.DataFrame,
    reference: str,
    metrics: tuple[str, ...],
    replicates: int = 4000,
    seed: int = 0,
) -> pd.DataFrame:
    """For every arm but ``reference``, bucket (and ``"all"``) and metric: the paired difference
    arm - reference, its interval, the seed counts (``"arm/reference"``) and the verdict."""
    rows = []
    labelled = scores.assign(bucket=scores["bucket"].map(bucket_label))
    for bucket in [*BUCKETS, ALL]:
        part = labelled if bucket == ALL else labelled[labelled["bucket"] == bucket]
        if part.empty:
            continue
        for metric in metrics:
            table = part.pivot_table(index=["arm", "seed"], columns="pair", values=metric)
            photos = part.drop_duplicates("pair").set_index("pair").loc[table.columns, "image"]
            ref = table.loc[reference].to_numpy()
            for arm in dict.fromkeys(part["arm"]):
                if arm == reference:
                    continue
                values = table.loc[arm].to_numpy()
                diff, low, high = paired_bootstrap(values, ref, photos.to_numpy(), replicates, seed)
                seeds = (len(values), len(ref))
                rows.append(
                    {
                        "arm": arm,
                        "reference": reference,
                        "bucket": bucket,
                        "metric": metric,
                        "difference": diff,
                        "low": low,
                        "high": high,
                        "seeds": f"{seeds[0]}/{seeds[1]}",
                        "verdict": verdict(metric, low, high, arm, reference, seeds),
                    }
                )
    return pd.DataFrame(rows)
