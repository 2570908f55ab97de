"""Fine-tuning with batches too small for batch statistics: every BatchNorm of the network
keeps the running statistics its weights were trained with."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn


class FreezeBatchNorm(Callback):
    """Puts every BatchNorm of ``pl_module.net`` in eval mode before each training batch (after
    Lightning's ``.train()`` at epoch starts and after validation): normalisation by the stored
    running statistics, which stay unchanged; the affine weights still train. The paper's stage
    2 freezes only the encoder's; with a batch of 2 the decoder's statistics of each batch are
    noise that the running averages would take in."""

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        for module in pl_module.net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
