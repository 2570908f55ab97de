"""`pconv inpaint` on folders: no silent overwrite of the inputs, missing masks reported
without stopping the folder, masks of another size resized on request, large images repaired
under a pixel cap on request."""

from __future__ import annotations

import io
import logging
import shutil

import numpy as np
import pytest
from PIL import Image
from test_inference import _inpaint, _load, workspace  # noqa: F401  (workspace: a fixture)

from pconv_lightning.cli import cli_main
from pconv_lightning.inference import Inpainter, downscaled_inpaint, load_engine


def test_output_equal_to_the_input_folder_is_refused_without_overwrite(workspace, capsys):  # noqa: F811
    originals = {p.name: p.read_bytes() for p in (workspace / "photos").iterdir()}
    args = [
        f"--checkpoint={workspace / 'net.safetensors'}",
        f"--image={workspace / 'photos'}",
        f"--mask={workspace / 'masks'}",
        f"--output={workspace / 'photos'}",
    ]
    assert cli_main(["inpaint", *args]) == 2
    err = capsys.readouterr().err
    assert "is the input folder" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in (workspace / "photos").iterdir()} == originals
    assert cli_main(["inpaint", *args, "--overwrite"]) == 0
    hole = _load(workspace / "masks" / "a.png") == 255
    assert (workspace / "photos" / "a.png").read_bytes() != originals["a.png"]
    before = np.asarray(Image.open(io.BytesIO(originals["a.png"])))
    assert np.array_equal(_load(workspace / "photos" / "a.png")[~hole], before[~hole])


def test_missing_masks_do_not_stop_the_folder(workspace, capsys):  # noqa: F811
    for name in ("c", "d"):  # two more photos, no masks for them
        shutil.copy(workspace / "photos" / "a.png", workspace / "photos" / f"{name}.png")
    assert _inpaint(workspace) == 1
    err = capsys.readouterr().err
    assert "no mask in" in err and "c.png" in err and "d.png" in err
    assert "2 of 4 image(s) failed (2 without a mask, 0 with an error)" in err
    assert sorted(p.name for p in (workspace / "out").iterdir()) == ["a.png", "b.png"]


def test_resize_mask_uses_nearest_neighbour_and_says_so(workspace, capsys, caplog):  # noqa: F811
    small = np.zeros((20, 25), np.uint8)  # half of a.png's 50x40 (width x height)
    small[5:10, 3:12] = 255
    (workspace / "small").mkdir()
    Image.fromarray(small).save(workspace / "small" / "a.png")
    assert _inpaint(workspace, image="photos/a.png", mask="small") == 1
    assert "--resize-mask" in capsys.readouterr().err
    with caplog.at_level(logging.WARNING):
        assert _inpaint(workspace, "--resize-mask", image="photos/a.png", mask="small") == 0
    assert "resizing mask" in caplog.text and "nearest neighbour" in caplog.text
    hole = np.repeat(np.repeat(small == 255, 2, axis=0), 2, axis=1)  # nearest x2 by hand
    image, out = _load(workspace / "photos" / "a.png"), _load(workspace / "out" / "a.png")
    assert np.array_equal(out[~hole], image[~hole])
    assert (out[hole] != image[hole]).any()


def test_work_pixels_repairs_images_above_it_downscaled_and_says_so(workspace, caplog):  # noqa: F811
    """a.png (50x40 = 2,000 px) is above the cap of 1,200, b.png (33x70 = 2,310) too; the
    holes hold the library's downscaled repair (checked against PIL in test_app_limits.py),
    every valid pixel is the input's."""
    with caplog.at_level(logging.WARNING):
        assert _inpaint(workspace, "--work-pixels=1200") == 0
    assert "a.png: 50x40 is above --work-pixels 1200: holes repaired at 38x30" in caplog.text
    inpainter = Inpainter(load_engine(workspace / "net.safetensors"))
    for name in ("a", "b"):
        image, out = (
            _load(workspace / "photos" / f"{name}.png"),
            _load(workspace / "out" / f"{name}.png"),
        )
        valid = (_load(workspace / "masks" / f"{name}.png") != 255).astype(np.uint8)
        assert np.array_equal(out[valid == 1], image[valid == 1])
        assert np.array_equal(out, downscaled_inpaint(inpainter, image, valid, 1200))
        assert not np.array_equal(out, inpainter(image, valid))  # not the full-size repair
    full = {p.name: p.read_bytes() for p in (workspace / "out").iterdir()}
    assert _inpaint(workspace, "--work-pixels=2310") == 0  # b.png at the cap: full size
    assert (workspace / "out" / "b.png").read_bytes() != full["b.png"]
    b = _load(workspace / "out" / "b.png")
    valid = (_load(workspace / "masks" / "b.png") != 255).astype(np.uint8)
    assert np.array_equal(b, inpainter(_load(workspace / "photos" / "b.png"), valid))


def test_work_pixels_must_be_positive(workspace, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as exit_info:
        _inpaint(workspace, "--work-pixels=0")
    assert exit_info.value.code == 2
    assert "--work-pixels must be positive, got 0" in capsys.readouterr().err
