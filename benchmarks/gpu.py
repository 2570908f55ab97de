"""GPU training throughput: one full train step (UNet forward, the paper's loss with VGG16,
backward, Adam) of PConvUNet and of its plain nn.Conv2d twin, alternated in one run; images/s,
peak memory, achieved TFLOP/s (FLOPs of forward + backward counted once per config by
FlopCounterMode) and its share of the card's dense bf16 peak, and the packed data path alone
(loader + device augmentation) in images/s.

Targets (one H200, ~790 dense bf16 TFLOP/s measured): >= 300 images/s at 256x256
bf16 (about 180 GFLOP per image, so about 7% of the peak); PConvUNet / plain <= 1.10 in bf16.

Default: the short table that decides the training settings, inside ``--budget-s`` (110 s):
the data path alone, then 256x256, 7 layers, bf16-mixed, channels_last, batch 32 and 64, both
networks eager, then ONE compiled row (PConvUNet at the faster eager batch; its first step is
the compile time), skipped when under ``--compile-min-s`` of the budget is left. Then, with
``--pack``, ``pconv fit`` of experiments/configs/reference_256.yaml against the raw step of the
same configuration (train_step.py's fit section) at 256x256, the largest batch (64),
bf16-mixed, channels_last, ``--data.repeats`` covering the timed steps: eager (when
``--fit-min-s`` of the budget is left) and compiled (``--fit-compile-min-s``); ``fit`` in
gpu_bench.json, a table of its own. The training settings do not depend on them.
``--full``: the whole grid (32-true / bf16-mixed / 16-mixed x channels_last off/on at 256 and
512, compiled bf16 rows at 256, both networks), eager configs first; scripts/gpu/collect.sh
runs it only when time is left after the training is collected.

    python3 benchmarks/gpu.py --out outputs/bench --pack .gpu/train_pool_256.pack \
        --masks .gpu/masks_train                                  # the short table (<= 2 min)
    python3 benchmarks/gpu.py --full --out outputs/bench_full --budget-s 300
    python benchmarks/gpu.py --device cpu --tiny --out /tmp/bench     # the test's smoke run

The table is rewritten after every config, so a run stopped by a time limit keeps its rows.
Peak memory is max_memory_allocated over a candidate's warm-up steps (both candidates'
weights and Adam states are resident).
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import statistics
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
from reference_masks import mask_generator, mask_spec
from timing import print_table, synchronize
from torch.utils.flop_counter import FlopCounterMode
from train_step import DTYPES, FIT_HEADER, fit_against_raw, fit_row, make_batch, pack_case

from pconv_lightning import InpaintingLoss, LossWeights, PConvUNet, VGG16Features

FIELDS = [
    "size", "layers", "batch", "precision", "channels_last", "compile", "net", "ms_per_step",
    "images_per_s", "pconv_over_plain", "peak_gib", "gflop_per_image", "tflop_per_s",
    "pct_of_peak", "first_step_s",
]  # fmt: skip
NETS = ("pconv", "plain")


def count_flops(net: PConvUNet, loss: InpaintingLoss, image, mask) -> float:
    """FLOPs of one forward + backward of net and loss (eager, full precision)."""
    with FlopCounterMode(display=False) as counter:
        loss(net(image, mask), image, mask)["total"].backward()
    net.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


class Candidate:
    """One network with its optimizer and grad scaler; ``step`` runs one training step."""

    def __init__(self, net, loss, precision: str, device: torch.device) -> None:
        self.net, self.loss, self.device = net, loss, device
        self.dtype = DTYPES[precision]
        self.opt = torch.optim.Adam(net.parameters(), lr=2e-4)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype is torch.float16)

    def step(self, image, mask) -> None:
        self.opt.zero_grad(set_to_none=True)
        autocast = torch.autocast(self.device.type, self.dtype) if self.dtype else nullcontext()
        with autocast:
            total = self.loss(self.net(image, mask), image, mask)["total"]
        self.scaler.scale(total).backward()
        self.scaler.step(self.opt)
        self.scaler.update()


def measure(
    args, size, layers, batch, precision, channels_last, compiled, loss, nets=NETS
) -> list[dict]:
    """The rows of one config: each of ``nets`` (PConvUNet, plain twin), alternated."""
    device = torch.device(args.device)
    image, mask = make_batch(batch, size, device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    image, mask = image.contiguous(memory_format=fmt), mask.contiguous(memory_format=fmt)
    torch.manual_seed(0)
    built = {"pconv": PConvUNet(layers)}
    if "plain" in nets:
        built["plain"] = PConvUNet(layers, plain=True)
        built["plain"].load_state_dict(built["pconv"].state_dict())
    built = {name: built[name] for name in nets}
    cands, flops, first, peak = {}, {}, {}, {}
    for name, net in built.items():
        net.to(device, memory_format=fmt).train()
        flops[name] = count_flops(net, loss, image, mask)
        if compiled:
            net.compile(backend=args.compile_backend)
        cands[name] = Candidate(net, loss, precision, device)
    for name, cand in cands.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(args.warmup):
            synchronize(device)
            start = time.perf_counter()
            cand.step(image, mask)
            synchronize(device)
            first.setdefault(name, time.perf_counter() - start)
        peak[name] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0
    times: dict[str, list[float]] = {name: [] for name in cands}
    for _ in range(args.reps):
        for name, cand in cands.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                cand.step(image, mask)
            synchronize(device)
            times[name].append((time.perf_counter() - start) / args.steps)
    step = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = round(step["pconv"] / step["plain"], 3) if {"pconv", "plain"} <= set(step) else None
    rows = []
    for name in cands:
        tflops = flops[name] / step[name] / 1e12
        rows.append(
            {
                "size": size, "layers": layers, "batch": batch, "precision": precision,
                "channels_last": channels_last, "compile": compiled, "net": name,
                "ms_per_step": round(step[name] * 1e3, 2),
                "images_per_s": round(batch / step[name], 1),
                "pconv_over_plain": ratio,
                "peak_gib": round(peak[name], 2),
                "gflop_per_image": round(flops[name] / batch / 1e9, 1),
                "tflop_per_s": round(tflops, 1),
                "pct_of_peak": round(100 * tflops / args.peak_tflops, 2),
                "first_step_s": round(first[name], 2),
            }
        )  # fmt: skip
    del cands, built
    if device.type == "cuda":
        torch.cuda.empty_cache()
    torch._dynamo.reset()
    return rows


def _specs(args) -> list[tuple[int, int, list[int]]]:
    """``--sizes`` as (size, layers, [batches])."""
    specs = []
    for spec in args.sizes:
        size, layers, batches = spec.split(":")
        specs.append((int(size), int(layers), [int(b) for b in batches.split(",")]))
    return specs


def full_configs(args):
    """``--full``: (size, layers, batch, precision, channels_last, compile) for the whole grid,
    every eager config first, so a run stopped during the (slow) compiles keeps the eager table.
    The first batch of each size gets the grid; further batches bf16-mixed channels_last eager."""
    eager, compiled = [], []
    for size, layers, batches in _specs(args):
        for precision in args.precisions:
            for cl in args.channels_last:
                eager.append((size, layers, batches[0], precision, cl, False))
                wanted = precision in args.compile_for and size in args.compile_sizes
                if True in args.compile and wanted:
                    compiled.append((size, layers, batches[0], precision, cl, True))
        eager += [(size, layers, batch, "bf16-mixed", True, False) for batch in batches[1:]]
    if False not in args.compile:
        eager = []
    return eager + compiled


def loader_rate(args, size: int, batch: int) -> dict:
    """Images/s of the packed data path alone: workers' masks, transfer, device augmentation."""
    from pconv_lightning.data.packed import PackedInpaintingDataModule

    data = PackedInpaintingDataModule(
        train=args.pack, image_size=size, batch_size=batch, num_workers=args.workers,
        mask_generator=mask_generator(args.masks),  # reference_256.yaml's mixture
    )  # fmt: skip
    data.setup("fit")
    device = torch.device(args.device)
    loader, count, start = data.train_dataloader(), 0, 0.0
    for i, batch_ in enumerate(loader):
        batch_ = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
                  for k, v in data.on_before_batch_transfer(batch_, 0).items()}  # fmt: skip
        data.on_after_batch_transfer(batch_, 0)
        if i == args.loader_skip:  # workers started, pack on the device
            synchronize(device)
            start = time.perf_counter()
        elif i > args.loader_skip:
            count += batch
        if i == args.loader_skip + args.loader_batches:
            break
    synchronize(device)
    rate = count / (time.perf_counter() - start)
    return {"size": size, "batch": batch, "workers": args.workers, "images_per_s": round(rate, 1)}


