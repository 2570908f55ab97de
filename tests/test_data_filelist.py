"""The recursive image scan, its cache, and the errors for missing or empty sources."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from pconv_lightning.data.filelist import cache_path, load_file_list


def _tree(root: Path) -> None:
    for rel in ["n01/a.JPEG", "n01/b.png", "n02/c.WebP", "n02/deep/d.jpg", "e.jpeg"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(root / rel, format="PNG")
    (root / "n01" / "notes.txt").write_text("not an image")


def test_scan_is_recursive_and_case_insensitive(tmp_path: Path) -> None:
    _tree(tmp_path / "data")
    files = load_file_list(tmp_path / "data", cache_dir=tmp_path / "cache")
    names = [Path(files[i]).relative_to(tmp_path / "data").as_posix() for i in range(len(files))]
    assert names == ["e.jpeg", "n01/a.JPEG", "n01/b.png", "n02/c.WebP", "n02/deep/d.jpg"]
    two = files.limit(2)  # evenly spread: first and last
    assert [Path(two[i]).name for i in range(len(two))] == ["e.jpeg", "d.jpg"]


def test_second_load_reads_the_cache_without_walking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path / "data")
    first = load_file_list(tmp_path / "data", cache_dir=tmp_path / "cache")
    assert cache_path(tmp_path / "data", tmp_path / "cache").is_file()

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the tree was walked again")

    monkeypatch.setattr(os, "walk", forbidden)
    monkeypatch.setattr(os, "scandir", forbidden)
    again = load_file_list(tmp_path / "data", cache_dir=tmp_path / "cache")
    assert [again[i] for i in range(len(again))] == [first[i] for i in range(len(first))]


def test_cache_is_refreshed_when_a_class_folder_changes(tmp_path: Path) -> None:
    _tree(tmp_path / "data")
    load_file_list(tmp_path / "data", cache_dir=tmp_path / "cache")
    time.sleep(0.01)
    Image.new("RGB", (8, 8)).save(tmp_path / "data" / "n01" / "new.jpg")
    files = load_file_list(tmp_path / "data", cache_dir=tmp_path / "cache")
    assert len(files) == 6


def test_missing_and_empty_folders_fail_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_file_list(tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="empty"):
        load_file_list(tmp_path / "empty", cache_dir=tmp_path / "cache")
