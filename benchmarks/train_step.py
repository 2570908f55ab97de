"""The training step, side by side in one run, and `pconv fit` end to end against it.

1. Raw CPU step (UNet forward, the paper's full loss with the ImageNet VGG16, backward, Adam)
   of PConvUNet and its plain nn.Conv2d twin for fp32 / bf16-mixed x channels_last off/on x
   torch.compile off/on (the network compiled, as ``--model.compile`` does), at 128x128
   batch 8 and 256x256 batch 2: images/s, speed-up over fp32 eager, PConv / plain. The 16
   steps of one shape are alternated (one of each in turn, median of the repetitions).
2. No-grad CPU inference at batch 1, PConvUNet against the plain twin.
3. ``pconv fit`` end to end on ``--device`` (default: cuda where there is one) against the raw
   step of the same configuration (input size, batch, precision, channels_last, compile)
   measured right before and after it: steady-state images/s after a warm-up, and fit / raw.
   ``pconv fit`` runs its config as it trains (loader, progress bar, CSV log every
   ``log_every_n_steps``) without checkpoints or the fp16 exports.
   CPU: reference_cpu.yaml's model with strokes in bf16-mixed + channels_last at 128x128
   batch 8 and 256x256 batch 2, from the folder loader with one worker and from the photo
   pack. GPU: reference_256.yaml (the photo pack on the device, 12 loader workers, the
   config's mask mixture) at 256x256 batch 64, bf16-mixed + channels_last: eager with
   ``--data.repeats`` large enough that the timed steps lie in one epoch, eager with
   ``--data.repeats 1`` (the 2,941-photo pack: an epoch ends every 45 steps, so the epoch
   boundaries' cost shows), and compiled as the first.

Targets: bf16-mixed + channels_last >= 1.8x fp32; ``pconv fit`` >= 0.9 of the raw step (CPU:
at 128 and at 256, with either data path); train step PConv / plain <= 1.10; inference <= 1.15.

    .venv/bin/python benchmarks/train_step.py [--sections raw infer fit] [--no-compile]
    python benchmarks/train_step.py --sections fit --device cuda --pack .gpu/train_pool_256.pack \
        --masks .gpu/masks_train --vgg .gpu/vgg16_pool3.pth               # on the GPU host
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path

import torch
from lightning.pytorch import Callback
from reference_masks import REFERENCE_256, SHARED_MASKS, mask_spec
from timing import Stolen, alternate, print_table, synchronize

from pconv_lightning import InpaintingLoss, LossWeights, PConvUNet, VGG16Features

DTYPES = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
REPO = Path(__file__).resolve().parents[1]
SHAPES = ((128, 8), (256, 2))  # (crop side, batch): the reference run's two phases
FIT_STEPS = {"cpu": 30, "cuda": 150}  # 150: three epoch ends of a 45-step epoch
FIT_WARMUP = {"cpu": 5, "cuda": 10}


def make_batch(batch: int, size: int, device: torch.device):
    g = torch.Generator().manual_seed(batch)
    image = torch.rand(batch, 3, size, size, generator=g)
    mask = torch.ones(batch, 1, size, size)
    for i in range(batch):  # a 25% hole per image, off-centre
        top, left = (int(v) for v in torch.randint(0, size // 2, (2,), generator=g))
        mask[i, :, top : top + size // 2, left : left + size // 2] = 0
    return image.to(device), mask.to(device)


class RawStep:
    """One network, its Adam and the shared loss; calling it runs one training step the way
    :class:`~pconv_lightning.module.InpaintingModule` does (autocast, channels_last inputs)."""

    def __init__(
        self, net: PConvUNet, loss: InpaintingLoss, precision: str, channels_last: bool
    ) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        # as the module: with channels_last the loss's VGG16 too (a copy: rows share `loss`)
        self.loss = copy.deepcopy(loss).to(memory_format=fmt) if channels_last else loss
        self.net, self.format = net.to(memory_format=fmt), fmt
        self.dtype = DTYPES[precision]
        self.opt = torch.optim.Adam(net.parameters(), lr=2e-4)
        self.image = self.mask = None

    def feed(self, image: torch.Tensor, mask: torch.Tensor) -> RawStep:
        self.image = image.contiguous(memory_format=self.format)
        self.mask = mask.contiguous(memory_format=self.format)
        return self

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        device = self.image.device.type
        cast = torch.autocast(device, dtype=self.dtype) if self.dtype else nullcontext()
        with cast:
            total = self.loss(self.net(self.image, self.mask), self.image, self.mask)["total"]
        total.backward()
        self.opt.step()


def twins(layers: int) -> dict[str, PConvUNet]:
    torch.manual_seed(0)
    nets = {"pconv": PConvUNet(layers), "plain": PConvUNet(layers, plain=True)}
    nets["plain"].load_state_dict(nets["pconv"].state_dict())
    return nets


def raw_table(loss: InpaintingLoss, layers: int, reps: int, compile_: bool) -> dict:
    """Section 1; returns images/s by (size, precision, channels_last, compile, net).

    All configurations of one input shape (and both twins of each) are timed in one
    alternation, a step of each in turn, so a machine whose speed drifts (other work, a
    host that steals cycles) slows every row alike and the ratios between rows hold."""
    torch._dynamo.config.recompile_limit = 64  # one code object, 16 guard sets per shape
    rate: dict = {}
    rows, stolen_by_size = [], {}
    for size, batch in SHAPES:
        image, mask = make_batch(batch, size, torch.device("cpu"))
        configs = list(
            product(("32", "bf16-mixed"), (False, True), (False, True) if compile_ else (False,))
        )
        steps, first = {}, {}
        for precision, cl, comp in configs:
            for name, net in twins(layers).items():
                if comp:
                    net.compile()
                step = RawStep(net, loss, precision, cl).feed(image, mask)
                start = time.perf_counter()
                step()  # the first (compiling) call, timed apart
                first[precision, cl, comp, name] = time.perf_counter() - start
                steps[precision, cl, comp, name] = step
        with Stolen() as stolen:
            t = alternate(steps, torch.device("cpu"), reps)
        stolen_by_size[size] = stolen.percent
        for key, seconds in t.items():
            rate[(size, *key)] = batch / seconds
        base = rate[size, "32", False, False, "pconv"]
        for precision, cl, comp in configs:
            pconv, plain = (rate[size, precision, cl, comp, n] for n in ("pconv", "plain"))
            rows.append(
                [
                    f"{size}x{size} b{batch}",
                    precision,
                    "on" if cl else "off",
                    "on" if comp else "off",
                    f"{pconv:.2f}",
                    f"{plain:.2f}",
                    f"{pconv / base:.2f}x",
                    f"{plain / pconv:.3f}",
                    f"{first[precision, cl, comp, 'pconv']:.0f}",
                ]
            )
        del steps
        print(f"  measured {size}x{size}", flush=True)
    print_table(
        [
            "input",
            "precision",
            "channels_last",
            "compile",
            "PConvUNet img/s",
            "plain img/s",
            "vs fp32 eager",
            "PConv / plain",
            "first step s",
        ],
        rows,
    )
    print(
        "\nCPU time stolen by the host while timing: "
        + ", ".join(f"{s}x{s} {p:.0f}%" for s, p in stolen_by_size.items())
    )
    return rate


def infer_table(layers: int, reps: int) -> None:
    """Section 2: no-grad inference at 256x256, batch 1."""
    nets = twins(layers)
    image, mask = make_batch(1, 256, torch.device("cpu"))

    def infer(name: str):
        def run() -> None:
            with torch.no_grad():
                nets[name].eval()(image, mask)

        return run

    t = alternate({k: infer(k) for k in nets}, torch.device("cpu"), reps * 2)
    print_table(
        ["measure", "PConvUNet ms", "plain twin ms", "ratio", "target"],
        [
            [
                "inference 256x256, batch 1",
                f"{t['pconv'] * 1e3:.0f}",
                f"{t['plain'] * 1e3:.0f}",
                f"{t['pconv'] / t['plain']:.3f}",
                "1.15",
            ]
        ],
    )


class StepClock(Callback):
    """Wall time, batch size and epoch at the end of every training batch; the device is
    synchronized at the ends of the batches counted in ``sync_at`` (1-based), so that a timed
    window between two of them holds the work the device was given, not only its queueing."""

    def __init__(self, sync_at: set[int]) -> None:
        self.sync_at = sync_at
        self.ends: list[tuple[float, int, int]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if len(self.ends) + 1 in self.sync_at:
            synchronize(pl_module.device)
        size = int(batch["image"].shape[0])
        self.ends.append((time.perf_counter(), size, trainer.current_epoch))


@dataclass(frozen=True)
class FitCase:
    """One row of the fit table: ``pconv fit --config config`` and the raw step, both with the
    same network, input size, batch, precision, memory format and compilation."""

    data: str  # the data path as the table names it
    config: Path
    args: tuple[str, ...]  # the row's own `pconv fit` arguments: data source, workers, VGG16
    size: int
    batch: int
    layers: int
    precision: str = "bf16-mixed"
    channels_last: bool = True
    compile: bool = False
    repeats: int | None = None  # PackedInpaintingDataModule's passes over the pack per epoch


@contextmanager
def compile_backend(backend: str) -> Iterator[None]:
    """``nn.Module.compile`` with ``backend``: the module compiles its network with the
    default (inductor); the smoke runs use ``"eager"``."""
    original = torch.nn.Module.compile
    torch.nn.Module.compile = functools.partialmethod(original, backend=backend)
    try:
        yield
    finally:
        torch.nn.Module.compile = original


def fit_args(case: FitCase, device: torch.device, root: Path, steps: int) -> list[str]:
    """``pconv fit`` arguments: the config as it trains (its loader, precision, progress bar,
    logging every ``log_every_n_steps``), with a CSV log, no checkpoints and no callbacks of
    its own (the fp16 exports: every 2 minutes and more) in ``root``, for ``steps`` steps."""
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger",
              "init_args": {"save_dir": str(root), "name": "csv"}}  # fmt: skip
    return [
        "fit",
        f"--config={case.config}",
        *case.args,
        f"--trainer.accelerator={device.type}",
        f"--trainer.default_root_dir={root}",
        f"--trainer.max_steps={steps}",
        "--trainer.max_time=null",
        f"--trainer.precision={case.precision}",
        f"--trainer.logger={json.dumps([logger])}",
        "--trainer.enable_model_summary=false",
        "--trainer.callbacks=[]",
        "--last_checkpoint.train_time_interval=null",
        "--last_checkpoint.every_n_train_steps=100000",
        f"--model.net.init_args.layers={case.layers}",
        f"--model.channels_last={str(case.channels_last).lower()}",
        f"--model.compile={str(case.compile).lower()}",
        f"--data.image_size={case.size}",
        f"--data.batch_size={case.batch}",
        *([] if case.repeats is None else [f"--data.repeats={case.repeats}"]),
    ]


def fit_rate(
    case: FitCase, device: torch.device, root: Path, steps: int, warmup: int, backend: str
) -> tuple[float, int]:
    """Steady-state images/s of ``pconv fit`` over its steps after ``warmup``, and how many
    epoch ends fell in that window."""
    import pconv_lightning.training_cli as training_cli
    from pconv_lightning.cli import cli_main

    if not 0 < warmup < steps:
        raise ValueError(f"--fit-warmup must be in [1, --fit-steps), got {warmup} of {steps}")
    clock = StepClock({warmup, steps})
    original = training_cli.PConvCLI.instantiate_trainer

    def with_clock(self, **kwargs):
        trainer = original(self, **kwargs)
        trainer.callbacks.append(clock)
        return trainer

    training_cli.PConvCLI.instantiate_trainer = with_clock
    try:
        with compile_backend(backend):
            cli_main(fit_args(case, device, root, steps))
    except SystemExit as exit_:  # the CLI refused its arguments: a failed row, not the end
        raise RuntimeError(f"pconv fit exited with status {exit_.code}") from exit_
    finally:
        training_cli.PConvCLI.instantiate_trainer = original
    if len(clock.ends) != steps:
        raise RuntimeError(f"pconv fit ran {len(clock.ends)} steps, expected {steps}")
    (start, _, first_epoch), *timed = clock.ends[warmup - 1 :]
    images = sum(size for _, size, _ in timed)
    return images / (timed[-1][0] - start), timed[-1][2] - first_epoch


def raw_step(
    case: FitCase, loss: InpaintingLoss, device: torch.device, backend: str = "inductor"
) -> RawStep:
    """The raw step of ``case``'s configuration on a fixed batch (``loss`` on ``device``)."""
    torch.manual_seed(0)
    net = PConvUNet(case.layers).to(device)
    if case.compile:
        net.compile(backend=backend)
    step = RawStep(net, loss, case.precision, case.channels_last)
    return step.feed(*make_batch(case.batch, case.size, device))


