"""Stopping a run whose loss became NaN or infinite, without a host sync at every step.

Reading a loss on the host (``.item()``) makes the CPU wait for the accelerator at every step,
so the next step cannot be queued while this one runs. :class:`NonFiniteWatch` keeps the
first non-finite step on the device and reads it every ``interval`` steps (1 on the CPU,
where reading costs nothing, else the trainer's ``log_every_n_steps``) and before anything is
written from the weights (a checkpoint, an export), so no file is ever written after a
non-finite step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the message names the step and the batch's files."""


@dataclass
class _Batch:
    epoch: int
    index: int
    paths: list[str]


@dataclass
class NonFiniteWatch:
    """The first step whose loss was not finite, kept on the loss's device.

    Args:
        interval: steps between host reads; None: 1 on the CPU, else the trainer's
            ``log_every_n_steps`` (see :meth:`resolve`).
    """

    interval: int | None = None
    _step: Tensor | None = None  # first non-finite global step, -1 while none
    _value: Tensor | None = None  # its loss
    _batches: dict[int, _Batch] = field(default_factory=dict)  # steps since the last read

    def resolve(self, device: torch.device, log_every_n_steps: int) -> int:
        """The read interval for a loss on ``device``."""
        if self.interval is None:
            self.interval = 1 if device.type == "cpu" else max(1, log_every_n_steps)
        return self.interval

    def record(self, loss: Tensor, step: int, epoch: int, index: int, paths: list[str]) -> None:
        """Note ``loss`` of global ``step`` on its device (no host sync)."""
        if self._step is None or self._step.device != loss.device:
            self._step = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._value = torch.zeros((), dtype=torch.float32, device=loss.device)
        hit = ~torch.isfinite(loss.detach()) & (self._step < 0)
        self._step = torch.where(hit, step, self._step)
        self._value = torch.where(hit, loss.detach().float(), self._value)
        self._batches[step] = _Batch(epoch, index, paths)

    def due(self, step: int) -> bool:
        """Whether ``step`` is a step at which to read (every ``interval``-th)."""
        return (step + 1) % (self.interval or 1) == 0

    def check(self) -> None:
        """Read the device state (one host sync); raise if a recorded loss was not finite."""
        if self._step is None:
            return
        step = int(self._step)
        if step < 0:
            self._batches.clear()
            return
        batch = self._batches.get(step, _Batch(-1, -1, []))
        paths = ", ".join(batch.paths) or "<no paths in batch>"
        raise NonFiniteLossError(
            f"loss is {float(self._value)} at global step {step} (epoch {batch.epoch}, "
            f"batch {batch.index}); files: {paths}"
        )
