"""Several "nodes" on this machine: one ``torchrun`` per node, each with its own HOME, all on
127.0.0.1, and a callback that records what every rank trained on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from local_net import free_port
from training_helpers import REPO

from pconv_lightning.vgg.derive import weights_dir

TESTS = Path(__file__).resolve().parent
SPLIT = REPO / "scripts" / "gpu" / "split_masks.py"
MASKS = ".cache/pconv_lightning/masks"  # the split's place in each node's HOME


def node_env(home: Path) -> dict[str, str]:
    """A node's environment: its own HOME (and so its own caches) and temporary folder
    ``HOME/tmp`` (created here), the derived VGG16 weights,
    offline W&B with a W&B service of its own, one thread per process, the tests folder
    importable. A W&B service this test process started (``WANDB_SERVICE``, inherited) is not
    passed on: separate machines share none, and a run stopped by SIGTERM leaves its stream
    open there, so the resumed run's id would be "in use"."""
    private = ("PCONV_CACHE_DIR", "XDG_CACHE_HOME")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in private and not k.startswith("WANDB_SERVICE")
    }
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env | {
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "PCONV_WEIGHTS_DIR": str(weights_dir()),
        "WANDB_MODE": "offline",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]),
    }


def start_nodes(
    tmp: Path, masks: Path, fit_args: list[str], nodes: int = 2, per_node: int = 1
) -> list[subprocess.Popen]:
    """Start every node at once: each splits ``masks`` into its HOME's cache, then execs
    ``torchrun ... -m pconv_lightning fit FIT_ARGS`` (so a signal to the node reaches
    torchrun). Output goes to ``tmp/node<r>.log``."""
    port = free_port()
    processes = []
    for rank in range(nodes):
        home = tmp / f"node{rank}" / "home"
        home.mkdir(parents=True, exist_ok=True)
        split = [
            sys.executable,
            str(SPLIT),
            str(masks),
            f"{home}/{MASKS}/train",
            f"{home}/{MASKS}/eval",
        ]
        torchrun = [
            sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}",
            f"--node_rank={rank}", f"--nproc_per_node={per_node}", "--master_addr=127.0.0.1",
            f"--master_port={port}", "-m", "pconv_lightning", "fit", *fit_args,
        ]  # fmt: skip
        script = f"{subprocess.list2cmdline(split)} && exec {subprocess.list2cmdline(torchrun)}"
        log = open(tmp / f"node{rank}.log", "a")  # noqa: SIM115 - the child keeps it
        processes.append(
            subprocess.Popen(
                ["bash", "-c", script], cwd=tmp, env=node_env(home), stdout=log, stderr=log
            )
        )
    return processes


def wait_all(processes: list[subprocess.Popen], timeout: float) -> list[int]:
    """The nodes' exit codes; kills every node left when ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


def read_log(folder: Path, rank: int) -> list[dict[str, Any]]:
    """The records :class:`RankLog` wrote for global rank ``rank``."""
    path = folder / f"rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


class RankLog(Callback):
    """Per global rank, appends to ``folder/rank<R>.jsonl`` a ``start`` record (step, epoch, the
    data module's position) and one ``batch`` record per training batch (step after it, epoch,
    paths). At step 0 it saves ``folder/first-rank<R>.pt``: the network before the step, the
    batch, the gradients the optimizer steps with, the network after the step.

    ``pause_at``: after that step every rank waits until ``folder/go`` exists (then 2 s more),
    so a test can signal a node at a known step.
    """

    def __init__(self, folder: str, pause_at: int | None = None) -> None:
        self.folder = Path(folder)
        self.pause_at = pause_at
        self.first: dict[str, Any] = {}

    def _write(self, trainer: Trainer, **record: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        position = list(getattr(trainer.datamodule, "position", ()))
        step, epoch = trainer.global_step, trainer.current_epoch
        self._write(trainer, event="start", step=step, epoch=epoch, position=position)

    @staticmethod
    def _net(pl_module: LightningModule) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == 0:
            self.first = {"before": self._net(pl_module), "image": batch["image"].clone()}
            self.first["mask"] = batch["mask"].clone()

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Any
    ) -> None:
        if trainer.global_step == 0:
            grads = {n: p.grad.clone() for n, p in pl_module.net.named_parameters()}
            self.first["grads"] = grads

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, *args: Any
    ) -> None:
        step = trainer.global_step
        if step == 1 and self.first:
            self.first["after"] = self._net(pl_module)
            torch.save(self.first, self.folder / f"first-rank{trainer.global_rank}.pt")
        epoch, paths = trainer.current_epoch, [Path(p).name for p in batch["path"]]
        self._write(trainer, event="batch", step=step, epoch=epoch, paths=paths)
        if step == self.pause_at:
            while not (self.folder / "go").exists():
                time.sleep(0.1)
            time.sleep(2.0)