def raw_rate(step: RawStep, device: torch.device, reps: int, per_rep: int = 1) -> float:
    """Images/s of ``step``: median of ``reps`` timings of ``per_rep`` steps each (the device
    synchronized around each timing), after one such timing as warm-up."""

    def steps() -> None:
        for _ in range(per_rep):
            step()

    seconds = alternate({"raw": steps}, device, reps)["raw"]
    return len(step.image) * per_rep / seconds


def fit_against_raw(
    case: FitCase,
    loss: InpaintingLoss,
    device: torch.device,
    root: Path,
    steps: int,
    warmup: int,
    reps: int,
    per_rep: int = 1,
    backend: str = "inductor",
) -> dict:
    """``pconv fit`` of ``case`` between two measurements of its raw step: the row's dict."""
    step = raw_step(case, loss, device, backend)
    with Stolen() as stolen:
        before = raw_rate(step, device, reps, per_rep)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        fit, epoch_ends = fit_rate(case, device, root, steps, warmup, backend)
        after = raw_rate(step, device, reps, per_rep)
    del step
    torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    raw = statistics.mean([before, after])
    return {
        "data": case.data, "size": case.size, "layers": case.layers, "batch": case.batch,
        "precision": case.precision, "channels_last": case.channels_last,
        "compile": case.compile, "repeats": case.repeats, "steps": steps, "warmup": warmup,
        "epoch_ends_timed": epoch_ends, "raw_before_images_per_s": round(before, 2),
        "raw_after_images_per_s": round(after, 2), "raw_images_per_s": round(raw, 2),
        "fit_images_per_s": round(fit, 2), "fit_over_raw": round(fit / raw, 3),
        "stolen_pct": round(stolen.percent, 1),
    }  # fmt: skip


