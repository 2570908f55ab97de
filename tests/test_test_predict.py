"""`pconv test` scores a checkpoint on the quick-start evaluation set and `pconv predict`
writes full-size composites for a folder of images with masks by stem; without a checkpoint or
data they fail with a message instead of exiting 0 having done nothing."""

from __future__ import annotations

import io
from contextlib import redirect_stderr

import numpy as np
import pytest
import torch
from PIL import Image
from training_helpers import CONFIGS, SAMPLES, tiny_args

from pconv_lightning.cli import cli_main
from pconv_lightning.models import PConvUNet

# The module-scoped fixture is built once, on one xdist worker, for all the tests here.
pytestmark = pytest.mark.xdist_group("test_predict")

QUICKSTART = f"--config={CONFIGS / 'quickstart.yaml'}"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-step quick-start run (its last.ckpt) in a temporary folder."""
    root = tmp_path_factory.mktemp("fit") / "run"
    cli_main(["fit", QUICKSTART, *tiny_args(root), "--trainer.logger=false"])
    return root


def _common(root) -> list[str]:
    return [QUICKSTART, *tiny_args(root), "--trainer.logger=false", "--ckpt_path=last"]


@pytest.mark.slow
def test_test_scores_the_checkpoint_on_the_evaluation_set(run, monkeypatch):
    monkeypatch.chdir(run.parent)
    cli = cli_main(["test", *_common(run), f"--data.test={SAMPLES / 'val'}"])
    metrics = cli.trainer.callback_metrics
    assert {"test/psnr", "test/ssim", "test/l1"} <= set(metrics)
    assert 0 < float(metrics["test/psnr"]) < 100
    table = (run / "test_metrics_by_bucket.md").read_text()
    assert "| all |" in table and f"checkpoint {run / 'checkpoints' / 'last.ckpt'}" in table
    # The checkpoint's own network on the same samples, per-image PSNR in float64 by hand.
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    net = PConvUNet(layers=6).eval()
    net.load_state_dict(
        {k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")}
    )
    data = cli.datamodule
    psnrs = []
    with torch.no_grad():
        for batch in data.test_dataloader():
            image, mask = batch["image"], batch["mask"]
            comp = torch.where(mask > 0.5, image, net(image, mask)).clamp(0, 1).double()
            mse = (comp - image.double()).square().mean(dim=(1, 2, 3))
            psnrs += (10 * torch.log10(1 / mse)).tolist()
    assert len(psnrs) == 12  # 2 photos x the quick start's 6 masks
    assert float(metrics["test/psnr"]) == pytest.approx(np.mean(psnrs), abs=1e-3)


@pytest.mark.slow
def test_predict_writes_one_composite_per_image(run, monkeypatch):
    monkeypatch.chdir(run.parent)
    out = run.parent / "predicted"
    cli_main(
        [
            "predict",
            *_common(run),
            f"--data.predict={SAMPLES / 'val'}",
            f"--data.predict_masks={SAMPLES / 'val_masks'}",
            f"--prediction_writer.output_dir={out}",
        ]
    )
    photos = sorted((SAMPLES / "val").glob("*.jpg"))
    assert sorted(p.name for p in out.iterdir()) == [f"{p.stem}.png" for p in photos]
    for photo in photos:
        image = np.asarray(Image.open(photo).convert("RGB"))
        hole = np.asarray(Image.open(SAMPLES / "val_masks" / f"{photo.stem}.png")) > 127
        result = np.asarray(Image.open(out / f"{photo.stem}.png"))
        assert result.shape == image.shape  # full size, not a crop
        assert np.array_equal(result[~hole], image[~hole])  # valid pixels: the input's
        assert (result[hole] != image[hole]).any()


@pytest.mark.parametrize("command", ["validate", "test", "predict"])
def test_scoring_without_a_checkpoint_fails_with_a_message(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        cli_main([command, QUICKSTART, *tiny_args(tmp_path / "run")])
    assert exit_info.value.code != 0
    assert f"pconv {command} needs --ckpt_path" in err.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "unset", "message"),
    [
        ("test", "--data.test=null", "--data.test"),
        ("predict", "--data.predict_masks=null", "--data.predict_masks"),
    ],
)
def test_scoring_without_data_fails_naming_the_option(command, unset, message, run, monkeypatch):
    monkeypatch.chdir(run.parent)
    with pytest.raises(ValueError, match=message):
        cli_main([command, *_common(run), unset])
