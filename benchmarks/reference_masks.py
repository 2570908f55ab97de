"""reference_256.yaml's training masks (the NVIDIA file masks mixed with strokes) with the mask
files read from another folder: the GPU host's ``.gpu/masks_train`` or the shared test masks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pconv_lightning.masks import MaskGenerator

REPO = Path(__file__).resolve().parents[1]
REFERENCE_256 = REPO / "experiments" / "configs" / "reference_256.yaml"
SHARED_MASKS = REPO.parent / "shared" / "data" / "nvidia_irregular_masks_test"
STROKES = {"class_path": "pconv_lightning.masks.StrokeMaskGenerator"}


def mask_spec(masks: str | Path | None) -> dict[str, Any]:
    """The config's ``data.mask_generator`` with every file generator reading ``masks``;
    strokes alone (``StrokeMaskGenerator``'s defaults) when ``masks`` is None."""
    if masks is None:
        return dict(STROKES)
    config = yaml.safe_load(REFERENCE_256.read_text())
    spec = copy.deepcopy(config["data"]["init_args"]["mask_generator"])
    for generator in spec["init_args"]["generators"]:
        if generator["class_path"].endswith(".FileMaskGenerator"):
            generator["init_args"]["root"] = str(masks)
    return spec


def mask_generator(masks: str | Path | None) -> MaskGenerator:
    """:func:`mask_spec` instantiated as ``pconv fit`` does (jsonargparse)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--masks", type=MaskGenerator)
    config = parser.parse_object({"masks": mask_spec(masks)})
    return parser.instantiate_classes(config).masks
