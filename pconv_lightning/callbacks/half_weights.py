"""Bring the latest weights home often: fp16 safetensors pieces every few minutes of training.

A GPU machine can be lost mid-run; a poller that copies the newest pieces away (at most 16 MB
each) then loses minutes, not the run. Each export goes to ``dirpath/step-NNNNNNN/`` and only
then is ``dirpath/LATEST`` replaced (atomically) by that folder's name, so a reader never sees a
half-written export; older exports beyond ``keep`` are deleted.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from pconv_lightning.callbacks.budget import TrainingBudget
from pconv_lightning.checkpoints.pieces import half_state, save_pieces


class HalfWeightsExport(Callback):
    """Exports ``pl_module.net`` as fp16 pieces every ``every_seconds`` and at the end of fit.

    Args:
        dirpath: where the ``step-*`` folders and ``LATEST`` go (default:
            ``<trainer.default_root_dir>/weights``).
        every_seconds: training wall time between exports.
        piece_mb: most tensor data per piece, in MB (10**6 bytes).
        keep: exports kept on disk (the newest ones).
    """

    def __init__(
        self,
        dirpath: str | None = None,
        every_seconds: float = 120.0,
        piece_mb: float = 15.0,
        keep: int = 2,
    ) -> None:
        if every_seconds <= 0 or piece_mb <= 0 or keep < 1:
            raise ValueError(
                f"every_seconds and piece_mb must be > 0 and keep >= 1, got "
                f"{every_seconds}, {piece_mb}, {keep}"
            )
        self.dirpath = None if dirpath is None else Path(dirpath)
        self.every_seconds = every_seconds
        self.piece_bytes = int(piece_mb * 1e6)
        self.keep = keep
        self._start = self._last = 0.0

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = Path(trainer.default_root_dir) / "weights"

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = self._last = time.monotonic()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args) -> None:
        if time.monotonic() - self._last >= self.every_seconds:
            self.export(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.export(trainer, pl_module)

    def export(self, trainer: Trainer, pl_module: LightningModule) -> Path | None:
        """Write one export now (global rank 0 only); returns its folder, or None where nothing
        was written (another rank, or weights that are not all finite)."""
        self._last = time.monotonic()
        if not trainer.is_global_zero:
            return None
        step = trainer.global_step
        folder = self.dirpath / f"step-{step:07d}"
        if folder.exists():  # this step is exported already (the end of fit right after one)
            return folder
        state = pl_module.net.state_dict()
        floats = [torch.isfinite(v).all() for v in state.values() if v.is_floating_point()]
        if floats and not bool(torch.stack(floats).all()):
            rank_zero_warn(f"step {step}: the network's weights are not all finite; not exported")
            return None
        spent = next((c for c in trainer.callbacks if isinstance(c, TrainingBudget)), None)
        batch = getattr(trainer.datamodule, "hparams", {}).get("batch_size", 0)
        info = {
            "step": step,
            "epoch": trainer.current_epoch,
            "images_seen": spent.images if spent else step * batch * trainer.world_size,
            "images_seen_by_size": {str(k): n for k, n in spent.counts.items()} if spent else {},
            "wall_s": round(spent.wall_seconds if spent else self._last - self._start, 1),
            "precision": str(trainer.precision),
            "dtype": "float16",
        }
        save_pieces(half_state(state), folder, self.piece_bytes, info)
        pointer = self.dirpath / "LATEST.tmp"
        pointer.write_text(folder.name)
        os.replace(pointer, self.dirpath / "LATEST")
        for old in sorted(self.dirpath.glob("step-*"))[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return folder
