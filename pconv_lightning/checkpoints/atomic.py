"""Checkpoints that a kill cannot destroy: write beside the target, then rename.

Lightning's :class:`TorchCheckpointIO` writes through an fsspec transaction whose temporary
file lives in ``TMPDIR``; on another filesystem than the run directory the final step is a
copy, and a kill during it leaves a truncated ``last.ckpt`` (and the temporary file). Here the
temporary file is created in the target's own directory (same filesystem), flushed and
fsynced, then :func:`os.replace` d onto the target: the rename is atomic, so the target is at
every moment either the previous complete checkpoint or the new complete one. A kill leaves
at most the one temporary file that was being written; the next start sweeps such leftovers
from a directory before its first save or load there, and logs what it removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

log = logging.getLogger(__name__)
TEMP_SUFFIX = ".pconv-partial"  # temporary files: .<target name>.<random>.pconv-partial


def sweep_partial(directory: str | Path) -> list[Path]:
    """Delete the temporary files that killed saves left in ``directory``; return them."""
    removed = []
    for stale in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            removed.append(stale)
    if removed:
        names = ", ".join(p.name for p in removed)
        log.warning(f"removed {len(removed)} partial checkpoint(s) left by a killed save: {names}")
    return removed


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power loss
    finally:
        os.close(directory)


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`TorchCheckpointIO` with atomic local saves (see the module docstring).
    Remote paths (``s3://`` ...) go through Lightning's own saving."""

    def __init__(self) -> None:
        super().__init__()
        self._swept: set[Path] = set()

    def _sweep_once(self, path: str | Path) -> None:
        directory = Path(path).parent.resolve()
        if directory not in self._swept and directory.is_dir():
            sweep_partial(directory)
        self._swept.add(directory)

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        self._sweep_once(path)
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if "://" not in str(path):
            self._sweep_once(path)
        return super().load_checkpoint(path, *args, **kwargs)