FIT_HEADER = ["input", "pconv fit data", "precision", "channels_last", "compile",
              "epoch ends timed", "raw step img/s", "pconv fit img/s", "fit / raw",
              "stolen %"]  # fmt: skip


def fit_row(row: dict) -> list[object]:
    """:data:`FIT_HEADER`'s cells of a :func:`fit_against_raw` row."""
    return [
        f"{row['size']}x{row['size']} b{row['batch']}",
        row["data"],
        row["precision"],
        "on" if row["channels_last"] else "off",
        "on" if row["compile"] else "off",
        row["epoch_ends_timed"],
        f"{row['raw_images_per_s']:.2f}",
        f"{row['fit_images_per_s']:.2f}",
        f"{row['fit_over_raw']:.2f}",
        f"{row['stolen_pct']:.0f}",
    ]


def repeats_covering(steps: int, batch: int, photos: int) -> int:
    """The least ``--data.repeats`` whose epoch holds ``steps`` batches of ``batch`` photos."""
    return math.ceil(steps * batch / photos)


def pack_case(
    pack: Path,
    photos: int,
    size: int,
    batch: int,
    layers: int,
    steps: int,
    compiled: bool = False,
    repeats: int | None = None,
    args: tuple[str, ...] = (),
) -> FitCase:
    """reference_256.yaml from ``pack`` (``photos`` photos) in bf16-mixed + channels_last;
    ``repeats`` None: the least whose epoch holds all ``steps`` steps."""
    repeats = repeats or repeats_covering(steps, batch, photos)
    return FitCase(
        f"photo pack, repeats {repeats}", REFERENCE_256, (f"--data.train={pack}", *args),
        size, batch, layers, compile=compiled, repeats=repeats,
    )  # fmt: skip


