"""Mixed precision proven on the real training path: ``--steps`` (300) steps of 16-mixed and of
bf16-mixed through Lightning (InpaintingModule, the paper's loss, PackedInpaintingDataModule)
against ``--compare`` (300) steps of 32-true, all from the same seed and so the same weights,
photos, augmentations and masks (batch 8, 256x256). Checks that no loss is NaN or infinite
(InpaintingModule stops the run if one is) and counts the steps GradScaler skipped (its scale
dropped) before and after ``--settle`` (100); each mixed precision PASSes with every loss
finite and no skipped step after settling. Writes ``mixed_precision.csv`` (precision, step,
loss, scale, skipped), ``mixed_precision.json`` (summary, written last) and
``mixed_precision.png`` (the loss curves in one plot) and ``mixed_precision_terms.png`` (a panel
per loss term). About 1.5 minutes alone on an H200; scripts/gpu runs it beside the training or
after it (pick_config.py decides). On the CPU: ``--device cpu --precisions bf16-mixed --size 128``.

    python3 benchmarks/mixed_precision.py --out outputs/mp --pack .gpu/train_pool_256.pack \
        --masks .gpu/masks_train --vgg .gpu/vgg16_pool3.pth
    python benchmarks/mixed_precision.py --tiny --out /tmp/mp --pack P --masks M   # CPU smoke
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import lightning.pytorch as pl
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pconv_lightning.data.packed import PackedInpaintingDataModule
from pconv_lightning.masks import (
    FileMaskGenerator,
    MixtureMaskGenerator,
    StrokeMaskGenerator,
)
from pconv_lightning.models import PConvUNet
from pconv_lightning.module import InpaintingModule
from pconv_lightning.nonfinite import NonFiniteLossError

TERMS = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv")


class LossRecorder(pl.Callback):
    """Per step: the total loss, each loss term (as logged, ``train/loss_<term>``) and the grad
    scaler's scale (None without a scaler)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        scale = float(scaler.get_scale()) if scaler is not None else None
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        previous = self.rows[-1]["scale"] if self.rows else None
        skipped = scale is not None and previous is not None and scale < previous
        logged = trainer.callback_metrics
        terms = {t: float(logged[f"train/loss_{t}"]) for t in TERMS if f"train/loss_{t}" in logged}
        self.rows.append({"step": trainer.global_step, "loss": float(loss), "scale": scale,
                          "skipped": skipped, **terms})  # fmt: skip


def run(args, precision: str, steps: int) -> tuple[list[dict], str | None]:
    """Train ``steps`` steps at ``precision`` from ``args.seed``; rows and the error, if any."""
    pl.seed_everything(args.seed, workers=True)
    generator = MixtureMaskGenerator(  # as in experiments/configs/reference_256.yaml
        [FileMaskGenerator(args.masks, resize="resize", dilation=(1, 9)),
         StrokeMaskGenerator(preset="medium")], [0.75, 0.25])  # fmt: skip
    data = PackedInpaintingDataModule(
        train=args.pack, image_size=args.size, batch_size=args.batch, num_workers=args.workers,
        mask_generator=generator, seed=args.seed,
    )  # fmt: skip
    model = InpaintingModule(
        PConvUNet(args.layers), vgg_weights=args.vgg, channels_last=True, val_lpips=None
    )
    recorder = LossRecorder()
    trainer = pl.Trainer(
        accelerator=args.device, devices=1, precision=precision, max_steps=steps,
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[recorder], limit_val_batches=0,
        num_sanity_val_steps=0,
    )  # fmt: skip
    try:
        trainer.fit(model, datamodule=data)
    except NonFiniteLossError as err:
        return recorder.rows, str(err)
    return recorder.rows, None


def summary(rows: list[dict], error: str | None, settle: int, reference: list[dict]) -> dict:
    """Finite?, skipped steps before/after ``settle``, deviation from the 32-true curve."""
    losses = np.array([r["loss"] for r in rows])
    skipped = [r["step"] for r in rows if r["skipped"]]
    result = {
        "steps": len(rows), "error": error, "all_finite": error is None
        and bool(np.isfinite(losses).all()), "skipped_steps": skipped,
        "skipped_after_settle": sum(s > settle for s in skipped),
        "final_scale": rows[-1]["scale"] if rows else None,
        "mean_loss_last_50": float(losses[-50:].mean()) if len(rows) else math.nan,
    }  # fmt: skip
    result["passed"] = bool(rows) and result["all_finite"] and not result["skipped_after_settle"]
    if reference:
        n = min(len(reference), len(rows))
        ref = np.array([r["loss"] for r in reference[:n]])
        result["compare_steps"] = n
        result["mean_abs_rel_diff_vs_32"] = float(np.mean(np.abs(losses[:n] - ref) / ref))
        last = slice(max(0, n - 50), n)  # the final losses: means of the last 50 common steps
        for key in ("loss", *TERMS):
            if all(key in r for r in rows[:n] + reference[:n]):
                mine = np.mean([r[key] for r in rows[last]])
                theirs = np.mean([r[key] for r in reference[last]])
                result[f"final_{key}_rel_diff_vs_32"] = float((mine - theirs) / theirs)
    return result


