"""Checkpoint files: a trained network read without pickle and saved as safetensors
(:mod:`~pconv_lightning.checkpoints.network`), atomic writes of Lightning checkpoints
(:mod:`~pconv_lightning.checkpoints.atomic`), the checks before ``pconv fit --ckpt_path``
resumes (:mod:`~pconv_lightning.checkpoints.resume`), fp16 weights in pieces
(:mod:`~pconv_lightning.checkpoints.pieces`) and the released model's path
(:mod:`~pconv_lightning.checkpoints.reference`). Names are imported on first use: the
commands' ``--help`` imports the reference path without torch."""

from pconv_lightning.lazy import lazy_exports

_EXPORTS = {
    "AtomicCheckpointIO": "pconv_lightning.checkpoints.atomic",
    "UnsafeCheckpointError": "pconv_lightning.checkpoints.network",
    "checkpoint_or_reference": "pconv_lightning.checkpoints.reference",
    "load_network": "pconv_lightning.checkpoints.network",
    "save_network": "pconv_lightning.checkpoints.network",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
