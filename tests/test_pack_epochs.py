"""Long epochs over a photo pack: ``repeats`` passes per epoch, each photo with new masks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from training_helpers import SAMPLES

from pconv_lightning.data.masking import TrainMasks
from pconv_lightning.data.pack import build_pack
from pconv_lightning.data.packed import PackedInpaintingDataModule, PackMaskDataset
from pconv_lightning.masks import StrokeMaskGenerator


def test_a_repeated_pack_gives_each_photo_every_pass_with_its_own_mask():
    masks = TrainMasks(StrokeMaskGenerator(), seed=3)
    dataset = PackMaskDataset(["a", "b", "c"], masks, 32, repeats=4)
    assert len(dataset) == 12
    items = [dataset[(1, k)] for k in range(12)]
    assert [i["index"] for i in items] == [0, 1, 2] * 4
    assert [i["path"] for i in items] == ["a", "b", "c"] * 4
    for k, item in enumerate(items):  # mask k of epoch 1, whatever the photo
        np.testing.assert_array_equal(item["mask"][0].numpy(), masks(k, 1, 32, 32).mask)
    assert not np.array_equal(items[0]["mask"].numpy(), items[3]["mask"].numpy())
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        PackMaskDataset(["a"], masks, 32, repeats=0)


def test_an_epoch_of_a_repeated_pack_draws_every_photo_that_many_times(tmp_path):
    build_pack(SAMPLES / "train", tmp_path / "p.pack", size=32, fmt="png")
    data = PackedInpaintingDataModule(
        train=str(tmp_path / "p.pack"), image_size=32, batch_size=4, num_workers=0, repeats=3
    )
    data.setup("fit")
    photos = data.pack.shape[0]
    seen = Counter()
    for batch in data.train_dataloader():
        seen.update(batch["index"].tolist())
    assert len(seen) == photos and set(seen.values()) <= {2, 3}  # drop_last: the last few
    assert sum(seen.values()) == (3 * photos) // 4 * 4
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        PackedInpaintingDataModule(train=str(tmp_path / "p.pack"), repeats=0)
