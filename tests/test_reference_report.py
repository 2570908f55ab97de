"""The reference model's card sections (scripts/reference_report.py and
pconv_lightning.evaluation.compare) on a hand-made evaluation whose wins and losses are known."""

from __future__ import annotations

import hashlib
import runpy

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from training_helpers import REPO

from pconv_lightning.evaluation.compare import bucket_means, bucket_table, wins
from pconv_lightning.evaluation.report import summarize

METHODS = ["reference", "telea", "ns", "mean"]
# per method: (psnr, ssim, lpips) in buckets 1-10, 10-20, 40-50; reference loses LPIPS to
# telea at 10-20 and PSNR to ns at 40-50, beats the mean fill everywhere
SCORES = {
    "reference": {"1-10": (30, 0.95, 0.05), "10-20": (26, 0.90, 0.15), "40-50": (20, 0.70, 0.30)},
    "telea": {"1-10": (31, 0.96, 0.06), "10-20": (25, 0.89, 0.14), "40-50": (19, 0.69, 0.40)},
    "ns": {"1-10": (29, 0.94, 0.07), "10-20": (25, 0.88, 0.16), "40-50": (21, 0.68, 0.41)},
    "mean": {"1-10": (25, 0.90, 0.10), "10-20": (20, 0.80, 0.25), "40-50": (15, 0.60, 0.50)},
}


@pytest.fixture(scope="module")
def report():
    with pytest.MonkeyPatch.context() as patch:  # as `python scripts/...`: scripts/ importable
        patch.syspath_prepend(str(REPO / "scripts"))
        yield runpy.run_path(str(REPO / "scripts" / "reference_report.py"))


@pytest.fixture()
def summary() -> pd.DataFrame:
    """``summarize``'s table of per-pair rows: 3 inner and 1 border pair per bucket; the border
    pair scores 2 dB / 0.02 / 0.04 worse than the bucket's inner pairs."""
    rows = []
    for method in METHODS:
        for bucket, (psnr, ssim, lpips) in SCORES[method].items():
            for pair, border in enumerate(["inner"] * 3 + ["border"]):
                worse = border == "border"
                rows.append(
                    {
                        "method": method, "pair": f"{bucket}/{pair}", "bucket": bucket,
                        "border": border, "psnr": psnr - 2.0 * worse + 0.5 * (pair - 1) * (not worse),
                        "ssim": ssim - 0.02 * worse, "lpips": lpips + 0.04 * worse,
                    }
                )  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["method"] = pd.Categorical(frame["method"], categories=METHODS, ordered=True)
    return summarize(frame)


def test_wins_compare_bucket_means_in_each_metrics_direction(summary):
    lpips = wins(summary, "reference", "telea", "lpips")
    assert lpips.to_dict() == {"1-10": True, "10-20": False, "40-50": True, "all": True}
    psnr = wins(summary, "reference", "ns", "psnr")  # bucket means: 29.5 vs 28.5, 25.5 vs 24.5
    assert psnr.to_dict() == {"1-10": True, "10-20": True, "40-50": False, "all": True}
    assert bucket_means(summary, "psnr").loc["reference", "1-10"] == pytest.approx(29.5)
    with pytest.raises(KeyError, match="no method 'pconv'"):
        wins(summary, "pconv", "ns", "psnr")


def test_targets_name_the_buckets_that_miss(report, summary, tmp_path):
    cell = report["target_cell"]
    assert cell(summary, "reference", "psnr", ["mean"], None) == "met"
    assert cell(summary, "reference", "lpips", ["telea", "ns"], None) == "missed: 10-20 %"
    assert cell(summary, "reference", "psnr", ["telea", "ns"], ["40-50"]) == "missed: 40-50 %"
    assert cell(summary, "reference", "psnr", ["telea", "ns"], ["10-20", "50-60"]) == "met"
    assert cell(summary, "reference", "psnr", ["telea"], ["50-60"]) == "no pairs"


