"""``pconv predict``'s inputs: whole images of a folder, each with its mask (matched by stem)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pconv_lightning.data.images import load_rgb
from pconv_lightning.data.mask_pairs import InputError, image_files, match_masks, missing_message
from pconv_lightning.masks.io import load_mask


class PredictFolder(Dataset):
    """Items ``image`` float32 ``(3, H, W)`` in [0, 1] at the file's own size, ``mask``
    float32 ``(1, H, W)`` (1 = valid; on disk white = hole) and ``path``.

    Every image needs a mask of its size: a missing or mis-sized one is an error naming it.
    """

    def __init__(self, images: str, masks: str) -> None:
        files = image_files(Path(images), "data.predict")
        self.pairs, missing = match_masks(files, Path(masks), "data.predict_masks")
        if missing:
            raise InputError(missing_message(missing, Path(masks)))

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_path, mask_path = self.pairs[index]
        rgb = np.asarray(load_rgb(image_path))
        valid = load_mask(mask_path)
        if valid.shape != rgb.shape[:2]:
            raise InputError(
                f"mask {mask_path} is {valid.shape[1]}x{valid.shape[0]} but image {image_path} "
                f"is {rgb.shape[1]}x{rgb.shape[0]} (width x height); they must match"
            )
        return {
            "image": torch.from_numpy(rgb.transpose(2, 0, 1).copy()).float().div(255),
            "mask": torch.from_numpy(valid).float().unsqueeze(0),
            "path": str(image_path),
        }
