"""``pconv evaluate``: the paper's protocol (quality per hole-ratio bucket, holes touching the
border or not) for PConvUNet checkpoints and classical baselines in one table.

Examples::

    pconv evaluate --checkpoint pconv=outputs/quickstart/checkpoints/last.ckpt \\
        --images ../shared/data/eval_kodak24 --masks ../shared/data/nvidia_irregular_masks_test \\
        --size 256 --out outputs/eval_kodak24
    pconv evaluate --images data/samples/val --builtin-masks 2 --size 128 --out outputs/eval

Methods: every ``--checkpoint`` (composited PConvUNet output; none given: the released
reference model, ``weights/reference_256.safetensors``, when the checkout has it), with
``--work-size S`` each also run at SxS and upscaled (``NAME@S``), OpenCV Telea
and Navier-Stokes (radius 3), PatchMatch (Barnes et al. 2009, seeded) and the mean-colour
fill, unless ``--no-baselines``. Images are
resized (shorter side) to ``--size`` and centre-cropped; masks are resized by nearest neighbour
and their cell is measured at that size. Pairing is described in
:mod:`pconv_lightning.evaluation.pairs`.
Writes into ``--out``: ``metrics.md``, ``metrics.csv``, ``per_image.csv``,
``metrics_by_bucket.png``, ``examples.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pconv_lightning.checkpoints import reference
from pconv_lightning.errors import EXIT_BAD_INPUT, one_line
from pconv_lightning.masks.evaluation import make_evaluation_set
from pconv_lightning.masks.manifest import (
    MANIFEST_NAME,
    EvalMask,
    index_mask_folder,
    read_manifest,
)

if TYPE_CHECKING:  # torch and pandas are imported to run, not for `pconv evaluate --help`
    from pconv_lightning.evaluation.methods import InpaintingMethod

BASELINES = (
    "telea and ns (cv2.inpaint, radius 3, on the 8-bit image), patchmatch (Barnes et al. 2009, "
    "pypatchmatch, 7x7 patches, search seeded with --seed for every image), mean (mean colour of "
    "the valid pixels)"
)


def checkpoint_spec(text: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named after the file, e.g. ``last``)."""
    name, sep, path = text.partition("=")
    if not sep:
        name, path = Path(text).stem, text
    if not name or not path:
        raise argparse.ArgumentTypeError(f"--checkpoint expects NAME=PATH or PATH, got {text!r}")
    return name, Path(path)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pconv evaluate", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--checkpoint",
        type=checkpoint_spec,
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="a PConvUNet .ckpt/.pth/.safetensors (repeatable; default: the released reference "
        "model, weights/reference_256.safetensors, when the checkout has it)",
    )
    parser.add_argument("--images", type=Path, required=True, help="image folder (recursive)")
    masks = parser.add_mutually_exclusive_group(required=True)
    masks.add_argument(
        "--masks", type=Path, help="mask folder (white = hole); manifest.csv if it has one"
    )
    masks.add_argument(
        "--builtin-masks",
        type=positive,
        metavar="N",
        help="make the seeded evaluation set, N masks per cell, in OUT/eval_masks",
    )
    parser.add_argument("--size", type=positive, default=256, help="evaluation size S (px)")
    parser.add_argument(
        "--work-size",
        type=positive,
        metavar="S",
        help="also run each checkpoint on the image downscaled to SxS (area; a hole wherever "
        "a covered pixel is one) with its output upscaled (bilinear), reported as NAME@S: "
        "`pconv inpaint --work-pixels S*S` for holes wider than the training crops",
    )
    parser.add_argument(
        "--per-cell", type=positive, help="pairs per bucket x border cell (default: #images)"
    )
    parser.add_argument("--limit", type=positive, help="use at most N images, spread evenly")
    parser.add_argument("--batch-size", type=positive, default=8)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of --builtin-masks and of PatchMatch's search"
    )
    parser.add_argument("--no-baselines", action="store_true", help="checkpoints only")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    return parser


