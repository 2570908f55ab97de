"""How a run stops on SIGTERM: every rank after the same step, ``last.ckpt`` saved, exit 143.

A node that is preempted, or a ``kill`` of one node's ``torchrun``, signals only that node's
processes. Lightning's own SIGTERM handler runs a collective inside the signal handler, which
pairs with whatever collective the other ranks run next: the signalled rank stops alone and the
others crash on a closed connection, with no checkpoint. Here the handler only notes the
signal; after every training step the ranks agree (one all-reduce of a flag) and, if any was
signalled, all of them set Lightning's flag, so every rank ends the same step, the
:class:`~pconv_lightning.callbacks.LastCheckpoint` saves, and all exit.

Lightning ends a stopped run with a ``SystemExit`` of status 0, as if it had finished; here its
status is 143 (128 + SIGTERM, as a process killed by the signal), so ``torchrun`` ends the node
at once instead of waiting for the other nodes' agents to finish, and a script or a Slurm job
can tell a stopped run (resume it with ``--ckpt_path last``) from a finished one.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException

STOPPED = 128 + signal.SIGTERM  # the exit status of a run stopped by SIGTERM


class SigtermStop(Callback):
    """SIGTERM on one rank stops all ranks after the same step; the run exits with 143."""

    def __init__(self) -> None:
        self.signalled = False
        self._active = False  # the handler is installed (a run of several processes)
        self._previous: Any = None

    def _note(self, signum: int, frame: Any) -> None:
        self.signalled = True

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.world_size > 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._note)
            self._active = True

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        if not self._active:
            return
        flag = torch.tensor([float(self.signalled)], device=pl_module.device)
        if trainer.strategy.reduce(flag, reduce_op="max").item():
            # what Lightning's handler sets: the loop ends this step and raises SIGTERMException
            trainer._signal_connector.received_sigterm = True

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException):
            exception.code = STOPPED

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._active:
            signal.signal(signal.SIGTERM, self._previous)
            self._active = False
