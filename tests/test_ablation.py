"""`pconv ablate` end to end at a tiny budget on the shipped samples: 2 arms x 2 seeds, the
same budget and pairs for every run, a resumed study that trains nothing again, the report."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from training_helpers import CONFIGS, SAMPLES

from pconv_lightning.cli import cli_main
from pconv_lightning.study import runs

FIT = [
    "--trainer.logger=false",
    "--trainer.limit_val_batches=0",
    "--trainer.num_sanity_val_steps=0",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--data.image_size=64",
    "--data.num_workers=0",
    "--data.val=null",
    "--model.net.init_args.layers=5",
    "--model.val_lpips=null",
]


def ablate(out, *extra):
    return cli_main(
        [
            "ablate",
            f"shapes={CONFIGS / 'masks_shapes.yaml'}",
            f"thick={CONFIGS / 'masks_strokes_thick.yaml'}",
            f"--base={CONFIGS / 'quickstart.yaml'}",
            "--seeds=2",
            "--images-per-run=4",
            "--batch-size=2",
            f"--images={SAMPLES / 'val'}",
            f"--masks={SAMPLES / 'eval_masks'}",
            "--size=64",
            "--per-cell=4",
            "--device=cpu",
            f"--out={out}",
            *extra,
            "--",
            *FIT,
        ]
    )


@pytest.mark.slow
def test_ablation_trains_every_arm_and_seed_and_resumes_without_training(tmp_path, monkeypatch):
    out = tmp_path / "study"
    assert ablate(out) == 0
    names = [f"{arm}_seed{seed}" for arm in ("shapes", "thick") for seed in (0, 1)]
    frames = {}
    for name in names:
        arm, seed = name.split("_seed")
        info = json.loads((out / "scores" / f"{name}.json").read_text())
        assert (info["steps"], info["batch_size"], info["images"]) == (2, 2, 4)  # same budget
        assert (out / "runs" / arm / f"seed{seed}" / "checkpoints" / "last.ckpt").is_file()
        frames[name] = pd.read_csv(out / "scores" / f"{name}.csv")
        assert (out / "scores" / f"{name}_examples.png").is_file()
    pairs = [tuple(f["pair"]) + tuple(f["image"]) + tuple(f["mask"]) for f in frames.values()]
    assert len(set(pairs)) == 1  # every run scored on the same pairs
    # the seed changes the trained weights: seed 0 and 1 of an arm score differently
    assert not frames["shapes_seed0"]["psnr"].equals(frames["shapes_seed1"]["psnr"])

    spread = pd.read_csv(out / "spread.csv")
    row = spread[(spread.arm == "thick") & (spread.bucket == "all") & (spread.metric == "psnr")]
    seed_means = [frames[f"thick_seed{s}"]["psnr"].mean() for s in (0, 1)]
    assert row["mean"].item() == pytest.approx(sum(seed_means) / 2, abs=1e-5)
    assert row["min"].item() == pytest.approx(min(seed_means), abs=1e-5)
    assert row["seeds"].item() == 2
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["arm"]) == {"thick"} and set(paired["reference"]) == {"shapes"}
    every = paired[(paired.bucket == "all") & (paired.metric == "psnr")].iloc[0]
    expected = (
        sum(seed_means) / 2 - sum(frames[f"shapes_seed{s}"]["psnr"].mean() for s in (0, 1)) / 2
    )
    assert every["difference"] == pytest.approx(expected, abs=1e-5)
    assert every["low"] <= every["difference"] <= every["high"]
    report = (out / "report.md").read_text()
    assert "shapes 2/2 seeds, thick 2/2 seeds" in report and "## PSNR (dB)" in report
    for picture in ("by_hole_ratio.png", "examples.png"):
        assert (out / picture).stat().st_size > 1000

    # Resume: one run's scores removed, its checkpoint kept: nothing trains, that run is
    # scored again; every other run is left alone.
    (out / "scores" / "thick_seed1.csv").unlink()
    before = (out / "scores" / "shapes_seed0.json").read_text()
    trained = []
    monkeypatch.setattr("pconv_lightning.training_cli.run", lambda argv: trained.append(argv))
    assert ablate(out) == 0
    assert trained == []
    assert (out / "scores" / "thick_seed1.csv").is_file()
    assert (out / "scores" / "shapes_seed0.json").read_text() == before


def test_a_resumed_run_short_of_its_budget_continues_from_its_checkpoint(tmp_path, monkeypatch):
    from pconv_lightning.evaluation.ablation import build_parser, resolve

    args = build_parser().parse_args(
        [
            f"a={CONFIGS / 'masks_shapes.yaml'}",
            f"--base={CONFIGS / 'quickstart.yaml'}",
            "--images-per-run=40",
            "--batch-size=4",
            f"--images={SAMPLES / 'val'}",
            "--builtin-masks=1",
            f"--out={tmp_path}",
        ]
    )
    study, _ = resolve(args, [])
    arm = study.arms[0]
    checkpoint = runs.run_dir(study, arm, 1) / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.touch()
    steps = iter([4, 10])  # 4 of 10 steps before, 10 after the resumed fit
    monkeypatch.setattr(runs, "trained_steps", lambda _: next(steps))
    calls = []
    monkeypatch.setattr("pconv_lightning.training_cli.run", lambda argv: calls.append(argv))
    assert runs.train(study, arm, 1) == checkpoint
    (argv,) = calls
    assert f"--ckpt_path={checkpoint}" in argv
    assert "--seed_everything=1" in argv and "--data.seed=1" in argv
    assert "--trainer.max_steps=10" in argv and "--data.batch_size=4" in argv


def small_study_options(out) -> list[str]:
    """Options of a study that never trains (its training is replaced or it fails first)."""
    return [
        f"--base={CONFIGS / 'quickstart.yaml'}",
        f"--images={SAMPLES / 'val'}",
        "--builtin-masks=1",
        "--images-per-run=8",
        "--batch-size=2",
        f"--out={out}",
    ]


def test_ablation_names_a_missing_config_and_a_bad_reference(tmp_path, capsys):
    common = small_study_options(tmp_path)
    assert cli_main(["ablate", str(tmp_path / "masks_nothing.yaml"), *common]) == 2
    assert "masks_nothing.yaml does not exist" in capsys.readouterr().err
    shapes = str(CONFIGS / "masks_shapes.yaml")
    assert cli_main(["ablate", shapes, "--reference=conv", *common]) == 2
    assert "--reference 'conv' is not one of the arms ['shapes']" in capsys.readouterr().err


def test_only_trains_the_named_arms_and_names_an_unknown_one(tmp_path, monkeypatch, capsys):
    from pconv_lightning.evaluation import ablation

    trained, reported = [], []
    monkeypatch.setattr(runs, "train", lambda study, arm, seed: trained.append((arm.name, seed)))
    monkeypatch.setattr(runs, "score", lambda *args: tmp_path / "scored.csv")
    monkeypatch.setattr(ablation, "study_pairs", lambda study: ["pair"])
    monkeypatch.setattr(
        "pconv_lightning.study.report.write_report",
        lambda study, title: reported.append([a.name for a in study.arms]) or tmp_path,
    )
    arms = [f"{n}={CONFIGS / 'masks_shapes.yaml'}" for n in ("a", "b", "c")]
    common = small_study_options(tmp_path)
    assert cli_main(["ablate", *arms, *common, "--seeds=2", "--only", "c", "a"]) == 0
    assert trained == [("a", 0), ("c", 0), ("a", 1), ("c", 1)]
    assert reported == [["a", "b", "c"]]  # the report still covers every arm
    assert cli_main(["ablate", *arms, *common, "--only", "a", "d"]) == 2
    assert "--only d: no such arm (the study's arms: a, b, c)" in capsys.readouterr().err