def test_the_table_has_inner_and_border_means_over_all_pairs(summary):
    lines = bucket_table(summary).splitlines()
    assert lines[0] == "| metric | method | 1-10 % | 10-20 % | 40-50 % | all | inner | border |"
    psnr = dict(line.split(" | ", 2)[1:] for line in lines[2:6])
    # inner PSNR of reference: 3 pairs per bucket at (s - 0.5, s, s + 0.5); border: s - 2
    cells = psnr["reference"].strip(" |").split(" | ")
    inner, border = (c.strip("*") for c in cells[-2:])
    assert inner == f"{(30 + 26 + 20) / 3:.2f}" and border == f"{(28 + 24 + 18) / 3:.2f}"
    assert cells[0] == "29.50" and psnr["telea"].startswith("**30.50**")  # the best in bold
    lpips = next(line for line in lines if line.startswith("| LPIPS | reference"))
    assert lpips.split(" | ")[2] == "**0.060**"  # lower is better: the best 1-10 mean in bold


def test_the_card_section_is_replaced_between_its_markers(report, summary, tmp_path):
    runs = {}
    for name in ("Kodak24, 256", "CBSD68, 512"):
        folder = tmp_path / name.replace(", ", "_")
        folder.mkdir()
        summary.to_csv(folder / "metrics.csv", index=False)
        runs[name] = folder
    card = tmp_path / "README.md"
    card.write_text(f"# card\n\n{report['BEGIN']}\nold\n{report['END']}\n\nafter\n")
    report["main"](["--card", str(card), *(f"--eval={n}={f}" for n, f in runs.items())])
    text = card.read_text()
    assert "old" not in text and text.endswith(f"{report['END']}\n\nafter\n")
    assert "| target | Kodak24, 256 | CBSD68, 512 |" in text
    assert "| LPIPS better than Telea and NS from 10 % up | missed: 10-20 % |" in text
    assert "| PSNR better than Telea and NS at 40-60 % | missed: 40-50 % |" in text
    assert text.count("**Kodak24, 256** (12 image-mask pairs):") == 1
    card.write_text("# a card without markers\n")
    with pytest.raises(SystemExit, match="no <!-- evaluation:begin -->"):
        report["main"](["--card", str(card), f"--eval=k={runs['Kodak24, 256']}"])
    with pytest.raises(SystemExit):  # argparse: a folder without metrics.csv
        report["main"](["--card", str(card), f"--eval=k={tmp_path}"])


def test_the_card_log_rows_give_the_learning_curve(report, tmp_path):
    card = tmp_path / "README.md"
    card.write_text(
        "| date | step | images 128 | images 256 | wall h | loss | PSNR | LPIPS |\n|---|\n"
        "| 2026-12-03 | 525 | 4,200 | 0 | 1.82 | 11.2 | 30.3 / 20.9 | 0.072 / 0.298 |\n"
        "| 2026-12-09 | 34,893 | 225,616 | 26,768 | 50.1 | 5.1 | 35.0 / 27.5 | 0.04 / 0.180 |\n"
    )
    log = report["card_log"](card)
    assert log.to_dict("list") == {
        "images": [4200, 252384],
        "psnr": [20.9, 27.5],
        "lpips": [0.298, 0.18],
    }


def test_the_training_log_plot_draws_the_baselines_of_the_card(report, tmp_path):
    """The card's quick-baselines table gives each baseline's overall scores; the plot draws
    them as lines (a card without the table plots the model alone)."""
    card = tmp_path / "README.md"
    card.write_text(
        f"log\n{report['BASELINES_BEGIN']}\n"
        "| method | Kodak24 PSNR per bucket (dB) | Kodak24 LPIPS per bucket |\n|---|---|---|\n"
        "| telea | 35.9 / 26.3 | 0.031 / 0.211 |\n| mean | 29.3 / 22.2 | 0.074 / 0.294 |\n"
        f"{report['BASELINES_END']}\n"
    )
    baselines = report["card_baselines"](card)
    assert baselines.to_dict("index") == {
        "telea": {"psnr": 26.3, "lpips": 0.211},
        "mean": {"psnr": 22.2, "lpips": 0.294},
    }
    plain = tmp_path / "plain.md"
    plain.write_text("no table\n")
    assert report["card_baselines"](plain).empty


