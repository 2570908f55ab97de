"""Copies of a photo found from its thumbnail: each photo is kept once, the first of its copies."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pconv_lightning.data.copies import COPY_THRESHOLD, THUMB, first_of_copies, thumbnail


def test_first_of_copies_keeps_each_photo_once():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(20, 235, (2, THUMB * THUMB)).astype(np.float32)
    rows = np.stack(
        [
            a,
            a + 2,  # 0: a copy of a (2 grey levels)
            b,
            b - 5,  # 2: a copy of b, under the threshold
            a + 7,  # 0's margin is 7 > 6: another photo
            a + 1.5,  # nearest the dropped copy at 1, then a: a's copy
        ]
    )
    assert COPY_THRESHOLD == 6.0
    for chunk in (2, 512):  # the distances, block by block or at once
        original, distance = first_of_copies(rows, chunk=chunk)
        assert original.tolist() == [-1, 0, -1, 2, -1, 0]
        np.testing.assert_allclose(distance[[1, 3, 5]], [2, 5, 1.5], atol=1e-3)
        assert distance[0] == np.inf
        np.testing.assert_allclose(distance[4], 5, atol=1e-3)  # to a + 2, the nearest before
        assert distance[2] == pytest.approx(np.abs(b - rows[:2]).mean(axis=1).min(), rel=1e-5)


def test_thumbnail_sees_the_centre_square():
    wide = np.zeros((64, 128), np.uint8)
    wide[:, 32:96] = 200  # the centre square is grey 200, the sides black
    thumb = thumbnail(Image.fromarray(wide))
    assert thumb.shape == (THUMB * THUMB,) and np.all(thumb == 200)


def test_photos_of_one_group_are_never_copies_of_each_other():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(20, 235, (2, THUMB * THUMB)).astype(np.float32)
    rows = np.stack([a, a + 1, b, a + 2, b + 1])  # groups 0, 0, 0, 1, 1
    original, distance = first_of_copies(rows, groups=[0, 0, 0, 1, 1])
    assert original.tolist() == [-1, -1, -1, 1, 2]  # a + 1 stays (its group's own); a + 2 is
    np.testing.assert_allclose(distance[3:], [1, 1], atol=1e-3)  # its copy, a + 1 the nearest
    assert np.all(np.isinf(distance[:3]))  # nothing of another group before them