def gpu_cases(
    pack: Path, photos: int, layers: int, steps: int, compile_: bool, args: tuple[str, ...]
) -> list[FitCase]:
    """256x256 batch 64: the timed steps in one epoch, eager (and compiled), and eager with
    ``--data.repeats 1`` (an epoch of ``photos // 64`` steps: the boundaries' cost)."""
    common = (pack, photos, 256, 64, layers, steps)
    cases = [pack_case(*common, args=args), pack_case(*common, repeats=1, args=args)]
    if compile_:
        cases.append(pack_case(*common, compiled=True, args=args))
    return cases


def cpu_cases(
    pack: Path, photos: int, folders: list[Path], layers: int, steps: int
) -> list[FitCase]:
    """reference_cpu.yaml's model with strokes at 128x128 batch 8 and 256x256 batch 2, from the
    folder loader with one worker and from the photo pack."""
    config = REPO / "experiments" / "configs" / "reference_cpu.yaml"
    strokes = "--data.mask_generator=pconv_lightning.masks.StrokeMaskGenerator"
    folder = f"--data.train=[{', '.join(str(f.resolve()) for f in folders)}]"
    cases = []
    for size, batch in SHAPES:
        loader = (folder, "--data.num_workers=1", strokes)
        cases.append(FitCase("folder, 1 worker", config, loader, size, batch, layers))
        packed = pack_case(pack, photos, size, batch, layers, steps)
        args = ("--data=pconv_lightning.data.packed.PackedInpaintingDataModule", *packed.args,
                "--data.val=null", "--data.num_workers=1", strokes)  # fmt: skip
        cases.append(replace(packed, data="photo pack", config=config, args=args))
    return cases


