"""One full training step (UNet forward, the full loss with VGG16, backward, Adam) of PConvUNet
against its plain nn.Conv2d twin, and no-grad inference, measured alternately in one run.

Targets on CPU at 256x256: train step <= 1.10x the plain twin (batch 2 and 4), inference
(batch 1) <= 1.15x.

    .venv/bin/python benchmarks/train_step.py [--device cuda] [--precision bf16-mixed]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext

import torch
from timing import alternate, print_table

from pconv_lightning import InpaintingLoss, LossWeights, PConvUNet, VGG16Features

DTYPES = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def make_batch(batch: int, size: int, device: torch.device):
    g = torch.Generator().manual_seed(batch)
    image = torch.rand(batch, 3, size, size, generator=g)
    mask = torch.ones(batch, 1, size, size)
    for i in range(batch):  # a 25% hole per image, off-centre
        top, left = (int(v) for v in torch.randint(0, size // 2, (2,), generator=g))
        mask[i, :, top : top + size // 2, left : left + size // 2] = 0
    return image.to(device), mask.to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--batches", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--precision", choices=list(DTYPES), default="32")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = DTYPES[args.precision]

    def autocast():
        return torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()

    loss = InpaintingLoss(LossWeights(), VGG16Features("imagenet")).to(device)
    torch.manual_seed(0)
    nets = {
        "pconv": PConvUNet(args.layers).to(device),
        "plain": PConvUNet(args.layers, plain=True).to(device),
    }
    nets["plain"].load_state_dict(nets["pconv"].state_dict())
    optims = {k: torch.optim.Adam(n.parameters(), lr=2e-4) for k, n in nets.items()}
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)

    def train_step(name: str, image: torch.Tensor, mask: torch.Tensor):
        def step() -> None:
            net, opt = nets[name], optims[name]
            opt.zero_grad(set_to_none=True)
            with autocast():
                total = loss(net(image, mask), image, mask)["total"]
            scaler.scale(total).backward()
            scaler.step(opt)
            scaler.update()

        return step

    def infer(name: str, image: torch.Tensor, mask: torch.Tensor):
        def run() -> None:
            with torch.no_grad(), autocast():
                nets[name](image, mask)

        return run

    print(
        f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"{args.size}x{args.size}, layers {args.layers}, precision {args.precision}, "
        f"median of {args.reps}\n"
    )
    rows = []
    for net in nets.values():
        net.train()
    for batch in args.batches:
        image, mask = make_batch(batch, args.size, device)
        t = alternate({k: train_step(k, image, mask) for k in nets}, device, args.reps)
        rows.append(
            [
                f"train step, batch {batch}",
                f"{t['pconv'] * 1e3:.0f}",
                f"{t['plain'] * 1e3:.0f}",
                f"{t['pconv'] / t['plain']:.3f}",
                "1.10",
            ]
        )
    for net in nets.values():
        net.eval()
    image, mask = make_batch(1, args.size, device)
    t = alternate({k: infer(k, image, mask) for k in nets}, device, args.reps * 2)
    rows.append(
        [
            "inference, batch 1",
            f"{t['pconv'] * 1e3:.0f}",
            f"{t['plain'] * 1e3:.0f}",
            f"{t['pconv'] / t['plain']:.3f}",
            "1.15",
        ]
    )
    print_table(["measure", "PConvUNet ms", "plain twin ms", "ratio", "target"], rows)


if __name__ == "__main__":
    main()
