"""A photo pack: every distinct image of one or more folders centre-cropped to ``size x size``
and re-encoded into one file, small enough to travel with the code and decoded once into a
uint8 tensor.

Each photo goes in once: an image that is a copy of a photo of an earlier source folder
(found from pixels, :mod:`pconv_lightning.data.copies`) is left out, so a photo that stands in
two folders, re-encoded or resized, is not drawn twice. A folder's own images all go in.

The file is a ``torch.save`` dict of plain data (``torch.load(weights_only=True)`` reads it):
``format``, ``quality``, ``size``, ``names`` (paths relative to the source folder; with several
sources prefixed by the folder's name), ``offsets`` int64 ``(N + 1,)``, ``data`` uint8
``(bytes,)``: image i is ``data[offsets[i]:offsets[i + 1]]``, and ``copies`` (the name of each
image left out -> the name of the photo kept for it).

    python -m pconv_lightning.data.pack SRC [SRC ...] OUT.pack [--size 256] [--format webp] \
        [--quality 82]

Shape:
    - :func:`load_pack`: uint8 ``(N, 3, size, size)``.
"""

from __future__ import annotations

import argparse
import io
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pconv_lightning.data.copies import COPY_THRESHOLD, first_of_copies, thumbnail
from pconv_lightning.data.filelist import scan_images
from pconv_lightning.data.images import load_rgb

#: --format name -> PIL format; ``png`` is lossless (tests compare pixels exactly).
PACK_FORMATS = {"webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}


def square_crop(image: Image.Image, size: int) -> Image.Image:
    """The centre square of the shorter side, resized to ``size`` (Lanczos) when it differs."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return square if side == size else square.resize((size, size), Image.Resampling.LANCZOS)


def _encode(path: Path, size: int, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    square_crop(load_rgb(path), size).save(buffer, PACK_FORMATS[fmt], quality=quality, method=6)
    return buffer.getvalue()


def source_label(folder: str | Path) -> str:
    """The name of ``folder`` (as given, links not followed): the prefix of its photos' names
    in a pack of several folders."""
    return Path(os.path.abspath(folder)).name


def _sources(sources: Sequence[str | Path]) -> list[tuple[str, Path, list[str]]]:
    """``(label, folder, image names)`` of each source; labels prefix the names when several."""
    roots = [Path(s) for s in sources]
    if not roots:
        raise FileNotFoundError("pack sources: expected at least one image folder")
    labels = [source_label(r) for r in roots]
    if len(set(labels)) < len(labels):
        raise ValueError(f"pack sources must have distinct folder names, got {labels}")
    found = []
    for label, root in zip(labels, roots, strict=True):
        if not root.is_dir():
            raise FileNotFoundError(f"pack source {root} is not a directory")
        names = scan_images(root)
        if not names:
            raise FileNotFoundError(f"pack source {root} holds no images")
        found.append((label, root, names))
    return found


def _thumbnail(path: Path) -> np.ndarray:
    return thumbnail(load_rgb(path))


def build_pack(
    source: str | Path | Sequence[str | Path],
    out: str | Path,
    size: int = 256,
    fmt: str = "webp",
    quality: int = 82,
) -> dict[str, Any]:
    """Pack the images under ``source`` (one folder or several, in order) into ``out``, less
    those that are copies of a photo of an earlier folder.

    Returns ``images``, ``megabytes``, ``dropped`` (copies left out), ``sources`` (per folder
    label: ``photos``, ``kept`` and ``copies_of``, the folders whose photos its copies were kept
    from, with counts), ``copy_max`` (the largest distance of a copy to its photo) and
    ``distinct_min`` (the smallest distance of a kept photo to one of an earlier folder), both
    in grey levels (:mod:`pconv_lightning.data.copies`).

    Raises:
        ValueError: naming the argument when ``fmt``, ``size`` or ``quality`` is invalid, or
            when two sources have the same folder name.
        FileNotFoundError: when a source is not a folder or holds no image.
        UnreadableImageError: naming the file that cannot be decoded.
    """
    if fmt not in PACK_FORMATS:
        raise ValueError(f"--format must be one of {sorted(PACK_FORMATS)}, got {fmt!r}")
    if size < 1 or not 1 <= quality <= 100:
        raise ValueError(f"--size must be >= 1 and --quality in [1, 100], got {size}, {quality}")
    found = _sources([source] if isinstance(source, str | Path) else source)
    labels = [label for label, _, _ in found]
    prefix = len(found) > 1
    files = [
        (label, f"{label}/{n}" if prefix else n, root / n)
        for label, root, names in found
        for n in names
    ]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        thumbs = np.stack(list(pool.map(_thumbnail, [path for _, _, path in files])))
        original, distance = first_of_copies(thumbs, [labels.index(f[0]) for f in files])
        kept = [i for i in range(len(files)) if original[i] < 0]
        blobs = list(pool.map(lambda i: _encode(files[i][2], size, fmt, quality), kept))
    names = [files[i][1] for i in kept]
    copies = {files[i][1]: files[original[i]][1] for i in np.flatnonzero(original >= 0)}
    offsets = np.cumsum([0, *map(len, blobs)])
    data = torch.frombuffer(bytearray(b"".join(blobs)), dtype=torch.uint8)
    pack = {"format": fmt, "quality": quality, "size": size, "names": names, "copies": copies}
    pack |= {"offsets": torch.from_numpy(offsets).long(), "data": data}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(pack, out)
    return {"images": len(names), "megabytes": Path(out).stat().st_size / 1e6} | _summary(
        found, [label for label, _, _ in files], original, distance
    )


def _summary(
    found: list[tuple[str, Path, list[str]]],
    label_of: list[str],
    original: np.ndarray,
    distance: np.ndarray,
) -> dict[str, Any]:
    """:func:`build_pack`'s counts per source and the copies' distances."""
    dropped, kept = original >= 0, original < 0
    margins = distance[kept & np.isfinite(distance)]
    sources = {}
    for label, _, names in found:
        mine = np.array([own == label for own in label_of])
        copies_of = dict(Counter(label_of[o] for o in original[mine & dropped]))
        kept_here = int((mine & kept).sum())
        sources[label] = {"photos": len(names), "kept": kept_here, "copies_of": copies_of}
    return {
        "dropped": int(dropped.sum()),
        "sources": sources,
        "copy_max": float(distance[dropped].max()) if dropped.any() else None,
        "distinct_min": float(margins.min()) if margins.size else None,
    }


def read_pack(path: str | Path) -> dict:
    """The pack's dict (encoded bytes); FileNotFoundError / ValueError name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"photo pack {path} does not exist (build it with "
            "`python -m pconv_lightning.data.pack SRC OUT`)"
        )
    pack = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(pack, dict) or not {"offsets", "data", "size", "names"} <= pack.keys():
        raise ValueError(f"{path} is not a photo pack (expected offsets, data, size, names)")
    return pack


