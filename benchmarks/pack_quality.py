"""The photo pack's size and fidelity at each WebP quality: the pack of the given folders built
at each ``--qualities`` value (:func:`~pconv_lightning.data.pack.build_pack`, copies dropped),
its size, and the PSNR of every decoded photo against its exact 256x256 centre square (the
pixels the pack would hold losslessly). docs/gpu.md picks the quality that keeps the GPU bundle
under its transfer limit.

    python benchmarks/pack_quality.py ../shared/data/train_pool_256 \\
        ../shared/data/train_pool_extra_256 ../shared/data/imagenet1k_sample_256 \\
        --qualities 82 70 60 50 --out outputs/pack_quality

Writes ``OUT/q<Q>.pack`` and ``OUT/pack_quality.csv`` (a row per quality) and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pconv_lightning.data.images import load_rgb
from pconv_lightning.data.pack import build_pack, read_pack, source_label, square_crop


def psnr(decoded: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB of two uint8 images, over every pixel and channel."""
    mse = np.mean((decoded.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def pack_psnr(pack_path: Path, roots: list[Path]) -> np.ndarray:
    """Per photo of the pack, its PSNR against the centre square of its source file."""
    pack = read_pack(pack_path)
    by_label = {source_label(r): r for r in roots}
    data, offsets, size = pack["data"].numpy(), pack["offsets"].tolist(), pack["size"]

    def one(i: int) -> float:
        name = pack["names"][i]
        label, rel = name.split("/", 1) if len(roots) > 1 else (source_label(roots[0]), name)
        decoded = np.asarray(load_rgb(data[offsets[i] : offsets[i + 1]].tobytes()))
        return psnr(decoded, np.asarray(square_crop(load_rgb(by_label[label] / rel), size)))

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return np.array(list(pool.map(one, range(len(pack["names"])))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="+", type=Path, help="photo folders, in order")
    parser.add_argument("--qualities", type=int, nargs="+", default=[82, 70, 60, 50])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("outputs/pack_quality"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for quality in args.qualities:
        pack = args.out / f"q{quality}.pack"
        started = time.perf_counter()
        stats = build_pack(args.src, pack, size=args.size, fmt="webp", quality=quality)
        seconds = time.perf_counter() - started
        print({k: v for k, v in stats.items() if k != "megabytes"}, flush=True)
        values = pack_psnr(pack, args.src)
        rows.append(
            {
                "quality": quality,
                "images": stats["images"],
                "dropped": stats["dropped"],
                "mib": round(pack.stat().st_size / 2**20, 2),
                "build_s": round(seconds, 1),
                "psnr_mean": round(float(values.mean()), 2),
                "psnr_p1": round(float(np.percentile(values, 1)), 2),
                "psnr_min": round(float(values.min()), 2),
            }
        )
        print(rows[-1], flush=True)
        with (args.out / "pack_quality.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print("| WebP quality | photos | pack MiB | PSNR mean dB | PSNR 1st percentile | PSNR min |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['quality']} | {r['images']:,} | {r['mib']:.1f} | {r['psnr_mean']:.2f} "
            f"| {r['psnr_p1']:.2f} | {r['psnr_min']:.2f} |"
        )


if __name__ == "__main__":
    main()
