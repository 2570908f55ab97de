"""Writing an image folder as litdata shards (``pconv shards SRC OUT``).

Only images are stored (record: ``image`` = encoded bytes, ``path`` = the file relative to
the source folder); masks are drawn on the fly, so a mask ablation never needs re-sharding.
Every file is decoded once while sharding: unreadable ones are logged by path and left out.
Without ``image_size`` the original file bytes are stored unchanged; with it, images whose
shorter side is larger are downscaled (antialiased) to that side and re-encoded: PNG sources
as PNG, others as JPEG quality 95.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pconv_lightning.data.filelist import load_file_list
from pconv_lightning.data.images import MAX_PIXELS, UnreadableImageError, load_rgb

log = logging.getLogger(__name__)

# litdata's staging folders for chunks on their way to an object store, and for downloaded
# inputs. Their default is shared by every process on the machine (``$TMPDIR/chunks``,
# ``$TMPDIR/data``), and each ``litdata.optimize`` call empties both as it starts.
STAGING_FOLDERS = {
    "DATA_OPTIMIZER_CACHE_FOLDER": "chunks",
    "DATA_OPTIMIZER_DATA_CACHE_FOLDER": "data",
}


@contextlib.contextmanager
def _private_staging() -> Iterator[str]:
    """A folder of this call's own, removed afterwards, for litdata's staging folders (unless
    the user set their variables) and the index read back: two shard writers on one machine
    then never delete each other's chunks."""
    unset = [name for name in STAGING_FOLDERS if name not in os.environ]
    with tempfile.TemporaryDirectory(prefix="pconv-shards-") as staging:
        for name in unset:
            os.environ[name] = os.path.join(staging, STAGING_FOLDERS[name])
        try:
            yield staging
        finally:
            for name in unset:
                os.environ.pop(name, None)


def _record(path: str, root: str, image_size: int | None) -> Iterator[dict[str, Any]]:
    import litdata  # here and below: litdata and torchvision import torch, not for --help
    from torchvision.transforms.v2 import functional as TF

    try:
        image = load_rgb(path, max_pixels=MAX_PIXELS)
    except UnreadableImageError as err:
        log.warning("not sharding unreadable image %s: %s", path, err)
        return
    if image_size is None or min(image.size) <= image_size:
        data = Path(path).read_bytes()
    else:
        image = TF.resize(image, image_size, antialias=True)
        png = path.lower().endswith(".png")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG" if png else "JPEG", quality=95)
        data = buffer.getvalue()
    # Text: a plain str that names an existing image file would be stored as that image.
    yield {"image": data, "path": litdata.Text(text=os.path.relpath(path, root))}


def write_shards(
    src_dir: str | Path,
    out_dir: str,
    image_size: int | None = None,
    num_workers: int | None = None,
    chunk_bytes: int | str = "64MB",
    overwrite: bool = False,
    start_method: str | None = None,
    cache_dir: str | Path | None = None,
) -> int:
    """Shard every image under ``src_dir`` into ``out_dir`` (a folder or ``s3://...`` URL).

    Returns the number of images written. ``num_workers`` defaults to the CPU count.
    ``start_method`` is litdata's worker start method (None: its default, spawn outside
    notebooks; "fork" starts much faster). litdata sets it process-wide; the previous
    method is restored afterwards so later DataLoaders are unaffected. ``cache_dir``: where
    the source's file list is cached (see :func:`~pconv_lightning.data.load_file_list`).
    """
    if image_size is not None and image_size < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
    import litdata

    files = load_file_list(src_dir, cache_dir=cache_dir)
    root = str(files.root)
    previous = multiprocessing.get_start_method(allow_none=True)
    try:
        with _private_staging() as staging:
            litdata.optimize(
                fn=functools.partial(_record, root=root, image_size=image_size),
                inputs=[files[i] for i in range(len(files))],
                output_dir=str(out_dir),
                num_workers=num_workers or os.cpu_count() or 1,
                chunk_bytes=chunk_bytes,
                mode="overwrite" if overwrite else None,
                start_method=start_method,
                verbose=False,
            )
            # the index of a remote output is fetched into `staging`, not the user's
            # ~/.lightning/chunks/<hash of the URL>, which litdata shares and clears per URL
            return len(litdata.StreamingDataset(str(out_dir), cache_dir=staging))
    finally:
        multiprocessing.set_start_method(previous, force=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``pconv shards SRC OUT [--image-size N] [--num-workers N] ...``."""
    parser = argparse.ArgumentParser(
        prog="pconv shards", description="Write an image folder as litdata shards."
    )
    parser.add_argument("src", help="folder of JPEG/PNG/WebP images, searched recursively")
    parser.add_argument("out", help="output folder or object-store URL (s3://bucket/prefix)")
    parser.add_argument("--image-size", type=int, default=None, help="downscale shorter side")
    parser.add_argument("--num-workers", type=int, default=None, help="default: CPU count")
    parser.add_argument("--chunk-bytes", default="64MB", help="chunk size, e.g. 64MB")
    parser.add_argument("--overwrite", action="store_true", help="replace existing shards")
    parser.add_argument(
        "--start-method",
        choices=("fork", "spawn", "forkserver"),
        default=None,
        help="worker start method (default: litdata's, spawn; fork starts faster)",
    )
    args = parser.parse_args(argv)
    count = write_shards(
        args.src,
        args.out,
        args.image_size,
        args.num_workers,
        args.chunk_bytes,
        args.overwrite,
        args.start_method,
    )
    print(f"wrote {count} images as litdata shards to {args.out}")
    return 0
