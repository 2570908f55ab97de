"""The study's photos: a fixed, committed list of held-out evaluation photos, and training
folders without them or any copy of them.

Photo pools overlap (most photos of ``imagenet1k_sample_256`` also stand in ``train_pool_256``
under another name), so a held-out photo leaves training together with its copies. Copies are
found from pixels (:mod:`pconv_lightning.data.copies`: the 32x32 grayscale thumbnails of the
centre squares differ by less than ``COPY_THRESHOLD``), which matches re-encoded, re-resized and
centre-cropped versions of one photo and no two different photos of these pools.

The list (``held_out.csv``: ``photo,copies``, paths relative to the data folder) is made once by
:func:`choose_held_out` and committed; :func:`link_split` turns it into two folders of symbolic
links, ``train/`` and ``eval/``, that ``pconv fit`` and ``pconv evaluate`` read as image folders.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from pathlib import Path

from pconv_lightning.data.copies import find_copies
from pconv_lightning.data.filelist import IMAGE_EXTENSIONS
from pconv_lightning.errors import InputError, MissingInputError

HeldOut = list[tuple[Path, list[Path]]]  # (photo, its copies), relative to the data folder


def list_photos(root: Path) -> list[Path]:
    """Image files directly in ``root``, sorted."""
    if not root.is_dir():
        raise MissingInputError(f"photo folder {root} does not exist")
    return sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def proportional(sizes: dict[str, int], total: int) -> dict[str, int]:
    """``total`` split across groups in proportion to ``sizes`` (largest remainders)."""
    whole = sum(sizes.values())
    exact = {k: total * n / whole for k, n in sizes.items()}
    share = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (share[k] - exact[k], k))
    for k in by_remainder[: total - sum(share.values())]:
        share[k] += 1
    return share


def choose_held_out(roots: Sequence[Path], count: int, seed: int, data: Path) -> HeldOut:
    """``count`` photos of ``roots[0]`` drawn with ``seed`` in proportion to its sources (the
    file name before its last ``_``), each with its copies anywhere in ``roots``."""
    pool = list_photos(roots[0])
    if count > len(pool):
        raise InputError(f"cannot hold out {count} photos: {roots[0]} has {len(pool)}")
    by_source: dict[str, list[Path]] = {}
    for path in pool:
        by_source.setdefault(path.stem.rsplit("_", 1)[0], []).append(path)
    rng = random.Random(seed)
    share = proportional({k: len(v) for k, v in by_source.items()}, count)
    picked = sorted(p for k in sorted(by_source) for p in rng.sample(by_source[k], share[k]))
    chosen = set(picked)
    others = [p for root in roots for p in list_photos(root) if p not in chosen]
    copies = find_copies(picked, others)
    return [
        (p.relative_to(data), [c.relative_to(data) for c in cs])
        for p, cs in zip(picked, copies, strict=True)
    ]


def write_held_out(held_out: HeldOut, path: Path) -> None:
    """``held_out.csv``: one row per photo, its copies joined by ``;``."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["photo", "copies"])
        for photo, copies in held_out:
            writer.writerow([photo.as_posix(), ";".join(c.as_posix() for c in copies)])


def read_held_out(path: Path) -> HeldOut:
    """The rows of a ``held_out.csv``."""
    if not path.is_file():
        raise MissingInputError(f"held-out photo list {path} does not exist")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(rows[0]) != {"photo", "copies"}:
        raise InputError(f"{path}: expected the columns photo,copies and at least one row")
    return [(Path(r["photo"]), [Path(c) for c in r["copies"].split(";") if c]) for r in rows]


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    link.unlink(missing_ok=True)
    link.symlink_to(target.resolve())


def link_split(
    held_out_csv: Path, data: Path, roots: Sequence[str], out: Path
) -> tuple[Path, Path]:
    """``out/train/<root>/<file>``: every photo of ``data/<root>`` except the held-out ones and
    their copies; ``out/eval/<file>``: the held-out photos. Returns both folders; links that are
    not (or no longer) part of the split are removed, so the folders follow the list."""
    held_out = read_held_out(held_out_csv)
    excluded = {p for photo, copies in held_out for p in (photo, *copies)}
    missing = [p for p, _ in held_out if not (data / p).is_file()]
    if missing:
        raise MissingInputError(
            f"{held_out_csv} names {len(missing)} photo(s) missing under {data}, e.g. {missing[0]}"
        )
    wanted: dict[Path, Path] = {}
    for root in roots:
        for path in list_photos(data / root):
            if path.relative_to(data) not in excluded:
                wanted[out / "train" / root / path.name] = path
    for photo, _ in held_out:
        wanted[out / "eval" / photo.name] = data / photo
    if len({link.name for link in wanted if link.parent == out / "eval"}) != len(held_out):
        raise InputError(f"{held_out_csv}: two held-out photos share a file name")
    for folder in (out / "train", out / "eval"):
        for link in folder.rglob("*") if folder.is_dir() else []:
            if link.is_symlink() and link not in wanted:
                link.unlink()
    for link, target in wanted.items():
        _link(target, link)
    return out / "train", out / "eval"
