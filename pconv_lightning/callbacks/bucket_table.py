"""Writes the validation metrics per hole-ratio bucket as Markdown and CSV tables."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer

from pconv_lightning.masks.buckets import BUCKET_NAMES

METRICS = ("psnr", "ssim", "l1", "l1_hole", "lpips")


def bucket_rows(metrics: dict[str, float], stage: str) -> list[list[str]]:
    """One row per bucket present in ``metrics`` (keys like ``val/psnr_10-20``) plus 'all'."""
    rows = []
    for label, suffix in [*((lb, f"_{lb}") for lb in BUCKET_NAMES), ("all", "")]:
        values = [metrics.get(f"{stage}/{m}{suffix}", math.nan) for m in METRICS]
        if not all(math.isnan(v) for v in values):
            rows.append([label, *(f"{v:.4f}" for v in values)])
    return rows


class BucketMetricsTable(Callback):
    """After each validation (and test) run, on rank 0, writes
    ``<default_root_dir>/<stage>_metrics_by_bucket.{md,csv}``."""

    def _write(self, trainer: Trainer, stage: str) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        rows = bucket_rows(metrics, stage)
        if not rows:
            return
        out = Path(trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        header = ["hole (%)", "PSNR (dB)", "SSIM", "L1 (%)", "L1 hole (%)", "LPIPS"]
        with open(out / f"{stage}_metrics_by_bucket.csv", "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
        when = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        if stage != "val" and trainer.ckpt_path:  # a scoring run: its step is the checkpoint's
            when = f"checkpoint {trainer.ckpt_path}"
        lines = [
            f"{stage} metrics at {when} "
            "(composited output; SSIM: torchmetrics, Gaussian 11x11, sigma 1.5)",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows),
        ]
        (out / f"{stage}_metrics_by_bucket.md").write_text("\n".join(lines) + "\n")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write(trainer, "val")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._write(trainer, "test")