def fit_table(args, loss: InpaintingLoss, device: torch.device) -> list[dict]:
    """Section 3: ``pconv fit`` against the raw step; on a GPU :func:`gpu_cases`, on the CPU
    :func:`cpu_cases`."""
    from pconv_lightning.data.pack import build_pack, read_pack

    folders = [
        REPO / "../shared/data/train_pool_256",
        REPO / "../shared/data/imagenet1k_sample_256",
    ]
    if not all(f.is_dir() for f in folders):
        folders = [REPO / "data/samples/train"]
    steps = args.fit_steps or FIT_STEPS[device.type]
    warmup = args.fit_warmup or FIT_WARMUP[device.type]
    per_rep = 5 if device.type == "cuda" else 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pack = args.pack
        if pack is None:
            pack = Path(tmp) / "photos.pack"
            build_pack(folders[0], pack, size=256)
        photos = len(read_pack(pack)["names"])
        if device.type == "cuda":
            extra = (f"--data.mask_generator={json.dumps(mask_spec(args.masks))}",
                     f"--model.vgg_weights={args.vgg}",
                     *([f"--data.num_workers={args.workers}"] if args.workers else []))  # fmt: skip
            cases = gpu_cases(pack, photos, args.layers, steps, args.compile, extra)
        else:
            cases = cpu_cases(pack, photos, folders, args.layers, steps)
        for i, case in enumerate(cases):
            root = Path(tmp) / f"run{i}"
            rows.append(
                fit_against_raw(case, loss, device, root, steps, warmup, args.reps, per_rep)
            )
            print(f"  measured {fit_row(rows[-1])}", flush=True)
    print(f"\n{photos} photos in the pack; {steps} steps, the first {warmup} not timed\n")
    print_table(FIT_HEADER, [fit_row(row) for row in rows])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["raw", "infer", "fit"])
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        default="cuda" if torch.cuda.is_available() else "cpu",
                        help="the fit section's device (raw and infer: the CPU)")  # fmt: skip
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--fit-steps", type=int, default=None,
                        help="pconv fit steps per row (default: CPU 30, GPU 150)")  # fmt: skip
    parser.add_argument("--fit-warmup", type=int, default=None,
                        help="of which not timed (default: CPU 5, GPU 10)")  # fmt: skip
    parser.add_argument("--pack", type=Path, default=None,
                        help="photo pack (default: one built from train_pool_256)")  # fmt: skip
    parser.add_argument("--masks", default=str(SHARED_MASKS) if SHARED_MASKS.is_dir() else None,
                        help="GPU: the mask files of the config's mixture (default: the shared "
                        "NVIDIA test masks; strokes alone without them)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=None,
                        help="GPU: loader workers (default: the config's 12)")  # fmt: skip
    parser.add_argument("--vgg", default="imagenet", help="the loss's VGG16 weights")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    args = parser.parse_args()
    print(
        f"cpu, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"{torch.backends.cpu.get_cpu_capability()}, layers {args.layers}, median of {args.reps}"
    )
    loss = InpaintingLoss(LossWeights(), VGG16Features(args.vgg))
    if "raw" in args.sections:
        print("\n## Raw train step\n")
        raw_table(loss, args.layers, args.reps, args.compile)
    if "infer" in args.sections:
        print("\n## Inference\n")
        infer_table(args.layers, args.reps)
    if "fit" in args.sections:
        device = torch.device(args.device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as the config's trainer.benchmark
        print(f"\n## pconv fit end to end against the raw step ({name})\n")
        fit_table(args, loss.to(device), device)


if __name__ == "__main__":
    main()