def load_pack(path: str | Path, workers: int | None = None) -> tuple[list[str], torch.Tensor]:
    """Decode every image of the pack at ``path``: ``(names, uint8 (N, 3, S, S))``."""
    pack = read_pack(path)
    data, offsets, size = pack["data"].numpy(), pack["offsets"].tolist(), pack["size"]
    images = torch.empty(len(pack["names"]), 3, size, size, dtype=torch.uint8)

    def decode(i: int) -> None:
        blob = data[offsets[i] : offsets[i + 1]].tobytes()
        array = np.array(load_rgb(blob, name=f"{path}[{pack['names'][i]}]"))
        images[i] = torch.from_numpy(array).permute(2, 0, 1)

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        list(pool.map(decode, range(len(images))))
    return list(pack["names"]), images


def load_folder(root: str | Path, size: int) -> tuple[list[str], torch.Tensor]:
    """Every image under ``root`` as a pack would hold it, decoded straight away (no file)."""
    root = Path(root)
    names = scan_images(root)
    if not names:
        raise FileNotFoundError(f"image folder {root} holds no images")
    images = torch.empty(len(names), 3, size, size, dtype=torch.uint8)
    for i, name in enumerate(names):
        array = np.array(square_crop(load_rgb(root / name), size))
        images[i] = torch.from_numpy(array).permute(2, 0, 1)
    return names, images


def load_images(source: str | Path, size: int) -> tuple[list[str], torch.Tensor]:
    """A pack file (:func:`load_pack`) or an image folder (:func:`load_folder` at ``size``)."""
    return load_folder(source, size) if Path(source).is_dir() else load_pack(source)


def _report(stats: dict[str, Any], out: str) -> str:
    """What :func:`build_pack` did, a line per source and one for the pack."""
    lines = []
    for label, counts in stats["sources"].items():
        line = f"{label}: {counts['photos']} photos, {counts['kept']} kept"
        if counts["copies_of"]:
            of = ", ".join(f"{n} of {src}" for src, n in counts["copies_of"].items())
            line += f", {counts['photos'] - counts['kept']} dropped as copies of photos kept ({of})"
        lines.append(line)
    if stats["dropped"]:
        lines.append(f"copies differ by at most {stats['copy_max']:.1f} grey levels")
    if stats["distinct_min"] is not None:
        lines.append(
            f"photos of different folders by at least {stats['distinct_min']:.1f}"
            f" (copies: < {COPY_THRESHOLD})"
        )
    lines.append(
        f"packed {stats['images']} images into {out}: {stats['megabytes']:.1f} MB "
        f"({stats['dropped']} copies dropped)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m pconv_lightning.data.pack SRC [SRC ...] OUT [--size ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m pconv_lightning.data.pack",
        description=(
            "Pack the images of the SRC folders, centre-cropped to SIZE x SIZE and re-encoded, "
            "into one file; a copy of a photo of an earlier folder is left out."
        ),
    )
    parser.add_argument("src", nargs="+", help="image folders (searched recursively), in order")
    parser.add_argument("out", help="the pack file to write, e.g. .gpu/train_pool_256.pack")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--format", default="webp", choices=sorted(PACK_FORMATS))
    parser.add_argument("--quality", type=int, default=82)
    args = parser.parse_args(argv)
    try:
        stats = build_pack(args.src, args.out, args.size, args.format, args.quality)
    except (OSError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    print(_report(stats, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
