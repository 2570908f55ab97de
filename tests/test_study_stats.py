"""The study's statistics against hand-worked cases: the spread over seeds and the bootstrap
interval of a paired difference (photos and seeds resampled)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pconv_lightning.study.stats import paired_bootstrap, paired_differences, spread, verdict


def test_a_constant_paired_difference_has_an_interval_of_that_value():
    # Seeds that agree exactly (the seeds of two arms are not paired, only the pairs are)
    reference = np.tile(np.random.default_rng(1).normal(25, 3, size=40), (3, 1))
    arm = reference[:2] + 0.5
    diff, low, high = paired_bootstrap(arm, reference, np.arange(40) // 4)
    assert diff == pytest.approx(0.5)
    assert (low, high) == pytest.approx((0.5, 0.5))


def test_the_photo_resampling_matches_the_enumerated_distribution():
    # One seed each; per-photo differences 0, 1 and 5 (one pair per photo). The 27 equally
    # likely resamples of 3 photos have means from 0 to 5; 0 and 5 each have probability
    # 1/27 > 2.5 %, so the exact 95 % percentile interval is [0, 5], and the mean is 2.
    reference = np.zeros((1, 3))
    arm = np.array([[0.0, 1.0, 5.0]])
    diff, low, high = paired_bootstrap(arm, reference, np.array(["a", "b", "c"]), 20000)
    assert diff == pytest.approx(2.0)
    assert (low, high) == pytest.approx((0.0, 5.0))


def test_pairs_of_one_photo_are_resampled_together():
    # Photo "a" has two pairs (difference 0 each), photo "b" one pair (difference 3). With
    # photos resampled, the possible means are 0 (aa), 1 (ab: 3 / 3 pairs) and 3 (bb), so the
    # interval is [0, 3]; resampling single pairs would give means like 1.5 (one of each).
    arm = np.array([[0.0, 0.0, 3.0]])
    diff, low, high = paired_bootstrap(arm, np.zeros((1, 3)), np.array(["a", "a", "b"]), 20000)
    assert diff == pytest.approx(1.0)
    assert (low, high) == pytest.approx((0.0, 3.0))


def test_the_seeds_are_resampled():
    # Identical photos; the arm's two seeds are 0 and 2 above the reference's single seed. Seed
    # resampling gives 0 (p 1/4), 1 (p 1/2) or 2 (p 1/4): the interval is [0, 2] and includes
    # 0 although every pair of the seed mean is 1 higher, so no difference is shown.
    reference = np.full((1, 10), 20.0)
    arm = np.stack([np.full(10, 20.0), np.full(10, 22.0)])
    diff, low, high = paired_bootstrap(arm, reference, np.arange(10), 20000)
    assert diff == pytest.approx(1.0)
    assert (low, high) == pytest.approx((0.0, 2.0))
    assert verdict("psnr", low, high, "arm", "ref") == "no difference shown"


@pytest.mark.parametrize(
    ("metric", "low", "high", "expected"),
    [
        ("psnr", 0.1, 0.4, "arm better"),
        ("psnr", -0.4, -0.1, "ref better"),
        ("lpips", 0.01, 0.02, "ref better"),  # LPIPS: lower is better
        ("lpips", -0.02, -0.01, "arm better"),
        ("ssim", -0.01, 0.02, "no difference shown"),
    ],
)
def test_verdict_follows_the_metric_direction(metric, low, high, expected):
    assert verdict(metric, low, high, "arm", "ref") == expected


def scores_frame() -> pd.DataFrame:
    """2 arms; a: seeds with PSNR 20 and 22 everywhere, b: one seed, 21 in bucket 0 and 25 in
    bucket 1; two pairs per bucket, each of its own photo."""
    rows = []
    for arm, seed, values in (("a", 0, (20, 20)), ("a", 1, (22, 22)), ("b", 0, (21, 25))):
        for pair in range(4):
            bucket = pair // 2
            rows.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "pair": pair,
                    "image": f"p{pair}",
                    "bucket": bucket,
                    "psnr": float(values[bucket]),
                }
            )
    return pd.DataFrame(rows)


def test_spread_gives_the_mean_std_and_range_of_the_seed_means():
    table = spread(scores_frame(), ("psnr",)).set_index(["arm", "bucket"])
    row = table.loc[("a", "all")]
    assert (row["mean"], row["min"], row["max"], row["seeds"]) == (21.0, 20.0, 22.0, 2)
    assert row["std"] == pytest.approx(np.sqrt(2.0))  # ddof 1 of {20, 22}
    assert table.loc[("b", "10-20"), "mean"] == 25.0
    assert table.loc[("b", "all"), "mean"] == 23.0
    assert np.isnan(table.loc[("b", "all"), "std"])


def test_paired_differences_per_bucket():
    table = paired_differences(scores_frame(), "a", ("psnr",), 2000).set_index("bucket")
    assert table.loc["1-10", "difference"] == pytest.approx(0.0)  # 21 - mean(20, 22)
    assert table.loc["10-20", "difference"] == pytest.approx(4.0)  # 25 - 21
    assert table.loc["all", "difference"] == pytest.approx(2.0)
    # bucket 10-20: b beats a's either seed (25 against 20 or 22): the interval is [3, 5]
    assert (table.loc["10-20", "low"], table.loc["10-20", "high"]) == pytest.approx((3.0, 5.0))
    # b has one seed: its luck is not in the interval, so no arm is called better
    assert table.loc["10-20", "verdict"] == "no verdict: b has 1 seed"
    assert table.loc["10-20", "seeds"] == "1/2"


def test_a_difference_is_called_only_with_two_seeds_on_each_side():
    scores = scores_frame()
    second = scores[scores["arm"] == "b"].assign(seed=1)  # b's second seed: the same scores
    table = paired_differences(pd.concat([scores, second]), "a", ("psnr",), 2000)
    table = table.set_index("bucket")
    assert (table.loc["10-20", "low"], table.loc["10-20", "high"]) == pytest.approx((3.0, 5.0))
    assert table.loc["10-20", "seeds"] == "2/2"
    assert table.loc["10-20", "verdict"] == "b better"
    assert verdict("psnr", 3.0, 5.0, "b", "a", (2, 1)) == "no verdict: a has 1 seed"
