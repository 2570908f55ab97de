"""pconv-lightning: image inpainting with partial convolutions (Liu et al., ECCV 2018)."""

__version__ = "0.1.0"
