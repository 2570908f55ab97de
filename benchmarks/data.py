"""Images per second through ``InpaintingDataModule``'s train loader: image folder, litdata
shards on local disk and, with ``--s3``, the same shards on an object store.

256x256 random resized crops with RandomShapes masks, 2 workers, on
``../shared/data/imagenet1k_sample_256`` (883 JPEGs; its shards are written to a temporary
folder first, and to the ``--s3`` URL: endpoint and credentials from the environment, as boto3
reads them). Epochs of the sources alternate. The first epoch of each is reported on its own
(for the object store it downloads every chunk into litdata's cache, which the later epochs
read); the others give the median and the best. On a shared machine the median suffers from
other jobs; the best epoch shows what the pipeline can do.

    .venv/bin/python benchmarks/data.py [--src DIR] [--workers 2] [--batch 32] [--reps 3]
        [--s3 s3://bucket/prefix]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import print_table

from pconv_lightning.data import InpaintingDataModule, load_file_list, write_shards

DEFAULT_SRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet1k_sample_256"


def epoch_seconds(loader: object) -> tuple[float, int]:
    """Wall time of one pass over ``loader`` and the number of images it gave."""
    start, count = time.perf_counter(), 0
    for batch in loader:
        count += batch["image"].shape[0]
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=str(DEFAULT_SRC))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--s3", default=None, help="also shard to this URL and read from it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        load_file_list(args.src, cache_dir=tmp)
        scan = time.perf_counter() - start
        start = time.perf_counter()
        load_file_list(args.src, cache_dir=tmp)
        cached = time.perf_counter() - start
        start = time.perf_counter()
        write_shards(args.src, f"{tmp}/shards", num_workers=args.workers, cache_dir=tmp)
        shard = time.perf_counter() - start
        sources = {"folder": args.src, "litdata": f"{tmp}/shards"}
        if args.s3:
            start = time.perf_counter()
            write_shards(args.src, args.s3, num_workers=args.workers, overwrite=True)
            upload = time.perf_counter() - start
            sources["litdata s3"] = args.s3
        loaders = {}
        for backend, source in sources.items():
            dm = InpaintingDataModule(
                train=source,
                image_size=args.size,
                batch_size=args.batch,
                num_workers=args.workers,
                backend=backend.split()[0],
                pin_memory=False,
                cache_dir=f"{tmp}/{backend.replace(' ', '_')}",
            )
            dm.setup("fit")
            loaders[backend] = dm.train_dataloader()
        times: dict[str, list[float]] = {name: [] for name in loaders}
        first: dict[str, float] = {}
        counts: dict[str, int] = {}
        for rep in range(args.reps + 1):
            for name, loader in loaders.items():
                seconds, counts[name] = epoch_seconds(loader)
                if rep:
                    times[name].append(seconds)
                else:
                    first[name] = seconds
    print(f"file list of {args.src}: scan {scan * 1e3:.1f} ms, cached {cached * 1e3:.1f} ms")
    print(f"write_shards ({args.workers} workers): {shard:.1f} s")
    if args.s3:
        print(f"write_shards to {args.s3} ({args.workers} workers): {upload:.1f} s")
    header = [
        "source", "images/epoch", "images/s (first epoch)", "epoch s (median)",
        "images/s (median)", "images/s (best)",
    ]  # fmt: skip
    rows = []
    for name, ts in times.items():
        median, best = statistics.median(ts), min(ts)
        rate, peak, cold = counts[name] / median, counts[name] / best, counts[name] / first[name]
        rows.append(
            [name, counts[name], f"{cold:.0f}", f"{median:.2f}", f"{rate:.0f}", f"{peak:.0f}"]
        )
    print(
        f"\n{args.size}x{args.size}, batch {args.batch}, {args.workers} workers, "
        f"{args.reps} epochs after the first"
    )
    print_table(header, rows)


if __name__ == "__main__":
    main()
