"""Evaluation mask sets, manifests, folder indexing and the ``pconv masks`` commands."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from conftest import SHARED_DATA

from pconv_lightning.masks import (
    BoxMaskGenerator,
    EvalMask,
    index_mask_folder,
    make_evaluation_set,
    read_manifest,
)
from pconv_lightning.masks.buckets import BUCKET_NAMES, hole_ratio, ratio_bucket, touches_border
from pconv_lightning.masks.commands import main
from pconv_lightning.masks.evaluation import fit_to_cell
from pconv_lightning.masks.io import load_mask, save_mask

NVIDIA = SHARED_DATA / "nvidia_irregular_masks_test"
CELLS = {(bucket, border) for bucket in range(6) for border in (False, True)}


def check_rows_against_pixels(rows: list[EvalMask]) -> None:
    for row in rows:
        mask = load_mask(row.path)
        assert row.hole_ratio == hole_ratio(mask)
        assert row.bucket == ratio_bucket(row.hole_ratio)
        assert row.touches_border == touches_border(mask)


def test_evaluation_set_covers_every_cell(tmp_path) -> None:
    manifest = make_evaluation_set(tmp_path / "eval", per_cell=3, size=(96, 80), seed=1)
    with manifest.open() as handle:
        assert next(csv.reader(handle)) == ["file", "hole_ratio", "bucket", "touches_border"]
    rows = read_manifest(tmp_path / "eval")
    assert len(rows) == 36
    cells = [(r.bucket, r.touches_border) for r in rows]
    assert {c: cells.count(c) for c in set(cells)} == dict.fromkeys(CELLS, 3)
    check_rows_against_pixels(rows)
    assert all(load_mask(r.path).shape == (96, 80) for r in rows)


@pytest.mark.parametrize("border", [True, False])
def test_fit_to_cell_reaches_every_cell_from_one_small_central_blob(border: bool) -> None:
    blob = np.zeros((64, 64), bool)
    blob[28:32, 30:34] = True  # 16 / 4096 px: must grow, and be shifted for border cells
    for bucket in range(6):
        mask = fit_to_cell(blob.copy(), bucket, border, np.random.default_rng(bucket))
        assert ratio_bucket(hole_ratio(mask)) == bucket and touches_border(mask) == border


def test_evaluation_set_is_deterministic_and_seeded(tmp_path) -> None:
    kwargs = {"per_cell": 1, "size": 64, "generator": BoxMaskGenerator()}
    a = read_manifest(make_evaluation_set(tmp_path / "a", seed=3, **kwargs))
    b = read_manifest(make_evaluation_set(tmp_path / "b", seed=3, **kwargs))
    c = read_manifest(make_evaluation_set(tmp_path / "c", seed=4, **kwargs))
    same = [np.array_equal(load_mask(x.path), load_mask(y.path)) for x, y in zip(a, b, strict=True)]
    assert all(same)
    assert not all(
        np.array_equal(load_mask(x.path), load_mask(y.path)) for x, y in zip(a, c, strict=True)
    )
    check_rows_against_pixels(a)


def write_known_masks(root) -> dict[str, tuple[float, int, bool]]:
    """Masks with hand-computed (ratio, bucket, border); one empty mask that must be skipped."""
    (root / "sub").mkdir(parents=True)
    expected = {}
    for name, (y0, y1, x0, x1) in {
        "inner_small.png": (5, 7, 5, 15),  # 20 / 400 = 0.05
        "edge_mid.png": (0, 10, 0, 10),  # 100 / 400 = 0.25, touches
        "sub/inner_big.png": (1, 19, 1, 13),  # 216 / 400 = 0.54
    }.items():
        mask = np.ones((20, 20), np.uint8)
        mask[y0:y1, x0:x1] = 0
        save_mask(root / name, mask)
        ratio = (y1 - y0) * (x1 - x0) / 400
        expected[name] = (ratio, ratio_bucket(ratio), y0 == 0 or x0 == 0)
    save_mask(root / "empty.png", np.ones((20, 20), np.uint8))
    return expected


def test_index_mask_folder_from_pixels(tmp_path) -> None:
    expected = write_known_masks(tmp_path / "masks")
    with pytest.warns(UserWarning, match="1 mask"):
        manifest = index_mask_folder(tmp_path / "masks")
    rows = {r.path.relative_to(tmp_path / "masks").as_posix(): r for r in read_manifest(manifest)}
    assert {k: (r.hole_ratio, r.bucket, r.touches_border) for k, r in rows.items()} == expected
    elsewhere = tmp_path / "out" / "index.csv"
    with pytest.warns(UserWarning):
        index_mask_folder(tmp_path / "masks", output=elsewhere)
    assert sorted(r.path.name for r in read_manifest(elsewhere)) == sorted(
        k.split("/")[-1] for k in expected
    )
    check_rows_against_pixels(read_manifest(elsewhere))


def test_read_manifest_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"manifest\.csv"):
        read_manifest(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("file,hole_ratio\na.png,0.2\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*bucket, touches_border"):
        read_manifest(bad)
    bad.write_text("file,hole_ratio,bucket,touches_border\na.png,0.2,9,0\n")
    with pytest.raises(ValueError, match=r"bad\.csv, line 2"):
        read_manifest(bad)


@pytest.mark.filterwarnings("ignore:.*hole ratio outside")
def test_commands_end_to_end(tmp_path, capsys) -> None:
    assert main(["make", str(tmp_path / "eval"), "--per-cell", "1", "--size", "64"]) == 0
    assert len(read_manifest(tmp_path / "eval")) == 12
    boxes = ["--generator", "pconv_lightning.masks.BoxMaskGenerator", "--init", "margin: 2"]
    assert main(["make", str(tmp_path / "boxes"), "--per-cell", "1", "--size", "64", *boxes]) == 0
    check_rows_against_pixels(read_manifest(tmp_path / "boxes"))
    thick = tmp_path / "thick"
    argv = ["make", str(thick), "--count", "6", "--size", "48", "64"]
    argv += ["--generator", "pconv_lightning.masks.StrokeMaskGenerator"]
    assert main([*argv, "--init", '{"preset": "thick"}']) == 0
    assert len(list(thick.glob("*.png"))) == 6 and (thick / "manifest.csv").is_file()
    assert load_mask(next(thick.glob("*.png"))).shape == (48, 64)
    assert main(["index", str(thick), "--output", str(tmp_path / "t.csv")]) == 0
    plot = tmp_path / "ratios.png"
    argv = ["stats", str(tmp_path / "eval"), "--compare", str(thick), "--plot", str(plot)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in BUCKET_NAMES) and plot.stat().st_size > 0
    mixture = "{generators: [{class_path: pconv_lightning.masks.BoxMaskGenerator}], weights: [1]}"
    argv = ["stats", "pconv_lightning.masks.MixtureMaskGenerator", "--init", mixture]
    assert main([*argv, "--count", "10", "--size", "64"]) == 0
    assert "BoxMaskGenerator" in capsys.readouterr().out
    assert main(["stats", "no.such.Generator"]) == 1
    assert "no.such.Generator" in capsys.readouterr().err


@pytest.mark.prerequisite(NVIDIA.is_dir(), reason="shared NVIDIA masks not available")
def test_index_nvidia_subset(tmp_path) -> None:
    for file in sorted(NVIDIA.glob("*.png"))[::200]:
        shutil.copy(file, tmp_path / file.name)
    rows = read_manifest(index_mask_folder(tmp_path))
    assert len(rows) == 10 and all(0 <= r.bucket < 6 for r in rows)
    check_rows_against_pixels(rows)
