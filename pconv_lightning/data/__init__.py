"""Images from folders or litdata shards, with masks, for training and evaluation."""

from pconv_lightning.data.datamodule import InpaintingDataModule
from pconv_lightning.data.filelist import load_file_list
from pconv_lightning.data.images import UnreadableImageError, load_rgb
from pconv_lightning.data.shards import write_shards

__all__ = [
    "InpaintingDataModule",
    "UnreadableImageError",
    "load_file_list",
    "load_rgb",
    "write_shards",
]