def plot_terms(curves: dict[str, list[dict]], path: Path, smooth: int = 10) -> None:
    """One figure, a panel per loss term and the total: each precision's running mean."""
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, key in zip(axes.flat, ("loss", *TERMS), strict=False):
        for name, rows in curves.items():
            values = np.array([r.get(key, np.nan) for r in rows])
            if len(values) >= smooth:
                mean = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
                ax.plot([r["step"] for r in rows][smooth - 1 :], mean, lw=1.2, label=name)
        ax.set_title("total" if key == "loss" else key)
        ax.set_yscale("log")
        ax.set_xlabel("step")
    axes.flat[0].legend()
    axes.flat[-1].axis("off")
    fig.suptitle(f"loss terms per step, same seed (running mean of {smooth})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot(curves: dict[str, list[dict]], path: Path, smooth: int = 10) -> None:
    """Every precision's total loss per step in one plot (thin), with a running mean of
    ``smooth`` steps over it (thick); skipped steps marked."""
    fig, ax = plt.subplots(figsize=(9, 5))
    for name, rows in curves.items():
        steps = np.array([r["step"] for r in rows])
        losses = np.array([r["loss"] for r in rows])
        (line,) = ax.plot(steps, losses, lw=0.6, alpha=0.35)
        if len(losses) >= smooth:
            mean = np.convolve(losses, np.ones(smooth) / smooth, mode="valid")
            ax.plot(steps[smooth - 1 :], mean, lw=1.8, color=line.get_color(), label=name)
        else:
            line.set_label(name)
        skipped = [r["step"] for r in rows if r["skipped"]]
        if skipped:
            ax.plot(skipped, [losses[steps == s][0] for s in skipped], "x",
                    color=line.get_color(), label=f"{name}: skipped step")  # fmt: skip
    ax.set_title(f"total loss per step, same seed (running mean of {smooth})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--pack", required=True, help="photo pack (or image folder)")
    parser.add_argument("--masks", required=True, help="training mask folder")
    parser.add_argument("--vgg", default=None, help="VGG16 weights (None: random, smoke only)")
    parser.add_argument("--device", default="gpu")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--compare", type=int, default=300)
    parser.add_argument("--settle", type=int, default=100)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=7)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precisions", nargs="+", default=["16-mixed", "bf16-mixed"])
    parser.add_argument("--tiny", action="store_true", help="a CPU smoke run of a few steps")
    args = parser.parse_args()
    if args.tiny:
        args.device, args.steps, args.compare, args.settle = "cpu", 4, 3, 1
        args.batch, args.size, args.layers, args.workers = 2, 32, 3, 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves, results = {}, {}
    reference, error = run(args, "32-true", args.compare)
    curves["32-true"], results["32-true"] = reference, summary(reference, error, args.settle, [])
    for precision in args.precisions:
        rows, error = run(args, precision, args.steps)
        curves[precision] = rows
        results[precision] = summary(rows, error, args.settle, reference)
    with (out / "mixed_precision.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["precision", "step", "loss", "scale", "skipped", *TERMS])
        writer.writeheader()
        for name, rows in curves.items():
            writer.writerows({"precision": name, **r} for r in rows)
    plot(curves, out / "mixed_precision.png")
    plot_terms(curves, out / "mixed_precision_terms.png")
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    # The summary last: scripts/gpu (and its test) take it as "every file is written".
    (out / "mixed_precision.json").write_text(
        json.dumps({"settings": settings, "results": results}, indent=1)
    )
    for name, result in results.items():
        verdict = "" if name == "32-true" else ("PASS " if result["passed"] else "FAIL ")
        print(verdict + name, json.dumps({k: v for k, v in result.items() if k != "skipped_steps"}),
              "skipped at", result["skipped_steps"][:20])  # fmt: skip


if __name__ == "__main__":
    main()
