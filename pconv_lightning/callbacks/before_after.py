"""The validation metrics of a fit's starting weights and of its final ones, side by side."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from pconv_lightning.masks.buckets import BUCKET_NAMES

# (metric key, column label, decimals)
COLUMNS = (("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 3), ("l1_hole", "L1 hole (%)", 2))
LPIPS = ("lpips", "LPIPS", 3)


def _bucket_values(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{bucket label or "all": {metric: value}}`` from keys like ``val/psnr_10-20``."""
    table = {}
    for label, suffix in [*((b, f"_{b}") for b in BUCKET_NAMES), ("all", "")]:
        row = {key: metrics.get(f"val/{key}{suffix}", math.nan) for key, _, _ in (*COLUMNS, LPIPS)}
        if not all(math.isnan(v) for v in row.values()):
            table[label] = row
    return table


def side_by_side(before: dict[str, float], after: dict[str, float]) -> list[list[str]]:
    """Header and rows: each metric before and after, per bucket (present in either)."""
    old, new = _bucket_values(before), _bucket_values(after)
    has_lpips = any(key.startswith("val/lpips") for key in before | after)
    columns = [*COLUMNS, LPIPS] if has_lpips else list(COLUMNS)
    header = ["hole (%)"]
    for _, name, _ in columns:
        header += [f"{name} before", f"{name} after"]
    rows = [header]
    for label in [b for b in (*BUCKET_NAMES, "all") if b in old or b in new]:
        row = [label]
        for key, _, decimals in columns:
            for table in (old, new):
                value = table.get(label, {}).get(key, math.nan)
                row.append("" if math.isnan(value) else f"{value:.{decimals}f}")
        rows.append(row)
    return rows


class BeforeAfterTable(Callback):
    """Scores the starting weights and the final ones on the whole validation set and writes
    both per hole-ratio bucket, side by side, to ``<default_root_dir>/val_before_after.{md,csv}``
    at the end of the fit; the Markdown table is also printed.

    "Before" is Lightning's sanity check, which must cover every validation batch
    (``trainer.num_sanity_val_steps: -1``; otherwise a warning and no table). "After" is the
    fit's last validation, whose step the table names: the last training step when
    ``max_steps`` is a multiple of ``val_check_interval``.
    """

    def __init__(self) -> None:
        self.before: tuple[int, dict[str, float]] | None = None
        self.after: tuple[int, dict[str, float]] | None = None

    @staticmethod
    def _metrics(trainer: Trainer) -> dict[str, float]:
        return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}

    def on_sanity_check_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        ran, total = sum(trainer.num_sanity_val_batches), sum(trainer.num_val_batches)
        if ran < total:
            rank_zero_warn(
                f"BeforeAfterTable: the sanity check ran {ran} of {total} validation batches; "
                "set trainer.num_sanity_val_steps: -1 for the table before training"
            )
            return
        self.before = (trainer.global_step, self._metrics(trainer))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self.after = (trainer.global_step, self._metrics(trainer))

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.before is None or self.after is None or not trainer.is_global_zero:
            return
        (start, before), (end, after) = self.before, self.after
        rows = side_by_side(before, after)
        out = Path(trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "val_before_after.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)
        lines = [
            f"Validation before training (step {start}) and after it (step {end}): the "
            "composited output per hole-ratio bucket",
            "",
            "| " + " | ".join(rows[0]) + " |",
            "|" + "|".join("---" for _ in rows[0]) + "|",
            *("| " + " | ".join(r) + " |" for r in rows[1:]),
        ]
        text = "\n".join(lines) + "\n"
        (out / "val_before_after.md").write_text(text)
        print(f"\n{text}(written to {out / 'val_before_after.md'} and .csv)")
