"""Callbacks of the training suite."""

from pconv_lightning.callbacks.before_after import BeforeAfterTable
from pconv_lightning.callbacks.bucket_table import BucketMetricsTable
from pconv_lightning.callbacks.budget import TrainingBudget
from pconv_lightning.callbacks.freeze_bn import FreezeBatchNorm
from pconv_lightning.callbacks.image_grid import ImageGridLogger, result_grid
from pconv_lightning.callbacks.last_checkpoint import LastCheckpoint
from pconv_lightning.callbacks.prediction_writer import PredictionWriter
from pconv_lightning.callbacks.progress import EpochProgressBar
from pconv_lightning.callbacks.stage2 import Stage2Finetune
from pconv_lightning.callbacks.wandb_summary import CheckpointMetricSummary

__all__ = [
    "BeforeAfterTable",
    "BucketMetricsTable",
    "CheckpointMetricSummary",
    "EpochProgressBar",
    "FreezeBatchNorm",
    "ImageGridLogger",
    "LastCheckpoint",
    "PredictionWriter",
    "Stage2Finetune",
    "TrainingBudget",
    "result_grid",
]
