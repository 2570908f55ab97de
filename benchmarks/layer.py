"""Forward + backward time of PartialConv2d against nn.Conv2d at each layer shape of the PConv
UNet (256x256 input, batch 2 by default), measured alternately in one run.

    .venv/bin/python benchmarks/layer.py [--device cuda] [--size 512 --layers 8]
"""

from __future__ import annotations

import argparse

import torch
from timing import alternate, print_table
from torch import nn

from pconv_lightning import PartialConv2d, PConvUNet


def layer_inputs(net: PConvUNet, batch: int, size: int) -> list[tuple[str, nn.Conv2d, tuple]]:
    """(name, plain conv, input shape) for every convolution of the network."""
    shapes: list[tuple[str, nn.Conv2d, tuple]] = []
    hooks = [
        m.register_forward_pre_hook(
            lambda mod, inp, n=n: shapes.append((n, mod, tuple(inp[0].shape)))
        )
        for n, m in net.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        net(torch.rand(batch, 3, size, size), torch.ones(batch, 1, size, size))
    for h in hooks:
        h.remove()
    return shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    net = PConvUNet(args.layers, plain=True).eval()
    rows, totals = [], {"pconv": 0.0, "conv": 0.0}
    for name, conv, shape in layer_inputs(net, args.batch, args.size):
        kwargs = dict(stride=conv.stride, padding=conv.padding, bias=conv.bias is not None)
        pconv = PartialConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, **kwargs)
        pconv.load_state_dict(conv.state_dict())
        pconv, conv = pconv.to(device), conv.to(device)
        x = torch.rand(shape, device=device, requires_grad=True)
        mask = torch.ones(shape[0], 1, *shape[2:], device=device)
        mask[..., : shape[2] // 2, : shape[3] // 2] = 0

        def run_pconv(pconv=pconv, x=x, mask=mask) -> None:
            pconv(x, mask)[0].sum().backward()

        def run_conv(conv=conv, x=x) -> None:
            conv(x).sum().backward()

        t = alternate({"pconv": run_pconv, "conv": run_conv}, device, args.reps)
        totals = {k: totals[k] + t[k] for k in totals}
        rows.append(
            [
                name,
                "x".join(map(str, shape)),
                f"{t['pconv'] * 1e3:.2f}",
                f"{t['conv'] * 1e3:.2f}",
                f"{t['pconv'] / t['conv']:.2f}",
            ]
        )
    rows.append(
        [
            "all layers",
            "",
            f"{totals['pconv'] * 1e3:.1f}",
            f"{totals['conv'] * 1e3:.1f}",
            f"{totals['pconv'] / totals['conv']:.2f}",
        ]
    )
    print(
        f"device {device}, {torch.get_num_threads()} threads, forward+backward, median of {args.reps}\n"
    )
    print_table(["layer", "input", "PartialConv2d ms", "nn.Conv2d ms", "ratio"], rows)


if __name__ == "__main__":
    main()
