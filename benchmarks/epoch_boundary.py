"""The cost of an epoch boundary of the packed photo loader, against a GPU's train step.

PackedInpaintingDataModule's train loader (persistent workers that only draw the masks; the
photos wait on the device) at 256x256, batch 64, with reference_256.yaml's mask mixture when
the NVIDIA test masks are in ``../shared/data`` (strokes otherwise). A consumer stands for the
train step: it sleeps a fixed time after each batch, ``--slack`` (1.25) times the loader's
free-running batch time (measured first), so that the loader keeps up in steady state. Over
two epochs the wait for every batch is timed: in steady state the workers have the next batch
ready; at the second epoch's start, ``iter()`` and its first batch wait for the workers to
take the new epoch's order and draw a whole batch, one worker per batch, so the stall is about
one worker's time for a batch whatever their number.

The table puts the stall against one H200's step (``--step-ms``: 93 ms at batch 64, 690
images/s in ``gpu.py``) for an epoch of the pack with ``repeats`` 1 and 30: the share of an
epoch's time the stall costs. It is the loader's part of a boundary only (Lightning's epoch-end
hooks come on top), and an upper bound where the device still has queued steps to run.

``--workers``: 2 here (a 2-core machine); the GPU host's reference_256.yaml uses 12.

    .venv/bin/python benchmarks/epoch_boundary.py [--workers 2] [--pack PACK] [--repeats 1]

The pack is built in a temporary folder from ``../shared/data/train_pool_256`` unless
``--pack`` names one (``data/samples/train`` where the shared data is missing: 12 photos,
so ``--batch 8``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from reference_masks import SHARED_MASKS, mask_generator
from timing import Stolen, print_table
from torch.utils.data import DataLoader

from pconv_lightning.data.pack import build_pack
from pconv_lightning.data.packed import PackedInpaintingDataModule

REPO = Path(__file__).resolve().parents[1]
POOL = REPO.parent / "shared" / "data" / "train_pool_256"
FREE_EPOCH = 1000  # the free-running measurement's masks: an epoch the timed ones do not use


def free_batch_s(loader: DataLoader, batches: int, skip: int) -> float:
    """Seconds per batch of the loader when nothing waits for it (after ``skip`` batches)."""
    loader.sampler.set_epoch(FREE_EPOCH)
    batches = min(batches, len(loader) - skip)
    it = iter(loader)
    for _ in range(skip):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return (time.perf_counter() - start) / batches


def epoch_waits(loader: DataLoader, epoch: int, step_s: float) -> tuple[float, list[float]]:
    """Seconds of ``iter()`` and the wait for each batch of ``epoch`` (Lightning sets the
    sampler's epoch first), the consumer sleeping ``step_s`` after every batch."""
    loader.sampler.set_epoch(epoch)
    start = time.perf_counter()
    it = iter(loader)
    iter_s = time.perf_counter() - start
    waits = []
    while True:
        start = time.perf_counter()
        try:
            next(it)
        except StopIteration:
            return iter_s, waits
        waits.append(time.perf_counter() - start)
        time.sleep(step_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1, help="of the measured loader")
    parser.add_argument("--free-batches", type=int, default=20)
    parser.add_argument("--slack", type=float, default=1.25)
    parser.add_argument("--step-ms", type=float, default=93.0, help="the GPU step compared")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be >= 1: without workers there is no boundary to wait for")
    masks = SHARED_MASKS if SHARED_MASKS.is_dir() else None
    with tempfile.TemporaryDirectory() as tmp:
        pack = args.pack
        if pack is None:
            source = POOL if POOL.is_dir() else REPO / "data" / "samples" / "train"
            pack = Path(tmp) / "photos.pack"
            start = time.perf_counter()
            build_pack(source, pack, size=256)
            print(f"pack of {source} built in {time.perf_counter() - start:.0f} s")
        data = PackedInpaintingDataModule(
            train=str(pack), image_size=args.size, batch_size=args.batch,
            num_workers=args.workers, mask_generator=mask_generator(masks),
            repeats=args.repeats,
        )  # fmt: skip
        data.setup("fit")
        photos = len(data.datasets["train"]) // args.repeats
        loader = data.train_dataloader()
        batch_s = free_batch_s(loader, args.free_batches, skip=2 * args.workers)
        step_s = args.slack * batch_s
        time.sleep(2 * args.workers * batch_s + 1)  # the workers finish their prefetched batches
        with Stolen() as stolen:
            iter0, waits0 = epoch_waits(loader, 0, step_s)
            iter1, waits1 = epoch_waits(loader, 1, step_s)
        load = os.getloadavg()[0]
    steady = statistics.median(waits0[3:] + waits1[3:])
    start_s, stall = iter0 + waits0[0], iter1 + waits1[0]
    masks_name = f"{masks.name} + strokes (reference_256.yaml)" if masks else "strokes"
    print(
        f"\n{photos} photos, repeats {args.repeats}: {len(waits0)} batches of {args.batch} an "
        f"epoch at {args.size}x{args.size}; masks: {masks_name}; {args.workers} workers; "
        f"torch {torch.__version__}, {os.cpu_count()} cores, load average {load:.1f}, "
        f"CPU time stolen by the host {stolen.percent:.0f}%\n"
    )
    print_table(
        ["measure", "ms"],
        [
            ["loader alone, a batch (free-running)", f"{batch_s * 1e3:.0f}"],
            [f"consumer's sleep a batch ({args.slack}x)", f"{step_s * 1e3:.0f}"],
            ["steady wait for a batch (median, both epochs from batch 4)", f"{steady * 1e3:.1f}"],
            ["epoch 1 start: iter() + first batch", f"{start_s * 1e3:.0f}"],
            ["epoch 2 start (the boundary): iter() + first batch", f"{stall * 1e3:.0f}"],
            ["  of which iter()", f"{iter1 * 1e3:.0f}"],
            [
                "epoch 2, batches 2-4: wait above the steady one",
                f"{sum(w - steady for w in waits1[1:4]) * 1e3:.0f}",
            ],
        ],
    )
    step = args.step_ms / 1e3
    print(f"\nThis stall against a {args.step_ms:g} ms step at batch {args.batch}:\n")
    rows = []
    for repeats in (1, 30):
        steps = repeats * photos // args.batch
        epoch_s = steps * step
        rate = steps * args.batch / (epoch_s + stall)
        rows.append(
            [
                repeats,
                steps,
                f"{epoch_s:.1f}",
                f"{stall:.2f}",
                f"{100 * stall / (epoch_s + stall):.1f} %",
                f"{rate:.0f} (without: {args.batch / step:.0f})",
            ]
        )
    print_table(
        ["repeats", "steps an epoch", "epoch s", "stall s", "stall's share", "images/s"], rows
    )


if __name__ == "__main__":
    main()
