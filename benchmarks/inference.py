"""Inference on CPU: latency at 512x512 for eager PyTorch and onnxruntime (measured
alternately, median), and peak resident memory for a 4000x3000 photo run in tiles.

Targets: onnxruntime at least 1.3x faster than eager; the 4000x3000 photo within 3 GiB peak
RSS. Each RSS figure is measured in a fresh subprocess (``ru_maxrss``), so nothing the
latency runs allocated counts.

    .venv/bin/python benchmarks/inference.py [--checkpoint CKPT] [--reps 7]
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

from pconv_lightning.checkpoint import load_network
from pconv_lightning.export import export_onnx
from pconv_lightning.inference import Inpainter, OnnxEngine, TorchEngine
from pconv_lightning.inference.padding import window
from pconv_lightning.masks import StrokeMaskGenerator
from pconv_lightning.models import PConvUNet

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "val" / "kodim13.jpg"
LARGE = (3000, 4000)  # height, width


def network(checkpoint: str | None) -> PConvUNet:
    """The checkpoint's network, or the quick start's 7-layer shape with random weights
    (latency and memory do not depend on the weights)."""
    if checkpoint:
        return load_network(checkpoint)
    torch.manual_seed(0)
    return PConvUNet(layers=7).eval()


def large_inputs() -> tuple[np.ndarray, np.ndarray]:
    """The sample photo upscaled to 4000x3000 and stroke holes spread over all of it, so
    that every tile runs."""
    photo = Image.open(SAMPLE).convert("RGB").resize(LARGE[::-1], Image.Resampling.BICUBIC)
    mask = StrokeMaskGenerator(preset="thick")(*LARGE, np.random.default_rng(0))
    return np.asarray(photo), mask


def rss_child(engine_kind: str, model: str, tile: int, overlap: int) -> None:
    """Run in a subprocess: print peak RSS (GiB) and seconds for the large photo."""
    engine = OnnxEngine(model) if engine_kind == "onnxruntime" else TorchEngine(load_network(model))
    image, mask = large_inputs()
    start = time.perf_counter()
    Inpainter(engine, tile_size=tile, overlap=overlap)(image, mask)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"{peak_kib / 2**20:.3f} {seconds:.1f} {1 - mask.mean():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help=".ckpt/.pth/.safetensors; default: random 7 layers")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--rss-child", nargs=2, metavar=("ENGINE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child, args.tile, args.overlap)
        return

    net = network(args.checkpoint)
    tmp = Path(tempfile.mkdtemp(prefix="pconv-bench-"))
    weights, onnx_file = tmp / "net.pth", tmp / "net.onnx"
    torch.save(net.state_dict(), weights)
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
    for kind, model in (("eager", weights), ("onnxruntime", onnx_file)):
        cmd = [sys.executable, __file__, "--rss-child", kind, str(model)]
        cmd += ["--tile", str(args.tile), "--overlap", str(args.overlap)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
        peak, seconds, holes = out[-3:]
        rows.append(
            [
                f"4000x3000 tiled ({args.tile}/{args.overlap}, {float(holes):.0%} holes), {kind}",
                f"{float(peak):.2f} GiB peak RSS",
                f"{seconds} s",
            ]
        )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {net.layers} layers")
    print_table(["measure", "value", "vs eager / time"], rows)


if __name__ == "__main__":
    main()
