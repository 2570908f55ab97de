"""One mask rule for every entry point: a mask must have a hole and a valid pixel, and holes
drawn only in a mask's alpha channel are refused, in ``pconv inpaint`` and ``pconv app``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_lightning.app.inputs import InpaintError, editor_inputs
from pconv_lightning.checkpoints.network import save_network
from pconv_lightning.cli import cli_main
from pconv_lightning.masks.io import MaskError, check_mask, load_mask
from pconv_lightning.models import PConvUNet

H, W = 40, 48


def alpha_only_mask(path):
    """Black everywhere (no hole by grey value), the hole drawn only as transparency."""
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[10:20, 10:30, 3] = 0
    Image.fromarray(rgba, "RGBA").save(path)


def all_hole_mask(path):
    Image.fromarray(np.full((H, W), 255, np.uint8)).save(path)


@pytest.fixture
def files(tmp_path):
    photo = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    alpha_only_mask(tmp_path / "alpha.png")
    all_hole_mask(tmp_path / "all.png")
    torch.manual_seed(0)
    save_network(PConvUNet(layers=3), tmp_path / "net.safetensors")
    return tmp_path


def test_check_mask():
    check_mask(np.array([[0, 1]]), "m")
    with pytest.raises(MaskError, match="nothing to fill: m has no hole"):
        check_mask(np.ones((2, 2)), "m")
    with pytest.raises(MaskError, match="m is all hole: no valid pixel"):
        check_mask(np.zeros((2, 2)), "m")


def test_alpha_only_holes_are_refused_but_opaque_rgba_masks_load(tmp_path):
    alpha_only_mask(tmp_path / "alpha.png")
    with pytest.raises(MaskError, match=r"alpha.png marks its holes only by transparency"):
        load_mask(tmp_path / "alpha.png")
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[5:9, 5:9, :3] = 255  # white hole, opaque
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    assert (load_mask(tmp_path / "opaque.png") == 0).sum() == 16


@pytest.mark.parametrize(
    ("mask", "message"),
    [("all.png", "all.png is all hole"), ("alpha.png", "marks its holes only by transparency")],
)
def test_inpaint_refuses_useless_masks(files, capsys, mask, message):
    code = cli_main(
        [
            "inpaint",
            f"--checkpoint={files / 'net.safetensors'}",
            f"--image={files / 'photo.png'}",
            f"--mask={files / mask}",
            f"--output={files / 'out'}",
        ]
    )
    assert code != 0 and message in capsys.readouterr().err
    assert not (files / "out" / "photo.png").exists()


@pytest.mark.parametrize(
    ("mask", "message"),
    [("all.png", "is all hole"), ("alpha.png", "marks its holes only by transparency")],
)
def test_app_refuses_the_same_masks(files, mask, message):
    editor = {"background": np.asarray(Image.open(files / "photo.png")), "layers": []}
    with pytest.raises((InpaintError, MaskError), match=message):
        editor_inputs(editor, str(files / mask), 255, 10**8)


def test_app_refuses_a_photo_painted_all_over(files):
    layer = np.zeros((H, W, 4), np.uint8)
    layer[..., 3] = 255
    editor = {"background": np.asarray(Image.open(files / "photo.png")), "layers": [layer]}
    with pytest.raises(InpaintError, match="all hole"):
        editor_inputs(editor, None, 255, 10**8)
