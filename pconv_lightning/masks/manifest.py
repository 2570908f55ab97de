"""CSV manifests of evaluation masks: ``file,hole_ratio,bucket,touches_border``, all computed
from the pixels (bucket = index 0-5 into ``BUCKET_NAMES``, touches_border = 0/1)."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pconv_lightning.masks.buckets import BUCKET_NAMES, hole_ratio, ratio_bucket, touches_border
from pconv_lightning.masks.files import list_mask_files
from pconv_lightning.masks.io import load_mask

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("file", "hole_ratio", "bucket", "touches_border")


@dataclass(frozen=True)
class EvalMask:
    """One row of a manifest; ``path`` is absolute or relative to the working directory."""

    path: Path
    hole_ratio: float
    bucket: int
    touches_border: bool


def describe_mask(mask: np.ndarray) -> tuple[float, int, bool]:
    """``(hole_ratio, bucket, touches_border)`` of a 1 = valid mask; bucket -1 if out of range."""
    ratio = hole_ratio(mask)
    return ratio, ratio_bucket(ratio), touches_border(mask)


def write_manifest(path: str | Path, rows: Iterable[EvalMask]) -> Path:
    """Write ``rows`` to ``path``; files under the manifest's folder are stored relative to it."""
    path = Path(path)
    base = path.parent.resolve()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST_COLUMNS)
        for row in rows:
            file = row.path.resolve()
            name = file.relative_to(base).as_posix() if file.is_relative_to(base) else str(file)
            writer.writerow([name, repr(row.hole_ratio), row.bucket, int(row.touches_border)])
    return path


def read_manifest(path_or_dir: str | Path) -> list[EvalMask]:
    """Rows of a manifest file, or of ``manifest.csv`` in a folder; paths resolved against it."""
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"mask manifest {path} does not exist")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"mask manifest {path} lacks column(s) {', '.join(missing)}; "
                f"expected {','.join(MANIFEST_COLUMNS)}"
            )
        rows = []
        for line, record in enumerate(reader, start=2):
            try:
                row = EvalMask(
                    path.parent / record["file"],
                    float(record["hole_ratio"]),
                    int(record["bucket"]),
                    bool(int(record["touches_border"])),
                )
            except (TypeError, ValueError) as err:
                raise ValueError(f"mask manifest {path}, line {line}: bad row {record}") from err
            if not 0 <= row.bucket < len(BUCKET_NAMES):
                raise ValueError(
                    f"mask manifest {path}, line {line}: bucket must be 0-{len(BUCKET_NAMES) - 1}, "
                    f"got {row.bucket}"
                )
            rows.append(row)
    return rows


def index_mask_folder(
    root: str | Path,
    hole_value: int = 255,
    threshold: int = 127,
    output: str | Path | None = None,
) -> Path:
    """Describe every PNG/JPEG mask under ``root`` from its pixels and write a manifest to
    ``output`` (default ``root/manifest.csv``). Masks outside the buckets' (0.01, 0.6] range are
    left out with a warning. Returns the manifest path."""
    root = Path(root)
    output = root / MANIFEST_NAME if output is None else Path(output)
    rows, skipped = [], []
    for file in list_mask_files(root):
        ratio, bucket, border = describe_mask(load_mask(file, hole_value, threshold))
        if bucket < 0:
            skipped.append(f"{file.name} ({ratio:.4f})")
        else:
            rows.append(EvalMask(file, ratio, bucket, border))
    if skipped:
        warnings.warn(
            f"{len(skipped)} mask(s) in {root} have a hole ratio outside (0.01, 0.6] and are not "
            f"indexed: {', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}",
            stacklevel=2,
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    return write_manifest(output, rows)
