"""The ``pconv`` command: LightningCLI's ``fit``, ``validate``, ``test`` and ``predict`` for
:class:`InpaintingModule` and :class:`InpaintingDataModule`, plus the tools ``masks`` and
``shards``.

Tests and notebooks call :func:`cli_main` in-process with a list of arguments.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from pconv_lightning.app import main as app_main
from pconv_lightning.callbacks import BucketMetricsTable, ImageGridLogger, Stage2Finetune
from pconv_lightning.data import InpaintingDataModule
from pconv_lightning.data.shards import main as shards_main
from pconv_lightning.errors import report_errors
from pconv_lightning.evaluation.ablation import main as ablate_main
from pconv_lightning.evaluation.command import main as evaluate_main
from pconv_lightning.export import main as export_main
from pconv_lightning.inference.command import main as inpaint_main
from pconv_lightning.masks.commands import main as masks_main
from pconv_lightning.module import InpaintingModule
from pconv_lightning.resume import check_checkpoint_config, prepare_fit

TOOLS: dict[str, Callable[[list[str]], int]] = {
    "masks": masks_main,
    "shards": shards_main,
    "inpaint": inpaint_main,
    "export": export_main,
    "app": app_main,
    "evaluate": evaluate_main,
    "ablate": ablate_main,
}
SUBCOMMANDS = ("fit", "validate", "test", "predict")
# Every subcommand starts from the repository's base config; --config files only override.
_BASE = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "base.yaml"
BASE_CONFIGS = [str(_BASE)] if _BASE.is_file() else []


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` to the log dir and the full resolved config into the W&B run."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        config = json.loads(self.parser.dump(self.config, skip_none=False, format="json"))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update({"cli": config}, allow_val_change=True)


def _checkpoint_dir(root: str) -> str:
    return str(Path(root) / "checkpoints")


class PConvCLI(LightningCLI):
    """LightningCLI with the project's model and data module.

    Callbacks every run has, configured under their own keys and writing under
    ``trainer.default_root_dir``: ``last_checkpoint`` (``last.ckpt`` every N steps; ``best_checkpoint``
    also refreshes it after each validation), ``best_checkpoint`` (best by ``val/psnr``), ``image_grid``, ``bucket_table``
    and ``stage2`` (:class:`Stage2Finetune`, idle until ``stage2.at_step`` or ``at_epoch``).
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "best_checkpoint")
        parser.set_defaults(
            {
                "last_checkpoint.save_last": True,
                "last_checkpoint.save_top_k": 0,
                "last_checkpoint.every_n_train_steps": 500,
                "best_checkpoint.save_last": True,  # last.ckpt also after each validation
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

    def _parse_ckpt_path(self) -> None:
        check_checkpoint_config(self.config)  # before Lightning merges the checkpoint's hparams
        super()._parse_ckpt_path()

    def before_fit(self) -> None:
        prepare_fit(self.trainer, self.model, self.config.fit.get("ckpt_path"))

    def after_fit(self) -> None:
        """Say where the results are (W&B prints its own sync command for offline runs)."""
        root = Path(self.trainer.default_root_dir)
        print(f"results in {root}/: checkpoints/, samples/, val_metrics_by_bucket.md")


def cli_main(args: list[str] | None = None) -> PConvCLI | int:
    """Run ``pconv`` with ``args`` (default: ``sys.argv[1:]``).

    Returns the CLI object for Lightning subcommands (its ``trainer``, ``model`` and
    ``datamodule`` are there to inspect) and the exit code for the tools.
    """
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] in TOOLS:
        return TOOLS[argv[0]](argv[1:])
    return PConvCLI(
        InpaintingModule,
        InpaintingDataModule,
        save_config_callback=LoggerSaveConfigCallback,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={cmd: {"default_config_files": BASE_CONFIGS} for cmd in SUBCOMMANDS},
        args=argv,
        auto_configure_optimizers=False,
    )


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    result = report_errors(cli_main, f"pconv {argv[0] if argv else ''}".strip())
    if isinstance(result, int):
        sys.exit(result)
