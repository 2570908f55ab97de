"""The reference model released with the project, ``weights/reference_256.safetensors`` (model
card: ``weights/README.md``): what ``pconv inpaint``, ``pconv app`` and ``pconv evaluate`` use
when no ``--checkpoint`` is given. It lives in the checkout, beside the package; a wheel
installed elsewhere does not carry it. Torch-free: the commands' ``--help`` imports this."""

from __future__ import annotations

from pathlib import Path

from pconv_lightning.errors import MissingInputError

REFERENCE_WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "reference_256.safetensors"


def reference_weights() -> Path | None:
    """The released weights' path, or None when this checkout has none."""
    return REFERENCE_WEIGHTS if REFERENCE_WEIGHTS.is_file() else None


def checkpoint_or_reference(checkpoint: Path | None) -> Path:
    """``checkpoint`` when given, else the released weights, else an error saying what to pass."""
    if checkpoint is not None:
        return checkpoint
    if (path := reference_weights()) is not None:
        return path
    raise MissingInputError(
        f"no --checkpoint given and there is no reference model at {REFERENCE_WEIGHTS} (it is "
        "released in a project checkout, not in an installed wheel): pass --checkpoint with a "
        ".ckpt, .pth, .safetensors or .onnx file, e.g. "
        "outputs/quickstart/checkpoints/last.ckpt after `make quickstart`"
    )
