"""The study report's overall table, from hand-made spread and paired rows."""

from __future__ import annotations

import pandas as pd

from pconv_lightning.study.report import overall_table

PAIRED_COLUMNS = [
    "arm",
    "reference",
    "bucket",
    "metric",
    "difference",
    "low",
    "high",
    "seeds",
    "verdict",
]


def test_overall_table_gives_each_arms_mean_range_and_difference_to_the_reference():
    spread = pd.DataFrame(
        [
            ("ref", "all", "psnr", 22.0, 0.1, 21.9, 22.1, 2),
            ("ref", "1-10", "psnr", 30.0, 0.1, 29.9, 30.1, 2),
            ("a", "all", "psnr", 24.5, 0.2, 24.3, 24.7, 2),
            ("b", "all", "psnr", 21.0, 0.0, 21.0, 21.0, 1),
        ],
        columns=["arm", "bucket", "metric", "mean", "std", "min", "max", "seeds"],
    )
    paired = pd.DataFrame(
        [
            ("a", "ref", "all", "psnr", 2.5, 2.1, 2.9, "2/2", "a better"),
            ("a", "ref", "1-10", "psnr", 9.0, 8.0, 10.0, "2/2", "a better"),
            ("b", "ref", "all", "psnr", -1.0, -1.5, -0.5, "1/2", "no verdict: b has 1 seed"),
        ],
        columns=PAIRED_COLUMNS,
    )
    lines = overall_table(spread, paired, ("psnr",), ["ref", "a", "b"], "ref").splitlines()
    assert lines[0] == "| arm | seeds | PSNR (dB) | - ref |"
    assert lines[2] == "| ref | 2 | 22.00 (21.90-22.10) |  |"
    assert lines[3] == "| a | 2 | 24.50 (24.30-24.70) | +2.50 [+2.10, +2.90] * |"
    assert lines[4] == "| b | 1 | 21.00 | -1.00 [-1.50, -0.50] |"  # one seed: not called
