"""The `pconv` LightningCLI: every experiment config runs, configs round-trip through
--print_config, short generator names resolve, bad input fails before training, resume."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
import yaml
from training_helpers import (
    CONFIGS,
    REPO,
    SAMPLES,
    USER_MASKS,
    assert_restored,
    record_restored_state,
    tiny_args,
    user_cache_masks,
)

from pconv_lightning.cli import cli_main
from pconv_lightning.masks import StrokeMaskGenerator

EXPERIMENTS = sorted(p for p in CONFIGS.glob("*.yaml") if p.name != "base.yaml")
EXTRA = {
    "masks_nvidia.yaml": [f"--data.mask_generator.init_args.root={SAMPLES / 'eval_masks'}"],
    "reference_256.yaml": ["--data.mask_generator=pconv_lightning.masks.StrokeMaskGenerator"],
    # the released weights are the 7-layer network: 128 pixels at the least
    "quickstart_finetune.yaml": [
        "--model.net.init_args.layers=7",
        "--data.image_size=128",
        f"--model.init_weights={REPO / 'weights' / 'reference_256.safetensors'}",  # tmp_path cwd
    ],
}
EXTRA["reference_256_continued.yaml"] = [
    *EXTRA["reference_256.yaml"],
    *EXTRA["quickstart_finetune.yaml"],  # the released weights instead of .gpu_init's
]
ON_TOP_OF = {  # configs that only override another
    "reference_cpu_continued.yaml": "reference_cpu.yaml",
    "reference_256_continued.yaml": "reference_256.yaml",
    "quickstart_finetune.yaml": "quickstart.yaml",
}


@pytest.mark.slow
@pytest.mark.parametrize("config", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_experiment_config_runs(config: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # W&B and any relative output land in tmp
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "samples").symlink_to(SAMPLES)  # configs name the shipped samples so
    chain = [config] + ([CONFIGS / ON_TOP_OF[config.name]] if config.name in ON_TOP_OF else [])
    if any(USER_MASKS in c.read_text() for c in chain):
        user_cache_masks(monkeypatch, tmp_path)
    base = [f"--config={CONFIGS / ON_TOP_OF[config.name]}"] if config.name in ON_TOP_OF else []
    args = ["fit", *base, f"--config={config}", *tiny_args(tmp_path / "run")]
    args += EXTRA.get(config.name, [])
    cli = cli_main(args)
    assert cli.trainer.global_step == 2
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def _printed_config(args: list[str]) -> str:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        cli_main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return out.getvalue()


def test_print_config_reloads_to_the_same_run(tmp_path):
    args = [
        "fit",
        f"--config={CONFIGS / 'quickstart.yaml'}",
        f"--config={CONFIGS / 'masks_strokes_thick.yaml'}",
    ]
    first = _printed_config(args)
    dumped = tmp_path / "config.yaml"
    dumped.write_text(first)
    assert _printed_config(["fit", f"--config={dumped}"]) == first
    parsed = yaml.safe_load(first)
    assert parsed["data"]["init_args"]["mask_generator"]["init_args"]["preset"] == "thick"
    assert parsed["model"]["loss_weights"]["hole"] == 6.0
    assert parsed["trainer"]["default_root_dir"] == "outputs/quickstart"


def test_short_generator_name_and_loss_weight_override(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(
        [
            "fit",
            f"--config={CONFIGS / 'quickstart.yaml'}",
            *tiny_args(tmp_path / "run", steps=1),
            "--trainer.logger=false",
            "--data.mask_generator=StrokeMaskGenerator",
            "--data.mask_generator.preset=thick",
            "--model.loss_weights.hole=3.5",
        ]
    )
    generator = cli.datamodule.mask_generator
    assert isinstance(generator, StrokeMaskGenerator)
    assert generator == StrokeMaskGenerator(preset="thick") or generator.preset == "thick"
    assert cli.model.loss.weights.hole == 3.5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--model.loss_weights.hol=3", "hol"),
        ("--data.mask_generator=NoSuchMaskGenerator", "NoSuchMaskGenerator"),
        ("--data.imag_size=64", "imag_size"),
    ],
)
def test_bad_config_fails_before_training_naming_it(override, message, tmp_path):
    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", f"--config={CONFIGS / 'quickstart.yaml'}", override])
    assert exit_info.value.code != 0
    assert message in err.getvalue()


def test_missing_image_folder_fails_at_setup_naming_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no_such_folder"
    with pytest.raises((FileNotFoundError, ValueError), match="no_such_folder"):
        cli_main(
            [
                "fit",
                f"--config={CONFIGS / 'quickstart.yaml'}",
                *tiny_args(tmp_path / "run"),
                "--trainer.logger=false",
                f"--data.train={missing}",
            ]
        )
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_resume_from_last_continues_at_the_same_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = [
        "fit",
        f"--config={CONFIGS / 'quickstart.yaml'}",
        "--trainer.logger=false",
        "--last_checkpoint.every_n_train_steps=1",
    ]
    cli_main([*common, *tiny_args(tmp_path / "run", steps=3)])
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True, map_location="cpu")
    assert state["global_step"] == 3
    seen = record_restored_state(monkeypatch)
    cli = cli_main([*common, *tiny_args(tmp_path / "run", steps=5), "--ckpt_path=last"])
    assert cli.trainer.global_step == 5
    assert_restored(seen, state)  # the network, Adam's moments and the scheduler: step 3's
    assert torch.load(last, weights_only=True, map_location="cpu")["global_step"] == 5


def test_tools_dispatch_to_their_commands(tmp_path, capsys):
    assert cli_main(["masks", "make", str(tmp_path / "m"), "--per-cell", "1", "--size", "64"]) == 0
    assert (tmp_path / "m" / "manifest.csv").is_file()
    assert cli_main(["masks", "stats", str(tmp_path / "m")]) == 0
    assert "0.5" in capsys.readouterr().out


@pytest.mark.slow
def test_one_last_checkpoint_holding_the_final_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(
        [
            "fit",
            f"--config={CONFIGS / 'quickstart.yaml'}",
            *tiny_args(tmp_path / "run", steps=3),
            "--trainer.logger=false",
            "--trainer.check_val_every_n_epoch=1",
            "--trainer.val_check_interval=2",  # validation (and a best-*.ckpt) at step 2
            "--last_checkpoint.every_n_train_steps=2",  # 3 is no multiple of 2
        ]
    )
    folder = tmp_path / "run" / "checkpoints"
    names = sorted(p.name for p in folder.iterdir())
    assert [n for n in names if n.startswith("last")] == ["last.ckpt"], names
    assert any(n.startswith("best-") for n in names), names
    state = torch.load(folder / "last.ckpt", weights_only=True, map_location="cpu")
    assert state["global_step"] == cli.trainer.global_step == 3
