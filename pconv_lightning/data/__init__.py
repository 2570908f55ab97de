"""Images from folders or litdata shards, with masks, for training and evaluation (names
imported on first use)."""

from pconv_lightning.lazy import lazy_exports

_EXPORTS = {
    "InpaintingDataModule": "pconv_lightning.data.datamodule",
    "UnreadableImageError": "pconv_lightning.data.images",
    "load_file_list": "pconv_lightning.data.filelist",
    "load_rgb": "pconv_lightning.data.images",
    "write_shards": "pconv_lightning.data.shards",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
