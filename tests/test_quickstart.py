"""The quick start: its fine-tune draws masks as the reference recipe does (checked on the
resolved configs), it scores the starting and the final weights on the whole validation set
and writes both tables side by side, and its grid shows the chosen validation pairs."""

from __future__ import annotations

import csv
import io
from contextlib import redirect_stdout
from itertools import islice
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from test_module import tiny_data, tiny_module, tiny_trainer
from training_helpers import CONFIGS, REPO, SAMPLES, tiny_args

from pconv_lightning.callbacks import FreezeBatchNorm, ImageGridLogger
from pconv_lightning.cli import cli_main
from pconv_lightning.models import PConvUNet

QUICKSTART = [
    f"--config={CONFIGS / name}" for name in ("quickstart.yaml", "quickstart_finetune.yaml")
]


def _resolved(capsys, *args: str) -> dict:
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli_main(["fit", *args, "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)


def _generators(config: dict) -> list[tuple[str, dict]]:
    data = config["data"].get("init_args", config["data"])
    mixture = data["mask_generator"]
    assert mixture["class_path"] == "pconv_lightning.masks.MixtureMaskGenerator"
    return [(g["class_path"], g["init_args"]) for g in mixture["init_args"]["generators"]]


def test_the_finetune_draws_masks_as_the_reference_recipe(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    quick = _resolved(capsys, *QUICKSTART)
    reference = _resolved(capsys, f"--config={CONFIGS / 'reference_256.yaml'}")
    ours, theirs = _generators(quick), _generators(reference)
    assert (
        [c for c, _ in ours]
        == [c for c, _ in theirs]
        == [
            "pconv_lightning.masks.FileMaskGenerator",
            "pconv_lightning.masks.StrokeMaskGenerator",
        ]
    )
    data = lambda c: c["data"].get("init_args", c["data"])  # noqa: E731
    weights = lambda c: data(c)["mask_generator"]["init_args"]["weights"]  # noqa: E731
    assert weights(quick) == weights(reference) == [0.75, 0.25]
    files, reference_files = dict(ours[0][1]), dict(theirs[0][1])
    assert files.pop("root") == "data/samples/train_masks"
    reference_files.pop("root")
    assert files == reference_files  # resize, dilation, rotation, shift: the recipe's
    assert ours[1][1] == theirs[1][1]  # medium strokes
    # the shipped masks: the even-numbered (training) half of the NVIDIA test masks, never the
    # validation masks
    names = sorted(p.name for p in (SAMPLES / "train_masks").glob("*.png"))
    assert len(names) == 60 and all((int(n[:5]) // 6) % 2 == 0 for n in names)
    assert quick["model"]["init_weights"] == "weights/reference_256.safetensors"
    assert data(quick)["image_size"] == 256 and quick["trainer"]["num_sanity_val_steps"] == -1
    assert [c["class_path"].rsplit(".", 1)[1] for c in quick["trainer"]["callbacks"]] == [
        "BeforeAfterTable",
        "FreezeBatchNorm",
    ]


def _psnr(net: PConvUNet, loader) -> float:
    """Mean per-pair PSNR of the composite, in float64, computed here."""
    values = []
    with torch.no_grad():
        for batch in loader:
            image, mask = batch["image"], batch["mask"]
            comp = torch.where(mask > 0.5, image, net(image, mask)).clamp(0, 1).double()
            mse = (comp - image.double()).square().mean(dim=(1, 2, 3))
            values += (10 * torch.log10(1 / mse)).tolist()
    return float(np.mean(values))


@pytest.mark.slow
def test_the_quick_start_scores_before_the_first_step_and_after_the_last(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the fine-tune's mask folder is relative to the checkout
    start = PConvUNet(layers=6)
    torch.save(start.state_dict(), tmp_path / "start.pth")
    root = tmp_path / "run"
    out = io.StringIO()
    with redirect_stdout(out):
        cli = cli_main(
            [
                "fit",
                *QUICKSTART,
                *tiny_args(root, steps=2),
                "--trainer.num_sanity_val_steps=-1",  # the fine-tune's, which tiny_args turn off
                "--trainer.check_val_every_n_epoch=1",  # validation at the last step, as
                "--trainer.val_check_interval=2",  # at step 60 in the quick start
                "--trainer.logger=false",
                "--trainer.precision=32-true",  # the same arithmetic as the check below
                f"--model.init_weights={tmp_path / 'start.pth'}",
            ]
        )
    with open(root / "val_before_after.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["hole (%)", "PSNR (dB) before", "PSNR (dB) after"]
    overall = rows[-1]
    assert overall[0] == "all"
    batches = int(cli.trainer.num_val_batches[0])  # what validation ran (limit_val_batches)
    loader = list(islice(cli.datamodule.val_dataloader(), batches))
    last = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert last["global_step"] == 2
    final = PConvUNet(layers=6)
    final.load_state_dict(
        {k.removeprefix("net."): v for k, v in last["state_dict"].items() if k.startswith("net.")}
    )
    assert float(overall[1]) == pytest.approx(_psnr(start.eval(), loader), abs=0.006)
    assert float(overall[2]) == pytest.approx(_psnr(final.eval(), loader), abs=0.006)
    assert overall[1] != overall[2]  # two steps changed the weights
    table = (root / "val_before_after.md").read_text()
    assert "before training (step 0) and after it (step 2)" in table
    assert table in out.getvalue()  # printed as written


def test_the_grid_gathers_the_chosen_pairs_across_batches(tmp_path):
    logger = ImageGridLogger(samples=[1, 4])
    trainer = SimpleNamespace(
        sanity_checking=False, default_root_dir=str(tmp_path), global_step=7,
        is_global_zero=True, loggers=[],
    )  # fmt: skip
    logger.on_validation_epoch_start(trainer, None)
    images = torch.rand(6, 3, 8, 8)
    mask = torch.ones(6, 1, 8, 8)
    mask[..., 2:5, 2:5] = 0
    for index in range(3):  # batches of 2: pairs 0-1, 2-3, 4-5
        part = slice(2 * index, 2 * index + 2)
        batch = {"image": images[part], "mask": mask[part]}
        logger.on_validation_batch_end(trainer, None, images[part], batch, index)
    picture = np.asarray(Image.open(tmp_path / "samples" / "step_0000007.png"))
    assert picture.shape[0] == 14 + 2 * 10 + 2  # header and two rows: pairs 1 and 4
    truth = picture[14 + 2 :, 2 + 4 * 10 : 10 + 4 * 10]  # the truth column
    expected = [
        images[i].mul(255).add(0.5).clamp(0, 255).byte().permute(1, 2, 0).numpy() for i in (1, 4)
    ]
    assert np.array_equal(truth[:8], expected[0]) and np.array_equal(truth[10:18], expected[1])


def test_frozen_batchnorm_keeps_every_running_statistic_while_the_weights_train(tmp_path):
    module = tiny_module()
    state = {k: v.clone() for k, v in module.net.state_dict().items()}
    trainer = tiny_trainer(tmp_path, steps=2, callbacks=[FreezeBatchNorm()], limit_val_batches=0)
    trainer.fit(module, tiny_data())
    after = module.net.state_dict()
    statistics = [k for k in state if k.endswith(("running_mean", "running_var"))]
    assert statistics and all(torch.equal(after[k], state[k]) for k in statistics)
    weights = [k for k in state if k.endswith("weight")]
    assert any(not torch.equal(after[k], state[k]) for k in weights)  # it trained