def test_the_card_status_names_the_released_files_step_and_sha256(report, tmp_path):
    weights = tmp_path / "reference_256.safetensors"
    save_file({"w": torch.ones(3, dtype=torch.float16)}, str(weights), metadata={"step": "34894"})
    card = tmp_path / "README.md"
    card.write_text(f"# card\n{report['STATUS_BEGIN']}\nin training\n{report['STATUS_END']}\nlog\n")
    report["main"](["--card", str(card), f"--weights={weights}"])
    text = card.read_text()
    assert "in training" not in text and text.endswith(f"{report['STATUS_END']}\nlog\n")
    assert hashlib.sha256(weights.read_bytes()).hexdigest() in text
    assert "at step 34,894 (fp16, " in text and f"{weights.stat().st_size:,} bytes" in text
    save_file({"w": torch.ones(3)}, str(weights))  # a file that is not a run's export
    with pytest.raises(SystemExit, match="has no step in its metadata"):
        report["main"](["--card", str(card), f"--weights={weights}"])


def _run_log(folder, steps: list[int], images_per_step: int, stage2_from: int) -> None:
    (folder / "csv" / "version_0").mkdir(parents=True)
    pd.DataFrame(
        {
            "step": steps,
            "train/loss": [10.0 / (1 + s) for s in steps],
            "train/images_seen": [(s + 1) * images_per_step for s in steps],
            "train/stage": [2 if s >= stage2_from else 1 for s in steps],
        }
    ).to_csv(folder / "csv" / "version_0" / "metrics.csv", index=False)


def test_a_chain_of_runs_counts_images_on_and_stops_each_link_at_its_export(report, tmp_path):
    """H200 -> CPU (exported at step 3, trained on to 5) -> H200: the CPU link's steps after
    its export are not part of the chain, and each link's images follow the previous link's."""
    for name, steps, per_step, stage2 in [
        ("h200_1", [0, 1, 2], 64, 2), ("cpu", [0, 1, 2, 3, 4, 5], 8, 99), ("h200_2", [0, 1], 64, 1)
    ]:  # fmt: skip
        _run_log(tmp_path / name, steps, per_step, stage2)
    links = [
        report["chain_link"](f"first={tmp_path / 'h200_1'}"),
        report["chain_link"](f"{tmp_path / 'cpu'}@3"),
        report["chain_link"](f"last={tmp_path / 'h200_2'}"),
    ]
    assert links[1] == ("cpu", tmp_path / "cpu", 3)
    log = report["chain_log"](links)
    assert log["run"].tolist() == ["first"] * 3 + ["cpu"] * 4 + ["last"] * 2
    # 192 after the first link, + 4 x 8 = 224 after the CPU's step 3, then + 64 a step
    assert log["train/images_seen"].tolist() == [64, 128, 192, 200, 208, 216, 224, 288, 352]
    card = tmp_path / "README.md"
    card.write_text(
        "## Training log\n\n| date | step | images 128 | images 256 | wall h | loss | P | L |\n"
        "| 2026-12-04 | 2 | 0 | 192 | 0.1 | 3.0 | 30 / 24.6 | 0.05 / 0.251 |\n"
        "| 2026-12-04 | 1 | 32 | 320 | 0.2 | 2.4 | 31 / 25.5 | 0.04 / 0.214 |\n\n"
        "### An earlier run\n\n"
        "| 2026-12-03 | 9 | 999 | 0 | 9.0 | 9.0 | 20 / 20.0 | 0.09 / 0.300 |\n"
    )
    assert report["card_log"](card)["images"].tolist() == [192, 352]  # up to the next heading
    report["plot_training_log"](links, card, tmp_path / "log.png")
    assert (tmp_path / "log.png").stat().st_size > 10_000
    with pytest.raises(Exception, match="DIR"):
        report["chain_link"](f"{tmp_path / 'cpu'}@three")
