"""The CPU training step, side by side in one run, and `pconv fit` end to end against it.

1. Raw step (UNet forward, the paper's full loss with the ImageNet VGG16, backward, Adam) of
   PConvUNet and its plain nn.Conv2d twin for fp32 / bf16-mixed x channels_last off/on x
   torch.compile off/on (the network compiled, as ``--model.compile`` does), at 128x128
   batch 8 and 256x256 batch 2: images/s, speed-up over fp32 eager, PConv / plain. The 16
   steps of one shape are alternated (one of each in turn, median of the repetitions).
2. No-grad inference at batch 1, PConvUNet against the plain twin.
3. ``pconv fit`` end to end (the folder loader with one worker, and the in-memory photo pack)
   in bf16-mixed + channels_last: steady-state images/s after a warm-up, against the raw step
   of the same configuration measured right before and after it.

Targets: bf16-mixed + channels_last >= 1.8x fp32; ``pconv fit`` >= 0.9 of the raw step, at 128
and at 256, with either data path; train step PConv / plain <= 1.10; inference <= 1.15.

    .venv/bin/python benchmarks/train_step.py [--sections raw infer fit] [--no-compile]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from contextlib import nullcontext
from itertools import product
from pathlib import Path

import torch
from lightning.pytorch import Callback
from timing import Stolen, alternate, print_table

from pconv_lightning import InpaintingLoss, LossWeights, PConvUNet, VGG16Features

DTYPES = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
REPO = Path(__file__).resolve().parents[1]
SHAPES = ((128, 8), (256, 2))  # (crop side, batch): the reference run's two phases


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
        cast = torch.autocast("cpu", dtype=self.dtype) if self.dtype else nullcontext()
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
    """Wall time at the end of every training batch, with that batch's size."""

    def __init__(self) -> None:
        self.ends: list[tuple[float, int]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ends.append((time.perf_counter(), int(batch["image"].shape[0])))


def fit_rate(
    data: list[str], size: int, batch: int, layers: int, steps: int, warmup: int, root: Path
) -> float:
    """Steady-state images/s of ``pconv fit`` (reference_cpu.yaml's model, bf16, CL)."""
    from pconv_lightning.cli import cli_main

    clock = StepClock()
    args = [
        "fit",
        f"--config={REPO / 'experiments/configs/reference_cpu.yaml'}",
        f"--trainer.default_root_dir={root}",
        f"--trainer.max_steps={steps}",
        "--trainer.precision=bf16-mixed",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.callbacks=[]",
        "--last_checkpoint.train_time_interval=null",
        "--last_checkpoint.every_n_train_steps=100000",
        f"--model.net.init_args.layers={layers}",
        f"--data.image_size={size}",
        f"--data.batch_size={batch}",
        "--data.mask_generator=pconv_lightning.masks.StrokeMaskGenerator",
        *data,
    ]
    import pconv_lightning.training_cli as training_cli

    original = training_cli.PConvCLI.instantiate_trainer

    def with_clock(self, **kwargs):
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), clock]
        return original(self, **kwargs)

    training_cli.PConvCLI.instantiate_trainer = with_clock
    try:
        cli_main(args)
    finally:
        training_cli.PConvCLI.instantiate_trainer = original
    (t0, _), *rest = clock.ends[warmup:]
    return sum(n for _, n in rest) / (rest[-1][0] - t0)


def raw_rate(loss: InpaintingLoss, layers: int, size: int, batch: int, reps: int) -> float:
    """Images/s of the raw PConvUNet step in bf16-mixed + channels_last."""
    step = RawStep(twins(layers)["pconv"], loss, "bf16-mixed", True)
    step.feed(*make_batch(batch, size, torch.device("cpu")))
    return batch / alternate({"raw": step}, torch.device("cpu"), reps)["raw"]


def fit_table(loss: InpaintingLoss, layers: int, reps: int, steps: int) -> None:
    """Section 3: pconv fit end to end against the raw step, folder loader and photo pack."""
    from pconv_lightning.data.pack import build_pack

    folders = [
        REPO / "../shared/data/train_pool_256",
        REPO / "../shared/data/imagenet1k_sample_256",
    ]
    if not all(f.is_dir() for f in folders):
        folders = [REPO / "data/samples/train"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "photos.pack"
        build_pack(folders[0], pack, size=256)
        sources = {
            "folder, 1 worker": [
                f"--data.train=[{', '.join(str(f.resolve()) for f in folders)}]",
                "--data.num_workers=1",
            ],
            "photo pack": [
                "--data=pconv_lightning.data.packed.PackedInpaintingDataModule",
                f"--data.train={pack}",
                "--data.val=null",
                "--data.num_workers=1",
            ],
        }
        for (size, batch), (name, data) in product(SHAPES, sources.items()):
            with Stolen() as stolen:
                before = raw_rate(loss, layers, size, batch, reps)
                root = Path(tmp) / f"run{size}{name[0]}"
                fit = fit_rate(data, size, batch, layers, steps, 5, root)
                base = statistics.mean([before, raw_rate(loss, layers, size, batch, reps)])
            rows.append(
                [
                    f"{size}x{size} b{batch}",
                    name,
                    f"{base:.2f}",
                    f"{fit:.2f}",
                    f"{fit / base:.2f}",
                    f"{stolen.percent:.0f}",
                ]
            )
            print(f"  measured {rows[-1]}", flush=True)
    print_table(
        ["input", "pconv fit data", "raw step img/s", "pconv fit img/s", "fit / raw", "stolen %"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["raw", "infer", "fit"])
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--fit-steps", type=int, default=30)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    args = parser.parse_args()
    print(
        f"cpu, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"{torch.backends.cpu.get_cpu_capability()}, layers {args.layers}, median of {args.reps}"
    )
    loss = InpaintingLoss(LossWeights(), VGG16Features("imagenet"))
    if "raw" in args.sections:
        print("\n## Raw train step\n")
        raw_table(loss, args.layers, args.reps, args.compile)
    if "infer" in args.sections:
        print("\n## Inference\n")
        infer_table(args.layers, args.reps)
    if "fit" in args.sections:
        print("\n## pconv fit end to end (bf16-mixed, channels_last)\n")
        fit_table(loss, args.layers, args.reps, args.fit_steps)


if __name__ == "__main__":
    main()
