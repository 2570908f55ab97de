"""Callbacks of the training suite."""

from pconv_lightning.callbacks.bucket_table import BucketMetricsTable
from pconv_lightning.callbacks.image_grid import ImageGridLogger, result_grid
from pconv_lightning.callbacks.stage2 import Stage2Finetune

__all__ = ["BucketMetricsTable", "ImageGridLogger", "Stage2Finetune", "result_grid"]