def versions() -> str:
    """The run's packages (the carried wheels too) without importing them."""
    found = []
    for dist in ("torch", "lightning", "torchvision", "kornia", "jsonargparse", "numpy"):
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} MISSING")
    return ", ".join(found)


def write(out: Path, result: dict) -> None:
    """gpu_bench.csv (the rows) and gpu_bench.json (everything)."""
    with (out / "gpu_bench.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(result["rows"])
    (out / "gpu_bench.json").write_text(json.dumps(result, indent=1))


class Runner:
    """Measures configs into ``result`` within the time budget; one failing config (a compile
    error, out of memory) is listed under ``failed`` and the others still run."""

    def __init__(self, args, loss, result: dict, out: Path, started: float) -> None:
        self.args, self.loss, self.result, self.out = args, loss, result, out
        self.deadline = started + args.budget_s if args.budget_s > 0 else float("inf")

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def attempt(self, label: str, need_s: float, measure_fn):
        """``measure_fn()``, or None when under ``need_s`` of the budget is left (listed under
        ``skipped``) or when it raised (listed under ``failed``)."""
        if self.left() < need_s:
            self.result["skipped"].append({"config": label, "reason": f"under {need_s} s left"})
            print(label, f"SKIPPED: {self.left():.0f} s of the budget left", flush=True)
            return None
        try:
            return measure_fn()
        except Exception as err:
            self.result["failed"].append(
                {"config": label, "error": f"{type(err).__name__}: {err}"[:500]}
            )
            print(label, "FAILED:", self.result["failed"][-1]["error"].splitlines()[0], flush=True)
            torch._dynamo.reset()
            if torch.device(self.args.device).type == "cuda":
                torch.cuda.empty_cache()
            return None

    def run(self, config: tuple, nets=NETS, need_s: float | None = None) -> list[dict]:
        label = " ".join(f"{k}={v}" for k, v in zip(FIELDS[:6], config, strict=True))
        label += "" if nets == NETS else f" nets={','.join(nets)}"
        need_s = self.args.eager_min_s if need_s is None else need_s
        rows = self.attempt(label, need_s, lambda: measure(self.args, *config, self.loss, nets))
        if rows is None:
            return []
        self.result["rows"] += rows
        print(label, "done", flush=True)
        write(self.out, self.result)  # after every config: a stopped run keeps its rows
        return rows

    def run_fit(self, case, need_s: float) -> dict | None:
        """One ``pconv fit`` against raw step row (train_step.py) into ``result["fit"]``."""
        args = self.args
        label = (f"pconv fit size={case.size} layers={case.layers} batch={case.batch} "
                 f"precision={case.precision} channels_last={case.channels_last} "
                 f"compile={case.compile} repeats={case.repeats}")  # fmt: skip

        def fit_row_measured() -> dict:
            with tempfile.TemporaryDirectory() as root:
                return fit_against_raw(
                    case, self.loss, torch.device(args.device), Path(root), args.fit_steps,
                    args.fit_warmup, args.reps, args.steps, args.compile_backend,
                )  # fmt: skip

        row = self.attempt(label, need_s, fit_row_measured)
        if row is not None:
            self.result["fit"].append(row)
            print(label, "done:", f"fit / raw {row['fit_over_raw']}", flush=True)
            write(self.out, self.result)
        return row


def short_plan(args, runner: Runner) -> None:
    """Eager bf16 channels_last rows of both networks at each batch, then one compiled row of
    PConvUNet at the batch whose eager PConvUNet row was fastest."""
    for size, layers, batches in _specs(args):
        best = None
        for batch in batches:
            for row in runner.run((size, layers, batch, "bf16-mixed", True, False)):
                if row["net"] == "pconv" and (
                    best is None or row["images_per_s"] > best["images_per_s"]
                ):
                    best = row
        if best is not None and True in args.compile:
            config = (size, layers, best["batch"], "bf16-mixed", True, True)
            runner.run(config, nets=tuple(args.compile_nets), need_s=args.compile_min_s)


def fit_plan(args, runner: Runner) -> None:
    """``pconv fit`` against the raw step at the first size and its largest batch, bf16-mixed
    channels_last, eager then compiled, the timed steps in one epoch of the pack."""
    from pconv_lightning.data.pack import read_pack

    size, layers, batches = _specs(args)[0]
    photos = len(read_pack(args.pack)["names"])
    extra = (f"--data.mask_generator={json.dumps(mask_spec(args.masks))}",
             f"--data.num_workers={args.workers}",
             *([f"--model.vgg_weights={args.vgg}"] if args.vgg else []))  # fmt: skip
    for compiled in sorted(args.compile):
        case = pack_case(args.pack, photos, size, max(batches), layers, args.fit_steps,
                         compiled=compiled, args=extra)  # fmt: skip
        runner.run_fit(case, args.fit_compile_min_s if compiled else args.fit_min_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for gpu_bench.csv / .json")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long CPU smoke run")
    parser.add_argument("--full", action="store_true", help="the whole grid (see above)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop starting configs after this many seconds (0: none; default "
                        "110, --full: none)")  # fmt: skip
    parser.add_argument("--eager-min-s", type=float, default=8.0,
                        help="an eager config starts only with this much of the budget left")  # fmt: skip
    parser.add_argument("--compile-min-s", type=float, default=45.0,
                        help="the compiled row starts only with this much of the budget left")  # fmt: skip
    parser.add_argument("--sizes", nargs="+", default=None,
                        help="SIZE:LAYERS:BATCH,BATCH... (default 256:7:32,64; --full: "
                        "256:7:32,16,64 512:8:8)")  # fmt: skip
    parser.add_argument("--precisions", nargs="+", default=["32", "bf16-mixed", "16-mixed"],
                        help="--full only")  # fmt: skip
    parser.add_argument("--channels-last", nargs="+", default=["off", "on"], help="--full only")
    parser.add_argument("--compile", nargs="+", default=["off", "on"])
    parser.add_argument("--compile-for", nargs="+", default=["bf16-mixed"], help="--full only")
    parser.add_argument("--compile-sizes", nargs="+", type=int, default=[256],
                        help="--full only")  # fmt: skip
    parser.add_argument("--compile-nets", nargs="+", choices=NETS, default=["pconv"],
                        help="networks of the short table's compiled row")  # fmt: skip
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=790.0,
                        help="the card's dense bf16 peak (H200: 790 measured, KINDS.md)")  # fmt: skip
    parser.add_argument("--vgg", default=None, help="VGG16 weights (timing is the same)")
    parser.add_argument("--pack", help="photo pack: also measure the data path alone")
    parser.add_argument("--masks", help="training mask folder for the data-path measurement")
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--loader-batches", type=int, default=40)
    parser.add_argument("--loader-skip", type=int, default=5)
    parser.add_argument("--fit-steps", type=int, default=60, help="pconv fit steps per fit row")
    parser.add_argument("--fit-warmup", type=int, default=10, help="of which not timed")
    parser.add_argument("--fit-min-s", type=float, default=25.0,
                        help="the eager fit row starts only with this much of the budget left")  # fmt: skip
    parser.add_argument("--fit-compile-min-s", type=float, default=75.0,
                        help="the compiled fit row starts only with this much of the budget "
                        "left")  # fmt: skip
    args = parser.parse_args()
    if args.sizes is None:
        args.sizes = ["256:7:32,16,64", "512:8:8"] if args.full else ["256:7:32,64"]
    if args.budget_s is None:
        args.budget_s = 0.0 if args.full else 110.0
    if args.tiny:
        args.sizes = ["32:3:1"] if args.full else ["32:3:1,2"]
        args.precisions = ["32", "bf16-mixed"]
        args.compile_sizes, args.compile_backend = [32], "eager"
        args.warmup, args.steps, args.reps = 1, 1, 1
        args.workers, args.loader_batches, args.loader_skip = 0, 2, 1
        args.fit_steps, args.fit_warmup = 3, 1
        args.eager_min_s = args.compile_min_s = args.fit_min_s = args.fit_compile_min_s = 0.0
    args.channels_last = [v == "on" for v in args.channels_last]
    args.compile = [v == "on" for v in args.compile]
    if (args.pack is None) != (args.masks is None):
        parser.error("--pack and --masks go together")
    started = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    name, total_gib = "cpu", None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
        total_gib = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random VGG16 weights when --vgg is not given
        loss = InpaintingLoss(LossWeights(), VGG16Features(args.vgg)).to(device)
    print("versions:", versions(), flush=True)
    print(f"{name}, torch {torch.__version__}, warm-up {args.warmup}, "
          f"median of {args.reps} x {args.steps} steps, budget {args.budget_s or 'none'} s\n")  # fmt: skip
    result = {
        "device": name, "torch": torch.__version__, "versions": versions(), "total_gib": total_gib,
        "peak_tflops": args.peak_tflops, "mode": "full" if args.full else "short",
        "rows": [], "failed": [], "skipped": [], "fit": [],
    }  # fmt: skip
    if args.pack and not args.full:  # first: no compile, and the training run depends on it
        size, _, batches = _specs(args)[0]
        result["loader"] = loader_rate(args, size, max(batches))
        print("data path alone:", result["loader"], flush=True)
    runner = Runner(args, loss, result, out, started)
    if args.full:
        for config in full_configs(args):
            runner.run(config)
    else:
        short_plan(args, runner)
        if args.pack:
            fit_plan(args, runner)
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    write(out, result)
    rows = result["rows"]
    print_table(FIELDS, [[row[k] for k in FIELDS] for row in rows])
    if result["fit"]:
        print(f"\npconv fit ({args.fit_steps} steps, the first {args.fit_warmup} not timed) "
              "against the raw step:\n")  # fmt: skip
        print_table(FIT_HEADER, [fit_row(row) for row in result["fit"]])
    print(f"\n{result['elapsed_s']} s; failed {len(result['failed'])}, "
          f"skipped {len(result['skipped'])}")  # fmt: skip
    loader = result.get("loader")
    step_rates = [
        r["images_per_s"]
        for r in rows
        if loader
        and r["net"] == "pconv"
        and (r["size"], r["batch"]) == (loader["size"], loader["batch"])
    ]
    if step_rates:
        print(f"data path alone at {loader['size']}, batch {loader['batch']}, "
              f"{loader['workers']} workers: {loader['images_per_s']} images/s "
              f"= {loader['images_per_s'] / max(step_rates):.1f}x the fastest PConvUNet train step")  # fmt: skip


if __name__ == "__main__":
    main()
