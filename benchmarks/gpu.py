"""GPU training throughput: one full train step (UNet forward, the paper's loss with VGG16,
backward, Adam) of PConvUNet and of its plain nn.Conv2d twin, alternated in one run, for each
size x batch x precision x channels_last x torch.compile; images/s, peak memory, achieved
TFLOP/s (FLOPs of forward + backward counted once per config by FlopCounterMode), and the
packed data path alone (loader + device augmentation) in images/s.

Targets (issue 13, one H100): PConvUNet / plain <= 1.10 in bf16; >= 300 images/s at 256x256
bf16 (about 180 GFLOP per image; the card does about 800 TFLOP/s of dense bf16).

    python3 benchmarks/gpu.py --out outputs/bench --sizes 256:7:32,16,64 512:8:8 \
        --pack .gpu/train_pool_256.pack --masks .gpu/masks_train
    python benchmarks/gpu.py --device cpu --tiny --out /tmp/bench     # the test's smoke run

The first batch of each ``--sizes`` entry gets the whole grid; further batches are measured at
bf16-mixed, channels_last, eager. Compiled configs only for ``--compile-for`` precisions and
``--compile-sizes``. Peak memory is max_memory_allocated over a candidate's warm-up steps
(both candidates' weights and Adam states are resident).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
from timing import print_table, synchronize
from torch.utils.flop_counter import FlopCounterMode
from train_step import DTYPES, make_batch

from pconv_lightning import InpaintingLoss, LossWeights, PConvUNet, VGG16Features

FIELDS = [
    "size", "layers", "batch", "precision", "channels_last", "compile", "net", "ms_per_step",
    "images_per_s", "pconv_over_plain", "peak_gib", "gflop_per_image", "tflop_per_s",
    "first_step_s",
]  # fmt: skip


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


def measure(args, size, layers, batch, precision, channels_last, compiled, loss) -> list[dict]:
    """The rows of one config: PConvUNet and plain twin, alternated."""
    device = torch.device(args.device)
    image, mask = make_batch(batch, size, device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    image, mask = image.contiguous(memory_format=fmt), mask.contiguous(memory_format=fmt)
    torch.manual_seed(0)
    nets = {"pconv": PConvUNet(layers), "plain": PConvUNet(layers, plain=True)}
    nets["plain"].load_state_dict(nets["pconv"].state_dict())
    cands, flops, first, peak = {}, {}, {}, {}
    for name, net in nets.items():
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
    rows = []
    for name in cands:
        rows.append(
            {
                "size": size, "layers": layers, "batch": batch, "precision": precision,
                "channels_last": channels_last, "compile": compiled, "net": name,
                "ms_per_step": round(step[name] * 1e3, 2),
                "images_per_s": round(batch / step[name], 1),
                "pconv_over_plain": round(step["pconv"] / step["plain"], 3),
                "peak_gib": round(peak[name], 2),
                "gflop_per_image": round(flops[name] / batch / 1e9, 1),
                "tflop_per_s": round(flops[name] / step[name] / 1e12, 1),
                "first_step_s": round(first[name], 2),
            }
        )  # fmt: skip
    del cands, nets
    if device.type == "cuda":
        torch.cuda.empty_cache()
    torch._dynamo.reset()
    return rows


def configs(args):
    """(size, layers, batch, precision, channels_last, compile): every eager config first, so a
    run stopped during the (slow) compiles still leaves the eager table."""
    eager, compiled = [], []
    for spec in args.sizes:
        size, layers, batches = spec.split(":")
        size, layers = int(size), int(layers)
        batches = [int(b) for b in batches.split(",")]
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
    from pconv_lightning.masks import FileMaskGenerator, MixtureMaskGenerator, StrokeMaskGenerator

    generator = MixtureMaskGenerator(  # as in experiments/configs/reference_256.yaml
        [FileMaskGenerator(args.masks, resize="resize", dilation=(1, 9)),
         StrokeMaskGenerator(preset="medium")], [0.75, 0.25])  # fmt: skip
    data = PackedInpaintingDataModule(
        train=args.pack, image_size=size, batch_size=batch, num_workers=args.workers,
        mask_generator=generator,
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


def write(out: Path, result: dict) -> None:
    """gpu_bench.csv (the rows) and gpu_bench.json (everything)."""
    with (out / "gpu_bench.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(result["rows"])
    (out / "gpu_bench.json").write_text(json.dumps(result, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for gpu_bench.csv / .json")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long CPU smoke run")
    parser.add_argument("--sizes", nargs="+", default=["256:7:32,16,64", "512:8:8"])
    parser.add_argument("--precisions", nargs="+", default=["32", "bf16-mixed", "16-mixed"])
    parser.add_argument("--channels-last", nargs="+", default=["off", "on"])
    parser.add_argument("--compile", nargs="+", default=["off", "on"])
    parser.add_argument("--compile-for", nargs="+", default=["bf16-mixed"])
    parser.add_argument("--compile-sizes", nargs="+", type=int, default=[256])
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--vgg", default=None, help="VGG16 weights (timing is the same)")
    parser.add_argument("--pack", help="photo pack: also measure the data path alone")
    parser.add_argument("--masks", help="training mask folder for the data-path measurement")
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--loader-batches", type=int, default=60)
    parser.add_argument("--loader-skip", type=int, default=5)
    args = parser.parse_args()
    if args.tiny:
        args.sizes = ["32:3:1,2"]
        args.precisions = ["32", "bf16-mixed"]
        args.compile_sizes, args.compile_backend = [32], "eager"
        args.warmup, args.steps, args.reps = 1, 1, 1
        args.workers, args.loader_batches, args.loader_skip = 0, 2, 1
    args.channels_last = [v == "on" for v in args.channels_last]
    args.compile = [v == "on" for v in args.compile]
    if (args.pack is None) != (args.masks is None):
        parser.error("--pack and --masks go together")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random VGG16 weights when --vgg is not given
        loss = InpaintingLoss(LossWeights(), VGG16Features(args.vgg)).to(device)
    print(f"{name}, torch {torch.__version__}, warm-up {args.warmup}, "
          f"median of {args.reps} x {args.steps} steps\n")  # fmt: skip
    result = {"device": name, "torch": torch.__version__, "rows": [], "failed": []}
    if args.pack:  # first: it needs no compile and is what the training run depends on
        size, _, batches = args.sizes[0].split(":")
        result["loader"] = loader_rate(args, int(size), int(batches.split(",")[0]))
        print("data path alone:", result["loader"], flush=True)
    rows, failed = result["rows"], result["failed"]
    for config in configs(args):
        label = " ".join(f"{k}={v}" for k, v in zip(FIELDS[:6], config, strict=True))
        try:  # one failing config (a compile error, out of memory) must not lose the table
            rows += measure(args, *config, loss)
        except Exception as err:
            failed.append({"config": label, "error": f"{type(err).__name__}: {err}"[:500]})
            print(label, "FAILED:", failed[-1]["error"].splitlines()[0], flush=True)
            torch._dynamo.reset()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        print(label, "done", flush=True)
        write(out, result)  # after every config: a run stopped by a time limit keeps its rows
    write(out, result)
    print_table(FIELDS, [[row[k] for k in FIELDS] for row in rows])
    loader = result.get("loader")
    step_rates = [
        r["images_per_s"]
        for r in rows
        if loader
        and r["net"] == "pconv"
        and (r["size"], r["batch"]) == (loader["size"], loader["batch"])
    ]
    if step_rates:
        print(f"\ndata path alone at {loader['size']}, batch {loader['batch']}, "
              f"{loader['workers']} workers: {loader['images_per_s']} images/s "
              f"= {loader['images_per_s'] / max(step_rates):.1f}x the fastest PConvUNet train step")  # fmt: skip


if __name__ == "__main__":
    main()
