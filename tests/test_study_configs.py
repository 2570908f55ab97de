"""The study files: each resolves, each arm composes with its base into the run it names, the
plain-convolution arm trains, and the held-out photos never reach a training folder."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml
from training_helpers import REPO, tiny_args

from pconv_lightning.cli import cli_main
from pconv_lightning.evaluation.ablation import build_parser, resolve
from pconv_lightning.study.photos import link_split, read_held_out, write_held_out

STUDIES = REPO / "experiments" / "studies"
STUDY_FILES = sorted(p for p in STUDIES.glob("*.yaml") if not p.stem.endswith("_base"))


def study(path: Path):
    return resolve(build_parser().parse_args([f"--study={path}"]), [])[0]


@pytest.mark.parametrize("path", STUDY_FILES, ids=[p.stem for p in STUDY_FILES])
def test_every_study_file_resolves_with_three_seeds_for_the_network_arms(path, monkeypatch):
    monkeypatch.chdir(REPO)
    s = study(path.relative_to(REPO))
    seeds = {arm.name: arm.seeds for arm in s.arms}
    assert s.reference == "pconv"
    assert seeds["pconv"] == seeds["conv_grey"] == seeds["conv_mean"] == 3
    assert min(seeds.values()) >= 2
    assert s.images_per_run % s.batch_size == 0


def printed(args: list[str]) -> dict:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        cli_main(["fit", *args, "--print_config"])
    return yaml.safe_load(out.getvalue())


@pytest.mark.slow
def test_each_arm_changes_only_what_it_names(monkeypatch):
    monkeypatch.chdir(REPO)
    s = study(Path("experiments/studies/proxy.yaml"))
    arms = {arm.name: arm for arm in s.arms}
    configs = {}
    for name, arm in arms.items():
        config = printed([f"--config={s.base}", *(f"--config={c}" for c in arm.configs)])
        config["data"] = config["data"]["init_args"]  # the data module's class is the base's
        configs[name] = config
    reference = configs["pconv"]
    net = reference["model"]["net"]
    assert net["class_path"] == "pconv_lightning.models.PConvUNet"
    assert net["init_args"]["layers"] == 5 and reference["data"]["image_size"] == 64
    for name, fill in (("conv_grey", [0.5, 0.5, 0.5]), ("conv_mean", [0.485, 0.456, 0.406])):
        conv = configs[name]["model"]["net"]
        assert conv["class_path"] == "pconv_lightning.models.ConvUNet"
        assert conv["init_args"]["fill"] == fill and conv["init_args"]["layers"] == 5
    weights = {name: c["model"]["loss_weights"] for name, c in configs.items()}
    assert weights["pconv"] == {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0,
                                "tv": 0.1}  # fmt: skip
    assert weights["no_style"] == {**weights["pconv"], "style": 0.0}
    assert weights["no_perceptual_style"] == {**weights["pconv"], "perceptual": 0.0, "style": 0.0}
    generators = {n: c["data"]["mask_generator"]["class_path"] for n, c in configs.items()}
    assert generators["pconv"] == "pconv_lightning.masks.MixtureMaskGenerator"
    assert generators["masks_nvidia"] == "pconv_lightning.masks.FileMaskGenerator"
    assert generators["masks_strokes"] == "pconv_lightning.masks.StrokeMaskGenerator"
    assert generators["masks_shapes"] == "pconv_lightning.masks.RandomShapesMaskGenerator"
    for name, config in configs.items():  # everything else is the reference arm's
        for key in ("trainer", "data", "model"):
            rest = {k: v for k, v in config[key].items() if k not in ("mask_generator", "net",
                                                                       "loss_weights")}  # fmt: skip
            same = {k: v for k, v in reference[key].items() if k in rest}
            assert rest == same, (name, key)


@pytest.mark.slow
def test_the_plain_convolution_arm_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    args = [
        "fit",
        "--config=experiments/studies/proxy_base.yaml",
        "--config=experiments/studies/arms/conv_mean.yaml",
        *tiny_args(tmp_path / "run", layers=5),
        "--data.mask_generator=pconv_lightning.masks.RandomShapesMaskGenerator",
        "--trainer.logger=false",
        "--model.val_lpips=null",
    ]
    cli = cli_main(args)
    assert cli.trainer.global_step == 2
    assert type(cli.model.net).__name__ == "ConvUNet"
    assert cli.model.net.fill == pytest.approx((0.485, 0.456, 0.406))


def test_held_out_photos_and_their_copies_never_reach_the_training_folder(tmp_path):
    from PIL import Image

    data = tmp_path / "data"
    for folder in ("pool", "copies"):
        (data / folder).mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (48, 32), (60 * i, 10, 200 - 40 * i)).save(data / "pool" / f"p_{i}.jpg")
    Image.new("RGB", (32, 32), (60, 10, 160)).save(data / "copies" / "c_1.jpg")  # copy of p_1
    Image.new("RGB", (32, 32), (250, 250, 0)).save(data / "copies" / "other.jpg")
    held = tmp_path / "held_out.csv"
    write_held_out([(Path("pool/p_1.jpg"), [Path("copies/c_1.jpg")])], held)
    assert read_held_out(held) == [(Path("pool/p_1.jpg"), [Path("copies/c_1.jpg")])]
    train, evaluation = link_split(held, data, ["pool", "copies"], tmp_path / "links")
    names = sorted(p.relative_to(train).as_posix() for p in train.rglob("*.jpg"))
    assert names == ["copies/other.jpg", "pool/p_0.jpg", "pool/p_2.jpg", "pool/p_3.jpg"]
    assert [p.name for p in evaluation.iterdir()] == ["p_1.jpg"]
    # the list changes: the links follow it
    write_held_out([(Path("pool/p_2.jpg"), [])], held)
    train, _ = link_split(held, data, ["pool", "copies"], tmp_path / "links")
    assert "pool/p_1.jpg" in {p.relative_to(train).as_posix() for p in train.rglob("*.jpg")}
    assert "c_1" in {p.stem for p in train.rglob("*.jpg")}


def test_the_committed_held_out_list_has_300_photos_and_names_their_copies():
    rows = read_held_out(STUDIES / "held_out.csv")
    assert len(rows) == 300 and len({p for p, _ in rows}) == 300
    imagenet = [p for p, _ in rows if p.name.startswith("imagenet-sample-")]
    with_copies = [p for p, c in rows if c]
    assert with_copies and set(with_copies) <= set(imagenet)
