"""The LightningModule: a thin wrapper that trains an injected network with the paper's loss."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.nn import functional as F

from pconv_lightning.checkpoints.network import load_init_weights
from pconv_lightning.losses import InpaintingLoss, LossWeights, composite
from pconv_lightning.memory_format import channels_last_pays
from pconv_lightning.metrics import InpaintingMetrics
from pconv_lightning.models import PConvUNet
from pconv_lightning.nonfinite import NonFiniteWatch
from pconv_lightning.vgg.features import VGG16Features
from pconv_lightning.vgg.lpips import LPIPSVGG


def adam(params) -> torch.optim.Optimizer:
    """The paper's first stage: Adam, learning rate 2e-4."""
    return torch.optim.Adam(params, lr=2e-4)


class InpaintingModule(LightningModule):
    """Trains ``net`` with :class:`InpaintingLoss`; validates and tests on the composite.

    Args:
        net: the inpainting network (default: ``PConvUNet(layers=7)``).
        loss_weights: weights of the loss terms (``--model.loss_weights.hole=6``).
        vgg_weights: VGG16 weights of the loss: ``"imagenet"`` (found offline, see
            :mod:`pconv_lightning.vgg.resolve`; ``pconv weights vgg16`` derives them), a path
            to a local VGG16 state dict, or ``None`` for random weights (timing only).
        val_lpips: VGG16 backbone of the validation and test LPIPS-VGG (``"imagenet"`` or a
            local full VGG16 state dict), or ``None`` to skip LPIPS.
        optimizer, lr_scheduler: callables that build them from the parameters.
        channels_last: run the network and the loss's VGG16 in channels-last memory format;
            None: where it trains faster (:func:`~pconv_lightning.memory_format.channels_last_pays`:
            CUDA devices with tensor cores, x86 CPUs with AVX-512), decided when a trainer
            sets the module up.
        compile: compile the network with ``torch.compile`` (``nn.Module.compile``).
        init_weights: start ``pconv fit`` from the network weights of this file (a ``.ckpt``,
            ``.safetensors``, ``.pth`` or a folder of fp16 pieces) and nothing else: the
            optimizer, step, stage and scheduler start fresh, unlike ``--ckpt_path``, which
            resumes a run (and, when given, wins: its weights are restored over these).
    """

    def __init__(
        self,
        net: PConvUNet | None = None,
        loss_weights: LossWeights | None = None,
        vgg_weights: str | None = "imagenet",
        val_lpips: str | None = "imagenet",
        optimizer: OptimizerCallable = adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        channels_last: bool | None = None,
        compile: bool = False,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(loss_weights, dict):  # as restored from a checkpoint built in Python
            loss_weights = LossWeights(**loss_weights)
        weights = loss_weights or LossWeights()
        if _given_hyperparameters.get() is None:
            # Built in Python: keep the hyperparameters plain data so checkpoints load with
            # torch.load(weights_only=True). (LightningCLI stores its config dump instead.)
            self.save_hyperparameters(ignore=["net", "loss_weights", "optimizer", "lr_scheduler"])
            self.hparams["loss_weights"] = asdict(weights)
        else:
            self.save_hyperparameters()
        self.net = net if net is not None else PConvUNet(layers=7)
        self.loss = InpaintingLoss(weights, VGG16Features(vgg_weights))
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.channels_last: bool | None = None
        self.init_weights = init_weights
        self.finite_watch = NonFiniteWatch()
        if channels_last is not None:
            self._use_channels_last(channels_last)
        if compile:
            self.net.compile()  # in place: parameter names and checkpoints stay the same
        lpips = None if val_lpips is None else LPIPSVGG(val_lpips)
        self.val_metrics = InpaintingMetrics(lpips)
        self.test_metrics = InpaintingMetrics(lpips)
        # LPIPS's weights are constant buffers: DDP need not broadcast them at every step.
        self._ddp_params_and_buffers_to_ignore = [
            name for name, _ in self.named_buffers() if name.startswith("val_metrics.lpips.")
        ]

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        """Raw network output. Shape: image (N, 3, H, W), mask (N, 1, H, W) -> (N, 3, H, W)."""
        return self.net(*self._formatted(image, mask))

    def _formatted(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``image`` and ``mask`` in channels-last format when the module runs in it."""
        if not self.channels_last:
            return image, mask
        return (
            image.contiguous(memory_format=torch.channels_last),
            mask.contiguous(memory_format=torch.channels_last),
        )

    def _inputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """The batch's image and mask, formatted once for the network and the loss alike (the
        loss's VGG16 runs bf16 convolutions on NCHW targets a quarter slower on the CPU)."""
        return self._formatted(batch["image"], batch["mask"])

    def _use_channels_last(self, on: bool) -> None:
        """Put the network and the loss's VGG16 alike in channels-last format, or not."""
        self.channels_last = on
        if on:
            self.net = self.net.to(memory_format=torch.channels_last)
            self.loss = self.loss.to(memory_format=torch.channels_last)

    def setup(self, stage: str) -> None:
        """Choose the memory format for the trainer's device when ``channels_last`` is None;
        load ``init_weights`` into the network at the start of a fit that resumes nothing."""
        if self.channels_last is None:
            self._use_channels_last(channels_last_pays(self.trainer.strategy.root_device))
        if stage == "fit" and self.init_weights and self.trainer.ckpt_path is None:
            load_init_weights(self.net, self.init_weights)
            rank_zero_info(f"network initialised from {self.init_weights} (weights only)")

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        image, mask = self._inputs(batch)
        terms = self.loss(self(image, mask), image, mask)
        watch = self.finite_watch
        watch.resolve(image.device, self.trainer.log_every_n_steps)
        watch.record(
            terms["total"],
            self.global_step,
            self.current_epoch,
            batch_idx,
            list(batch.get("path", [])),
        )
        if watch.due(self.global_step):
            watch.check()
        self.log_dict(
            {f"train/loss_{k}": v for k, v in terms.items() if k != "total"},
            batch_size=image.shape[0],
        )
        self.log("train/loss", terms["total"], prog_bar=True, batch_size=image.shape[0])
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=image.shape[0])
        return terms["total"]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to write weights trained on a non-finite loss (the file keeps its last
        good state)."""
        self.finite_watch.check()

    def on_train_epoch_end(self) -> None:
        """Log how many unreadable image files the data module has skipped so far."""
        skipped = getattr(self.trainer.datamodule, "skipped_files", None)
        if skipped is not None:
            self.log("data/skipped_files", float(len(skipped)))

    def _evaluate(self, batch: dict[str, Any], metrics: InpaintingMetrics, stage: str) -> Tensor:
        image, mask = self._inputs(batch)
        output = self(image, mask)
        terms = self.loss(output, image, mask)
        self.log(f"{stage}/loss", terms["total"], batch_size=image.shape[0], sync_dist=True)
        metrics.update(composite(output, image, mask), image, mask, batch.get("bucket"))
        return output

    def _log_metrics(self, metrics: InpaintingMetrics, stage: str) -> None:
        values = metrics.compute()
        self.log(f"{stage}/psnr", values.pop("psnr"), prog_bar=True)
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()})
        metrics.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._evaluate(batch, self.val_metrics, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        return self._evaluate(batch, self.test_metrics, "test")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """The composite: input pixels outside the holes, the prediction inside. Sides that are
        not multiples of the network's ``multiple`` are padded with holes and cropped back.

        Shape: image (N, 3, H, W), mask (N, 1, H, W) -> (N, 3, H, W).
        """
        image, mask = batch["image"], batch["mask"]
        height, width = image.shape[-2:]
        multiple = getattr(self.net, "multiple", 1)
        pad = (0, -width % multiple, 0, -height % multiple)
        output = self(F.pad(image, pad), F.pad(mask, pad))[..., :height, :width]
        return composite(output.clamp(0, 1), image, mask)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.lr_scheduler_factory(optimizer)}
