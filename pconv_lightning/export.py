"""``pconv export``: a trained network to ONNX with dynamic batch, height and width.

The graph comes from ``torch.export`` (the dynamo ONNX exporter). The partial-convolution
mask math has no Python-side shape logic: the window count is a convolution with a fixed
ones kernel and the size checks of :meth:`PConvUNet.check_inputs` are skipped while
exporting, so one file runs at every size that is a multiple of ``2**layers`` (stored in the
model's metadata as ``pconv.multiple``; ``pconv inpaint`` pads any other size).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from pconv_lightning.extras import require

if TYPE_CHECKING:  # torch is imported when exporting, not for `pconv export --help`
    from pconv_lightning.models import PConvUNet

OPSET = 18


def export_onnx(net: PConvUNet, path: str | Path) -> Path:
    """Write ``net`` (in eval mode, on CPU) as ONNX with inputs ``image``, ``mask`` and output
    ``output``.

    Shape:
        - image: (N, C, H, W) float32, mask: (N, 1, H, W) float32, 1 = valid
        - output: (N, C_out, H, W); H and W multiples of ``net.multiple``
    """
    require("onnx", "export", "ONNX export")  # torch.onnx's dynamo exporter imports both
    require("onnxscript", "export", "ONNX export")
    import torch

    from pconv_lightning.inference.predictor import MULTIPLE_KEY

    net = net.eval().cpu()
    size = 2 * net.multiple
    image = torch.rand(1, net.in_channels, size, size)
    mask = (torch.rand(1, 1, size, size) > 0.5).float()
    batch, height, width = (torch.export.Dim(n) for n in ("batch", "height", "width"))
    dims = {0: batch, 2: height, 3: width}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on axis names
        program = torch.onnx.export(
            net,
            (image, mask),
            input_names=["image", "mask"],
            output_names=["output"],
            dynamic_shapes={"image": dims, "mask": dims},
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    program.model.metadata_props[MULTIPLE_KEY] = str(net.multiple)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    """``pconv export --checkpoint CKPT --output model.onnx``."""
    parser = argparse.ArgumentParser(
        prog="pconv export",
        description="Export a trained PConvUNet to ONNX with dynamic batch, height and width.",
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help=".ckpt, .pth or .safetensors weights"
    )
    parser.add_argument("--output", required=True, type=Path, help="the .onnx file to write")
    args = parser.parse_args(argv)
    if args.output.suffix != ".onnx":
        parser.error(f"--output must end in .onnx, got {args.output}")
    from pconv_lightning.checkpoints.network import UnsafeCheckpointError, load_network

    try:
        net = load_network(args.checkpoint)
    except (FileNotFoundError, UnsafeCheckpointError, ValueError) as err:
        print(f"pconv export: error: --checkpoint: {err}", file=sys.stderr)
        return 2
    export_onnx(net, args.output)
    print(f"wrote {args.output} (layers={net.layers}, sides multiples of {net.multiple})")
    return 0
