"""`pconv inpaint` loses nothing: no input overwritten (photo, mask, checkpoint) whatever the
path spelling, ``..``, symlink or hard link; results that would share a file refused before
anything is written, naming both inputs; ``--output`` naming a file is one line, exit 2; grey
photos come back grey and transparent ones keep their alpha."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_lightning.checkpoints.network import save_network
from pconv_lightning.cli import cli_main
from pconv_lightning.inference.command import concat_strip
from pconv_lightning.models import PConvUNet


@pytest.fixture
def ws(tmp_path):
    """photos/a.png, photos/b.jpg, masks/a.png, masks/b.png (white = hole), net.safetensors."""
    for name in ("photos", "masks"):
        (tmp_path / name).mkdir()
    rng = np.random.default_rng(5)
    for stem, suffix in (("a", ".png"), ("b", ".jpg")):
        pixels = rng.integers(30, 220, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "photos" / f"{stem}{suffix}")
        hole = np.zeros((40, 48), np.uint8)
        hole[10:22, 8:30] = 255
        Image.fromarray(hole).save(tmp_path / "masks" / f"{stem}.png")
    torch.manual_seed(0)
    save_network(PConvUNet(layers=3), tmp_path / "net.safetensors")
    return tmp_path


def inpaint(ws, *extra: str, image="photos", mask="masks", output="out", ckpt="net.safetensors"):
    return cli_main(
        [
            "inpaint",
            f"--checkpoint={ws / ckpt}",
            f"--image={ws / image}",
            f"--mask={ws / mask}",
            f"--output={ws / output}",
            *extra,
        ]
    )


def snapshot(*folders) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes()
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("pconv inpaint: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "spelling",
    ["masks", "photos/../masks", "masks/", "link_to_masks"],
)
def test_output_naming_the_mask_folder_is_refused(ws, capsys, spelling):
    (ws / "link_to_masks").symlink_to(ws / "masks")
    before = snapshot(ws / "masks", ws / "photos")
    assert inpaint(ws, output=spelling) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--mask folder" in line or "would overwrite the mask" in line
    assert snapshot(ws / "masks", ws / "photos") == before


def test_a_result_that_would_replace_a_mask_file_is_refused(ws, capsys):
    """The mask folder reached through a file-level path: one mask file for every image,
    --output its folder spelt with '..', and a mask symlinked into another folder."""
    before = snapshot(ws / "masks")
    assert inpaint(ws, image="photos/a.png", mask="masks/a.png", output="photos/../masks") == 2
    assert "masks" in one_error_line(capsys.readouterr().err)
    (ws / "elsewhere").mkdir()
    (ws / "elsewhere" / "a.png").symlink_to(ws / "masks" / "a.png")  # out/a.png IS the mask
    assert inpaint(ws, image="photos/a.png", mask="masks/a.png", output="elsewhere") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"would overwrite the mask {ws / 'masks' / 'a.png'}" in line
    os.link(ws / "masks" / "b.png", ws / "hard.png")  # a hard link: the same file
    (ws / "hard").mkdir()
    os.link(ws / "masks" / "b.png", ws / "hard" / "b.png")
    assert inpaint(ws, image="photos/b.jpg", mask="hard.png", output="hard") == 2
    assert "would overwrite the mask" in one_error_line(capsys.readouterr().err)
    assert snapshot(ws / "masks") == before


def test_a_result_that_would_replace_the_checkpoint_is_refused(ws, capsys):
    (ws / "models").mkdir()
    (ws / "models" / "a.png").write_bytes((ws / "net.safetensors").read_bytes())
    weights = (ws / "models" / "a.png").read_bytes()
    code = inpaint(
        ws, image="photos/a.png", mask="masks/a.png", output="models", ckpt="models/a.png"
    )
    assert code == 2
    assert "would overwrite the checkpoint" in one_error_line(capsys.readouterr().err)
    assert (ws / "models" / "a.png").read_bytes() == weights


def test_photo_folder_still_needs_overwrite_and_then_only_its_own_photo(ws, capsys):
    before = snapshot(ws / "photos")
    assert inpaint(ws, output="photos/./") == 2
    assert "--overwrite" in one_error_line(capsys.readouterr().err)
    assert snapshot(ws / "photos") == before
    assert inpaint(ws, "--overwrite", output="photos") == 0  # a.png replaced by its result
    assert (ws / "photos" / "b.jpg").read_bytes() == before[str(ws / "photos" / "b.jpg")]


def test_results_that_share_a_name_are_refused_before_anything_is_written(ws, capsys):
    Image.open(ws / "photos" / "a.png").save(ws / "photos" / "a.jpg")  # a.jpg and a.png
    assert inpaint(ws) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(ws / "photos" / "a.jpg") in line and str(ws / "photos" / "a.png") in line
    assert str(ws / "out" / "a.png") in line
    assert not (ws / "out").exists()


def test_concat_strip_and_a_photo_named_like_it_are_refused(ws, capsys):
    """a.png's strip is a_concat.png, and so is a_concat.jpg's result."""
    Image.open(ws / "photos" / "a.png").save(ws / "photos" / "a_concat.jpg")
    Image.open(ws / "masks" / "a.png").save(ws / "masks" / "a_concat.png")
    assert inpaint(ws, "--concat") == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(ws / "photos" / "a.png") in line and str(ws / "photos" / "a_concat.jpg") in line
    assert not (ws / "out").exists()
    assert inpaint(ws) == 0  # without --concat every input has its own result
    assert sorted(p.name for p in (ws / "out").iterdir()) == ["a.png", "a_concat.png", "b.png"]


def test_every_input_gets_its_own_result(ws, capsys):
    assert inpaint(ws, "--concat") == 0
    assert "wrote 2 result(s)" in capsys.readouterr().out
    names = sorted(p.name for p in (ws / "out").iterdir())
    assert names == ["a.png", "a_concat.png", "b.png", "b_concat.png"]


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_output_naming_a_file_is_one_line(ws, capsys, where):
    (ws / "taken.png").write_bytes(b"mine")
    output = "taken.png" if where == "file" else "taken.png/results"
    assert inpaint(ws, output=output) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "taken.png" in line
    assert (ws / "taken.png").read_bytes() == b"mine"


def test_a_grey_photo_gets_a_grey_result(ws):
    rng = np.random.default_rng(1)
    grey = rng.integers(40, 200, (40, 48), dtype=np.uint8)
    (ws / "grey").mkdir()
    Image.fromarray(grey, "L").save(ws / "grey" / "a.png")
    assert inpaint(ws, "--concat", image="grey/a.png", mask="masks/a.png") == 0
    out = Image.open(ws / "out" / "a.png")
    assert out.mode == "L"
    pixels = np.asarray(out)
    hole = np.asarray(Image.open(ws / "masks" / "a.png")) == 255
    assert np.array_equal(pixels[~hole], grey[~hole]) and (pixels[hole] != grey[hole]).any()
    assert Image.open(ws / "out" / "a_concat.png").mode == "L"


def test_a_transparent_photo_keeps_its_alpha_and_the_fill_is_opaque(ws):
    rng = np.random.default_rng(2)
    rgba = rng.integers(40, 200, (40, 48, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:, :12, 3] = 0  # a transparent strip on the left
    rgba[30:, :, 3] = 128  # half transparent at the bottom
    (ws / "rgba").mkdir()
    Image.fromarray(rgba, "RGBA").save(ws / "rgba" / "a.png")
    assert inpaint(ws, image="rgba/a.png", mask="masks/a.png") == 0
    out = Image.open(ws / "out" / "a.png")
    assert out.mode == "RGBA"
    pixels = np.asarray(out)
    hole = np.asarray(Image.open(ws / "masks" / "a.png")) == 255
    assert np.array_equal(pixels[~hole], rgba[~hole])  # colour and alpha, bit for bit
    assert (pixels[hole, 3] == 255).all()  # the fill is opaque
    assert (pixels[hole, :3] != rgba[hole, :3]).any()


def test_a_grey_photo_with_alpha_stays_grey_with_alpha(ws):
    la = np.zeros((40, 48, 2), np.uint8)
    la[..., 0] = 120
    la[..., 1] = 200
    (ws / "la").mkdir()
    Image.fromarray(la, "LA").save(ws / "la" / "a.png")
    assert inpaint(ws, image="la/a.png", mask="masks/a.png") == 0
    out = Image.open(ws / "out" / "a.png")
    assert out.mode == "LA"
    hole = np.asarray(Image.open(ws / "masks" / "a.png")) == 255
    assert (np.asarray(out)[hole, 1] == 255).all()
    assert np.array_equal(np.asarray(out)[~hole], la[~hole])


def test_concat_strip_in_every_mode():
    mask = np.ones((2, 3), np.uint8)
    mask[0, 1] = 0
    for shape in [(2, 3), (2, 3, 2), (2, 3, 3), (2, 3, 4)]:
        image = np.full(shape, 7, np.uint8)
        strip = concat_strip(image, mask, image)
        assert strip.shape == (2, 9, *shape[2:])
        panel = strip[:, 3:6]
        colour = panel if panel.ndim == 2 else panel[..., : 1 if shape[-1] in (2,) else 3]
        assert (colour[0, 1] == 255).all() and (colour[1] == 0).all()
        if len(shape) == 3 and shape[2] in (2, 4):
            assert (panel[..., -1] == 255).all()  # the mask panel is opaque