def evaluation_masks(args: argparse.Namespace) -> tuple[list[EvalMask], str]:
    """The masks' manifest rows and a sentence saying where they come from."""
    if args.builtin_masks is not None:
        folder = args.out / "eval_masks"
        make_evaluation_set(folder, args.builtin_masks, args.size, args.seed)
        return read_manifest(folder), (
            f"built-in seeded set, {args.builtin_masks} per cell, seed {args.seed}, in {folder}"
        )
    if not args.masks.is_dir():
        raise FileNotFoundError(f"--masks {args.masks} is not a directory")
    if (args.masks / MANIFEST_NAME).is_file():
        return read_manifest(args.masks), f"{args.masks} (its {MANIFEST_NAME})"
    manifest = index_mask_folder(args.masks, output=args.out / "masks_manifest.csv")
    return read_manifest(manifest), f"{args.masks} (indexed from pixels into {manifest})"


def build_methods(args: argparse.Namespace) -> list[InpaintingMethod]:
    """The networks of ``--checkpoint`` (none given: the released reference model, when this
    checkout has it) and, unless ``--no-baselines``, the classical baselines."""
    from pconv_lightning.evaluation.methods import (
        DownscaledNetworkMethod,
        NetworkMethod,
        baselines,
    )

    if not args.checkpoint:
        if (released := reference.reference_weights()) is not None:
            args.checkpoint = [("reference", released)]
        elif not args.no_baselines:
            print(
                f"pconv evaluate: no --checkpoint given and no reference model at "
                f"{reference.REFERENCE_WEIGHTS}: evaluating the baselines only",
                file=sys.stderr,
            )
    methods: list[InpaintingMethod] = []
    for name, path in args.checkpoint:
        network = NetworkMethod(name, path, args.device)
        runs = [network] + (
            [DownscaledNetworkMethod(network, args.work_size)] if args.work_size else []
        )
        for method in runs:
            method.check_size(args.size)
        methods += runs
    if not args.no_baselines:
        methods += baselines(seed=args.seed)
    if not methods:
        raise ValueError("nothing to evaluate: give --checkpoint or drop --no-baselines")
    return methods


def run(args: argparse.Namespace) -> Path:
    """Evaluate as ``args`` say; returns the Markdown report's path."""
    import torch

    from pconv_lightning.evaluation.pairs import (
        list_images,
        make_pairs,
        missing_cells,
        pairs_description,
        remeasure,
    )
    from pconv_lightning.evaluation.report import write_report
    from pconv_lightning.evaluation.runner import evaluate

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    methods = build_methods(args)
    images = list_images(args.images, args.limit)
    rows, source = evaluation_masks(args)
    pairs = make_pairs(images, remeasure(rows, args.size), args.per_cell or len(images))
    evaluation = evaluate(
        pairs,
        methods,
        args.size,
        args.batch_size,
        args.device,
        args.num_workers,
        progress=not args.no_progress,
    )
    evaluation.notes += [f"no masks for cell {cell}" for cell in missing_cells(pairs)]
    settings = {
        "images": f"{args.images}, {len(images)} files",
        "masks": source,
        "size": f"shorter side resized to {args.size} (antialiased), centre crop "
        f"{args.size}x{args.size}; masks resized by nearest neighbour, bucket and border "
        "measured at that size",
        "pairing": pairs_description(len(pairs), len(images), args.per_cell or len(images)),
        "methods": ", ".join(
            [f"{name} ({path})" for name, path in args.checkpoint]
            + [
                f"{name}@{args.work_size} ({name} at {args.work_size}x{args.work_size}, area "
                "downscaling, output upscaled bilinearly)"
                for name, _ in args.checkpoint
                if args.work_size
            ]
            + ([] if args.no_baselines else [BASELINES])
        )
        + "; every output composited with the input",
        "metrics": "on the composited image: torchmetrics PSNR (data range 1) and torchmetrics "
        "SSIM (Gaussian 11, sigma 1.5), per image then averaged; L1 in percent over all pixels "
        "and over hole pixels; LPIPS-VGG (LPIPS v0.1 heads, ImageNet VGG16) per image",
        "device": str(args.device),
    }
    write_report(args.out, evaluation, [m.name for m in methods], settings)
    return args.out / "metrics.md"


def main(argv: list[str] | None = None) -> int:
    """Run ``pconv evaluate``; bad input prints ``pconv evaluate: error: ...`` (one line) and
    returns 2, as every pconv command does."""
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:  # incl. UnsafeCheckpointError
        print(f"pconv evaluate: error: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {report} and the CSV/PNG files next to it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
