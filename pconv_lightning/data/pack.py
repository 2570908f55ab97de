"""A photo pack: every image of a folder centre-cropped to ``size x size`` and re-encoded into
one file, small enough to travel with the code and decoded once into a uint8 tensor.

The file is a ``torch.save`` dict of plain data (``torch.load(weights_only=True)`` reads it):
``format``, ``quality``, ``size``, ``names`` (relative paths), ``offsets`` int64 ``(N + 1,)``
and ``data`` uint8 ``(bytes,)``: image i is ``data[offsets[i]:offsets[i + 1]]``.

    python -m pconv_lightning.data.pack SRC OUT.pack [--size 256] [--format webp] [--quality 82]

Shape:
    - :func:`load_pack`: uint8 ``(N, 3, size, size)``.
"""

from __future__ import annotations

import argparse
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

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


def build_pack(
    source: str | Path, out: str | Path, size: int = 256, fmt: str = "webp", quality: int = 82
) -> dict[str, float]:
    """Pack every image under ``source`` into ``out``; returns ``images`` and ``megabytes``.

    Raises:
        ValueError: naming the argument when ``fmt``, ``size`` or ``quality`` is invalid.
        FileNotFoundError: when ``source`` holds no image (see :func:`scan_images`).
        UnreadableImageError: naming the file that cannot be decoded.
    """
    if fmt not in PACK_FORMATS:
        raise ValueError(f"--format must be one of {sorted(PACK_FORMATS)}, got {fmt!r}")
    if size < 1 or not 1 <= quality <= 100:
        raise ValueError(f"--size must be >= 1 and --quality in [1, 100], got {size}, {quality}")
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"pack source {root} is not a directory")
    names = scan_images(root)
    if not names:
        raise FileNotFoundError(f"pack source {root} holds no images")
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        blobs = list(pool.map(lambda n: _encode(root / n, size, fmt, quality), names))
    offsets = np.cumsum([0, *map(len, blobs)])
    data = torch.frombuffer(bytearray(b"".join(blobs)), dtype=torch.uint8)
    pack = {"format": fmt, "quality": quality, "size": size, "names": names}
    pack |= {"offsets": torch.from_numpy(offsets).long(), "data": data}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(pack, out)
    return {"images": len(names), "megabytes": Path(out).stat().st_size / 1e6}


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


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m pconv_lightning.data.pack SRC OUT [--size ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m pconv_lightning.data.pack",
        description=(
            "Pack the images of SRC, centre-cropped to SIZE x SIZE and re-encoded, into one file."
        ),
    )
    parser.add_argument("src", help="image folder (searched recursively)")
    parser.add_argument("out", help="the pack file to write, e.g. .gpu/train_pool_256.pack")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--format", default="webp", choices=sorted(PACK_FORMATS))
    parser.add_argument("--quality", type=int, default=82)
    args = parser.parse_args(argv)
    try:
        stats = build_pack(args.src, args.out, args.size, args.format, args.quality)
    except (OSError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    print(f"packed {stats['images']} images into {args.out}: {stats['megabytes']:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
