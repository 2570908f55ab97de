"""LightningCLI's ``fit``, ``validate``, ``test`` and ``predict`` for :class:`InpaintingModule`
and :class:`InpaintingDataModule`, starting from the packaged ``configs/base.yaml``.

:mod:`pconv_lightning.cli` imports this module only for those four commands, so the other
commands start without Lightning.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.imports import _RICH_AVAILABLE

from pconv_lightning.callbacks import (
    BucketMetricsTable,
    CheckpointMetricSummary,
    ImageGridLogger,
    LastCheckpoint,
    PredictionWriter,
    Stage2Finetune,
    TrainingBudget,
)
from pconv_lightning.callbacks.progress import EpochProgressBar, StepProgressBar
from pconv_lightning.checkpoints.resume import check_checkpoint_config, prepare_fit
from pconv_lightning.data import InpaintingDataModule
from pconv_lightning.errors import unwrap_union_error
from pconv_lightning.module import InpaintingModule
from pconv_lightning.precision import default_precision
from pconv_lightning.scoring import output_dir, with_run_config

SUBCOMMANDS = ("fit", "validate", "test", "predict")
BASE_CONFIG = resources.files("pconv_lightning.configs") / "base.yaml"
_WANDB = "lightning.pytorch.loggers.WandbLogger"
_FOLLOW_ROOT = (_WANDB, "lightning.pytorch.loggers.CSVLogger")


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` to the log dir and the full resolved config into the W&B run; a
    scoring command saves its own to ``<default_root_dir>/<command>/config.yaml`` instead, so
    it never replaces the training run's."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" or self.already_saved:
            super().setup(trainer, pl_module, stage)
            return
        if trainer.is_global_zero:
            folder = Path(output_dir(trainer.default_root_dir, getattr(stage, "value", stage)))
            folder.mkdir(parents=True, exist_ok=True)
            path = str(folder / self.config_filename)
            self.parser.save(self.config, path, skip_none=False, overwrite=True)
            self.save_config(trainer, pl_module, stage)
        self.already_saved = trainer.strategy.broadcast(True)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        config = json.loads(self.parser.dump(self.config, skip_none=False, format="json"))
        data = config.get("data")
        if isinstance(data, dict) and "init_args" in data:  # flat W&B keys: data.image_size
            config["data"] = {"class_path": data["class_path"], **data["init_args"]}
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update({"cli": config}, allow_val_change=True)


def _checkpoint_dir(root: str) -> str:
    return str(Path(root) / "checkpoints")


def _loggers(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [value] if value is not None and not isinstance(value, bool) else []


class PConvCLI(LightningCLI):
    """LightningCLI with the project's model and data module.

    Callbacks every run has, configured under their own keys and writing under
    ``trainer.default_root_dir``: ``best_checkpoint`` (best by ``val/psnr``),
    ``last_checkpoint`` (:class:`LastCheckpoint`: the one ``last.ckpt``, always the newest),
    ``image_grid``, ``bucket_table``, ``budget`` (:class:`TrainingBudget`), ``stage2`` (:class:`Stage2Finetune`, idle until
    ``stage2.at_step`` or ``at_epoch``) and ``prediction_writer`` (``pconv predict``).
    A W&B or CSV logger's ``save_dir`` follows ``trainer.default_root_dir`` (``<default_root_dir>/<command>``
    for validate, test and predict).
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "best_checkpoint")
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.set_defaults(
            {
                "best_checkpoint.save_last": False,  # last.ckpt is last_checkpoint's alone
                "best_checkpoint.monitor": "val/psnr",
                "best_checkpoint.mode": "max",
                "best_checkpoint.save_top_k": 1,
                "best_checkpoint.filename": "best-{epoch:03d}-{step:07d}",
                "best_checkpoint.auto_insert_metric_name": False,
            }
        )
        for key in ("last_checkpoint", "best_checkpoint"):
            parser.link_arguments(
                "trainer.default_root_dir", f"{key}.dirpath", compute_fn=_checkpoint_dir
            )
        parser.add_lightning_class_args(ImageGridLogger, "image_grid")
        parser.add_lightning_class_args(BucketMetricsTable, "bucket_table")
        parser.add_lightning_class_args(Stage2Finetune, "stage2")
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")
        parser.add_lightning_class_args(CheckpointMetricSummary, "metric_summary")
        parser.add_lightning_class_args(TrainingBudget, "budget")

    def before_instantiate_classes(self) -> None:
        """Point W&B at ``default_root_dir``; choose the training precision when none is
        given (:func:`default_precision`); refuse evaluation commands without weights."""
        config = self.config[self.subcommand]
        trainer = config.trainer
        if self.subcommand == "fit" and trainer.precision is None:
            precision, notice = default_precision(trainer.accelerator)
            trainer.precision = precision
            if notice:
                rank_zero_info(notice)
        for logger in _loggers(trainer.logger):
            if getattr(logger, "class_path", None) in _FOLLOW_ROOT:
                save_dir = output_dir(trainer.default_root_dir, self.subcommand)
                logger.init_args.save_dir = save_dir
                # W&B finds the run's git commit from its folder, which must exist by then.
                Path(save_dir).mkdir(parents=True, exist_ok=True)
        if self.subcommand != "fit" and not config.get("ckpt_path"):
            self.parser.error(
                f"pconv {self.subcommand} needs --ckpt_path: a checkpoint file, or `last` for "
                f"{_checkpoint_dir(trainer.default_root_dir)}/last.ckpt (without one the "
                "untrained network would be scored)"
            )

    def instantiate_classes(self) -> None:
        """LightningCLI's, with a class's own bad-argument error as one :class:`ConfigError`."""
        try:
            super().instantiate_classes()
        except ValueError as err:
            raise unwrap_union_error(err) from err

    def _parse_ckpt_path(self) -> None:
        check_checkpoint_config(self.config)  # before Lightning merges the checkpoint's hparams
        super()._parse_ckpt_path()

    def before_fit(self) -> None:
        prepare_fit(self.trainer, self.model, self.config.fit.get("ckpt_path"))

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Add :class:`EpochProgressBar` (:class:`StepProgressBar` without ``rich``) unless the
        bar is off or another one is configured."""
        trainer = self._get(self.config_init, "trainer", default={})
        callbacks = list(trainer.get("callbacks") or [])
        has_bar = any(isinstance(c, ProgressBar) for c in callbacks)
        if trainer.get("enable_progress_bar") is not False and not has_bar:
            bar = EpochProgressBar() if _RICH_AVAILABLE else StepProgressBar()
            kwargs["callbacks"] = [*callbacks, bar]
        built = super().instantiate_trainer(**kwargs)
        for logger in built.loggers:
            if isinstance(logger, WandbLogger) and logger._wandb_init.get("anonymous") is None:
                # Lightning always passes `anonymous`; W&B warns that the setting is obsolete.
                logger._wandb_init.pop("anonymous", None)
        return built

    def after_fit(self) -> None:
        """Say where the results are (W&B prints its own sync command for offline runs)."""
        root = Path(self.trainer.default_root_dir)
        print(f"results in {root}/: checkpoints/, samples/, val_metrics_by_bucket.md")


class _DropTips(logging.Filter):
    """Lightning's advertisement for its cloud logger, a line that tells a user nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropTips())


