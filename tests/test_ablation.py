"""The mask-generator ablation end to end on the shipped samples at a tiny budget."""

from __future__ import annotations

import pandas as pd
import pytest
from training_helpers import CONFIGS, SAMPLES

from pconv_lightning.cli import cli_main

GENERATORS = ["masks_shapes.yaml", "masks_strokes_thick.yaml"]


@pytest.mark.slow
def test_ablation_trains_each_generator_and_names_winners(tmp_path):
    out = tmp_path / "ablation"
    fit_overrides = [
        "--trainer.max_steps=2",
        "--trainer.logger=false",
        "--trainer.limit_val_batches=1",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--data.image_size=64",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--data.max_eval_samples=2",
        "--model.net.init_args.layers=6",
    ]
    code = cli_main(
        [
            "ablate",
            *(str(CONFIGS / g) for g in GENERATORS),
            f"--base={CONFIGS / 'quickstart.yaml'}",
            f"--images={SAMPLES / 'val'}",
            f"--masks={SAMPLES / 'eval_masks'}",
            "--size=64",
            "--per-cell=1",
            "--device=cpu",
            f"--out={out}",
            "--",
            *fit_overrides,
        ]
    )
    assert code == 0
    names = ["shapes", "strokes_thick"]
    for name in names:
        assert (out / "runs" / name / "checkpoints" / "last.ckpt").is_file()
    assert (out / "ablation.png").is_file()
    assert (out / "evaluation" / "metrics.csv").is_file()

    table = pd.read_csv(out / "ablation.csv", dtype={"bucket": str})
    buckets = ["1-10", "10-20", "20-30", "30-40", "40-50", "50-60", "all"]
    assert list(table.columns) == [
        *("method", "bucket", "n", "psnr", "ssim", "l1", "l1_hole", "lpips")
    ]
    assert list(dict.fromkeys(table["bucket"])) == buckets
    assert set(table["method"]) == set(names)

    winners = pd.read_csv(out / "winners.csv", dtype={"bucket": str})
    assert list(winners["bucket"]) == buckets
    for _, row in winners.iterrows():
        part = table[table["bucket"] == row["bucket"]].set_index("method")
        assert row["psnr"] == part["psnr"].idxmax()
        assert row["l1"] == part["l1"].idxmin()
        assert row["lpips"] == part["lpips"].idxmin()  # LPIPS-VGG: lower is better

    report = (out / "ablation.md").read_text()
    assert "## Winner per hole-ratio bucket" in report
    assert "shapes: " in report and "2 steps" in report
    winner_rows = [line for line in report.splitlines() if line.startswith("| 1-10 | ")]
    assert winner_rows[0].split("|")[2].strip() in names


def test_ablation_names_a_missing_config(tmp_path, capsys):
    code = cli_main(
        [
            "ablate",
            str(tmp_path / "masks_nothing.yaml"),
            f"--base={CONFIGS / 'quickstart.yaml'}",
            f"--images={SAMPLES / 'val'}",
            "--builtin-masks=1",
            f"--out={tmp_path}",
        ]
    )
    assert code == 1
    assert "masks_nothing.yaml does not exist" in capsys.readouterr().err
