"""Matching mask files to image files by file stem (``photo.jpg`` takes ``masks/photo.png``)."""

from __future__ import annotations

from pathlib import Path

from pconv_lightning.data.filelist import IMAGE_EXTENSIONS
from pconv_lightning.errors import InputError

SUFFIXES = IMAGE_EXTENSIONS | {".bmp", ".tif", ".tiff"}


def image_files(path: Path, what: str) -> list[Path]:
    """``path`` itself if it is a file, else the image files directly in the folder, sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"{what} {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{what} folder {path} holds no {'/'.join(sorted(SUFFIXES))} files")
    return files


def match_masks(
    images: list[Path], mask: Path, what: str = "--mask"
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """``(pairs, missing)``: (image, mask) pairs, with one mask file for every image or masks
    matched by file stem in a folder, and the images that have no mask there."""
    if mask.is_file():
        return [(i, mask) for i in images], []
    by_stem: dict[str, Path] = {}
    for m in image_files(mask, what):
        if m.stem in by_stem:
            raise InputError(f"masks {by_stem[m.stem]} and {m} share the stem {m.stem!r}")
        by_stem[m.stem] = m
    pairs = [(i, by_stem[i.stem]) for i in images if i.stem in by_stem]
    return pairs, [i for i in images if i.stem not in by_stem]


def missing_message(missing: list[Path], mask: Path) -> str:
    """One line naming the images without a mask and the file name expected."""
    names = ", ".join(str(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
    return (
        f"no mask in {mask} for {len(missing)} image(s): {names} "
        f"(expected e.g. {mask / (missing[0].stem + '.png')})"
    )
