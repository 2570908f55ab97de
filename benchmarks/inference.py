"""Inference on CPU: latency at 512x512 for eager PyTorch and onnxruntime (measured
alternately, median), and peak resident memory and time for a 4000x3000 photo run in tiles
and a 6000x4000 one (eager) whose holes include two blocks much wider than a tile.

Targets: onnxruntime at least 1.3x faster than eager; the 4000x3000 photo within 3 GiB peak
RSS; no hole pixel left exactly black (0 in all channels) by a tile that could not reach it.
Each RSS figure is measured in a fresh subprocess (``ru_maxrss``), so nothing the latency
runs allocated counts.

    .venv/bin/python benchmarks/inference.py [--checkpoint CKPT] [--reps 7] [--large-only]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timing import alternate, print_table

from pconv_lightning.checkpoints.network import load_network
from pconv_lightning.export import export_onnx
from pconv_lightning.inference import Inpainter, OnnxEngine, TorchEngine
from pconv_lightning.inference.padding import window
from pconv_lightning.masks import StrokeMaskGenerator
from pconv_lightning.models import PConvUNet

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "val" / "kodim13.jpg"
LARGE = (3000, 4000)  # height, width
HUGE = (4000, 6000)


def network(checkpoint: str | None) -> PConvUNet:
    """The checkpoint's network, or the quick start's 7-layer shape with random weights
    (latency and memory do not depend on the weights)."""
    if checkpoint:
        return load_network(checkpoint)
    torch.manual_seed(0)
    return PConvUNet(layers=7).eval()


def large_inputs(height: int, width: int, blocks: bool) -> tuple[np.ndarray, np.ndarray]:
    """The sample photo upscaled to ``width x height`` and stroke holes spread over all of
    it, so that every tile runs; with ``blocks``, also two rectangular holes a quarter of the
    image wide (far wider than a tile)."""
    photo = Image.open(SAMPLE).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    mask = StrokeMaskGenerator(preset="thick")(height, width, np.random.default_rng(0))
    if blocks:
        bh, bw = height // 4, width // 4
        mask[bh : 2 * bh, bw : 2 * bw] = 0
        mask[2 * bh : 3 * bh + bh // 2, 2 * bw + bw // 2 : 3 * bw + bw // 2] = 0
    return np.asarray(photo), mask


def rss_child(engine_kind: str, model: str, size: str, tile: int, overlap: int) -> None:
    """Run in a subprocess: print peak RSS (GiB), seconds, the hole fraction and the number
    of hole pixels left exactly black for one large photo (``size`` is ``WxH`` or
    ``WxH+blocks``)."""
    engine = OnnxEngine(model) if engine_kind == "onnxruntime" else TorchEngine(load_network(model))
    dims, _, blocks = size.partition("+")
    width, height = (int(v) for v in dims.split("x"))
    image, mask = large_inputs(height, width, bool(blocks))
    start = time.perf_counter()
    result = Inpainter(engine, tile_size=tile, overlap=overlap)(image, mask)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    black = int(((result == 0).all(axis=2) & (mask == 0)).sum())
    print(f"{peak_kib / 2**20:.3f} {seconds:.1f} {1 - mask.mean():.3f} {black}")


def large_rows(cases: list[tuple[str, Path, str]], tile: int, overlap: int) -> list[list[str]]:
    """One table row per (engine, model file, size) case, each run in a fresh subprocess."""
    rows = []
    for kind, model, size in cases:
        cmd = [sys.executable, __file__, "--rss-child", kind, str(model), size]
        cmd += ["--tile", str(tile), "--overlap", str(overlap)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
        peak, seconds, holes, black = out[-4:]
        rows.append(
            [
                f"{size} tiled ({tile}/{overlap}, {float(holes):.0%} holes), {kind}",
                f"{float(peak):.2f} GiB peak RSS",
                f"{seconds} s, {int(black):,} hole pixels black",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help=".ckpt/.pth/.safetensors; default: random 7 layers")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument(
        "--large-only", action="store_true", help="only the 6000x4000 eager case (no ONNX)"
    )
    parser.add_argument(
        "--rss-child", nargs=3, metavar=("ENGINE", "MODEL", "SIZE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child, args.tile, args.overlap)
        return

    net = network(args.checkpoint)
    tmp = Path(tempfile.mkdtemp(prefix="pconv-bench-"))
    weights, onnx_file = tmp / "net.pth", tmp / "net.onnx"
    torch.save(net.state_dict(), weights)
    huge = (weights, f"{HUGE[1]}x{HUGE[0]}+blocks")
    if args.large_only:
        print_table(
            ["measure", "value", "time"], large_rows([("eager", *huge)], args.tile, args.overlap)
        )
        return
    export_onnx(net, onnx_file)
    eager, ort = TorchEngine(net), OnnxEngine(onnx_file)
    eager_cl = TorchEngine(network(args.checkpoint), channels_last=True)
    image = np.asarray(Image.open(SAMPLE).convert("RGB").resize((512, 512)))
    mask = StrokeMaskGenerator(preset="thick")(512, 512, np.random.default_rng(1))
    x, m = window(image, mask, 0, 0, 512, 512)
    times = alternate(
        {
            "eager": lambda: eager(x, m),
            "eager channels_last": lambda: eager_cl(x, m),
            "onnxruntime": lambda: ort(x, m),
        },
        torch.device("cpu"),
        reps=args.reps,
    )
    rows = [
        [f"512x512 latency, {name}", f"{t * 1000:.0f} ms", f"{times['eager'] / t:.2f}x"]
        for name, t in times.items()
    ]
    large = f"{LARGE[1]}x{LARGE[0]}"
    cases = [("eager", weights, large), ("onnxruntime", onnx_file, large), ("eager", *huge)]
    rows += large_rows(cases, args.tile, args.overlap)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {net.layers} layers")
    print_table(["measure", "value", "vs eager / time"], rows)


if __name__ == "__main__":
    main()