def run(args: list[str] | None = None) -> PConvCLI:
    """Run a Lightning subcommand with ``args`` (``None``: ``sys.argv[1:]``); a scoring
    command given a run's checkpoint reads the run's ``config.yaml`` first
    (:func:`~pconv_lightning.scoring.with_run_config`)."""
    args = with_run_config(list(sys.argv[1:] if args is None else args))
    with resources.as_file(BASE_CONFIG) as base, warnings.catch_warnings():
        # Messages that tell a user nothing: args are given on purpose (in-process callers such
        # as `pconv ablate` and notebooks); VGG16 is frozen in eval mode by design (and so is
        # the encoder's BatchNorm in stage 2); Lightning's own use of a torch API it deprecates.
        for message in (
            "LightningCLI's args parameter",
            r"Found \d+ module\(s\) in eval mode at the start of training",
            r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        ):
            warnings.filterwarnings("ignore", message)
        return PConvCLI(
            InpaintingModule,
            InpaintingDataModule,
            subclass_mode_data=True,  # `data: {class_path: ...}` may pick a subclass (packed data)
            save_config_callback=LoggerSaveConfigCallback,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={cmd: {"default_config_files": [str(base)]} for cmd in SUBCOMMANDS},
            args=args,
            auto_configure_optimizers=False,
        )
