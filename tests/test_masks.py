"""Mask generators: output contract, determinism across processes, ratios, buckets, polarity."""

from __future__ import annotations

import hashlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from pconv_lightning.masks import (
    BoxMaskGenerator,
    HoleRatioConstraint,
    MaskGenerator,
    MixtureMaskGenerator,
    RandomShapesMaskGenerator,
    StrokeMaskGenerator,
    mask_rng,
)
from pconv_lightning.masks.buckets import hole_ratio, ratio_bucket, touches_border
from pconv_lightning.masks.io import load_mask, save_mask

GENERATORS = {
    "shapes": "RandomShapesMaskGenerator()",
    "thin": "StrokeMaskGenerator('thin')",
    "medium": "StrokeMaskGenerator('medium')",
    "thick": "StrokeMaskGenerator('thick')",
    "boxes": "BoxMaskGenerator()",
    "mixture": "MixtureMaskGenerator([BoxMaskGenerator(), StrokeMaskGenerator('thin')], [1, 2])",
    "constrained": "HoleRatioConstraint(StrokeMaskGenerator('thick'), 0.1, 0.3)",
}
NAMESPACE = {
    "BoxMaskGenerator": BoxMaskGenerator,
    "HoleRatioConstraint": HoleRatioConstraint,
    "MixtureMaskGenerator": MixtureMaskGenerator,
    "RandomShapesMaskGenerator": RandomShapesMaskGenerator,
    "StrokeMaskGenerator": StrokeMaskGenerator,
}
DIGEST_SCRIPT = """
import hashlib, sys
from pconv_lightning.masks import *
for expr in sys.argv[1:]:
    g = eval(expr)
    h = hashlib.sha256()
    for i in range(5):
        h.update(g(96, 80, mask_rng(7, i)).tobytes())
    print(h.hexdigest())
"""


def build(name: str) -> MaskGenerator:
    return eval(GENERATORS[name], NAMESPACE)


class Constant(MaskGenerator):
    """All hole (0) or all valid (1): makes mixture choices visible."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        return np.full((height, width), self.value, np.uint8)


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("size", [(256, 256), (512, 512), (37, 53), (101, 67)])
def test_output_is_binary_uint8_of_requested_size(name: str, size: tuple[int, int]) -> None:
    generator = build(name)
    for index in range(3):
        mask = generator(*size, mask_rng(0, index))
        assert mask.dtype == np.uint8 and mask.shape == size
        assert set(np.unique(mask)) <= {0, 1}
        assert (mask == 0).any(), "every generator should make some hole"


def test_same_seed_and_index_give_the_same_mask_in_another_process() -> None:
    exprs = list(GENERATORS.values())
    child = subprocess.run(
        [sys.executable, "-c", DIGEST_SCRIPT, *exprs],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    here = []
    for expr in exprs:
        generator, digest = eval(expr, NAMESPACE), hashlib.sha256()
        for i in range(5):
            digest.update(generator(96, 80, mask_rng(7, i)).tobytes())
        here.append(digest.hexdigest())
    assert child.stdout.split() == here
    other = build("shapes")(96, 80, mask_rng(8, 0))
    assert not np.array_equal(other, build("shapes")(96, 80, mask_rng(7, 0)))


def test_params_and_render_split_is_deterministic() -> None:
    generator = StrokeMaskGenerator("thin")
    params = generator.sample_params(128, 128, mask_rng(1, 2))
    assert params.segments.shape[1] == 5
    np.testing.assert_array_equal(
        generator.render(128, 128, params), generator(128, 128, mask_rng(1, 2))
    )


def ratios(generator: MaskGenerator, n: int = 40, size: int = 256) -> np.ndarray:
    return np.array([hole_ratio(generator(size, size, mask_rng(3, i))) for i in range(n)])


def test_hole_ratio_ranges() -> None:
    shapes, boxes = ratios(build("shapes")), ratios(BoxMaskGenerator())
    assert 0.1 < shapes.mean() < 0.5
    assert boxes.max() <= 3 * 99 * 99 / 256**2 + 1e-9  # at most 3 boxes of < 100 px a side
    thin, medium, thick = (ratios(StrokeMaskGenerator(p)) for p in ("thin", "medium", "thick"))
    assert medium.mean() < thick.mean()
    assert thick.max() > 0.5 and thin.min() > 0
    constrained = ratios(HoleRatioConstraint(StrokeMaskGenerator("thick"), 0.2, 0.4))
    assert constrained.min() >= 0.2 and constrained.max() <= 0.4
    # presets scale with the image: the same mask drawn at twice the size keeps its ratio roughly
    assert abs(ratios(build("medium"), size=512).mean() - medium.mean()) < 0.05


def test_stroke_presets_and_overrides() -> None:
    thick = StrokeMaskGenerator("thick", max_width=7)
    assert (thick.max_width, thick.max_len, thick.min_times) == (7, 200, 1)
    with pytest.raises(ValueError, match=r"'thin', 'medium', 'thick'"):
        StrokeMaskGenerator("huge")
    with pytest.raises(ValueError, match="min_times"):
        StrokeMaskGenerator(min_times=5, max_times=2)
    with pytest.raises(ValueError, match="height"):
        StrokeMaskGenerator()(0, 10, mask_rng(0, 0))


def test_box_generator_reports_sizes_it_cannot_fit() -> None:
    with pytest.raises(ValueError, match="cannot fit"):
        BoxMaskGenerator(margin=40, reference_size=None)(64, 64, mask_rng(0, 0))


def test_mixture_follows_weights() -> None:
    mixture = MixtureMaskGenerator([Constant(0), Constant(1)], [3.0, 1.0])
    holes = [mixture(4, 4, mask_rng(0, i)).mean() == 0 for i in range(400)]
    assert 0.68 < np.mean(holes) < 0.82
    only_second = MixtureMaskGenerator([Constant(0), Constant(1)], [0, 1])
    assert all(only_second(4, 4, mask_rng(0, i)).all() for i in range(50))
    with pytest.raises(ValueError, match="one entry per generator"):
        MixtureMaskGenerator([Constant(0)], [1, 1])
    with pytest.raises(TypeError, match=r"generators\[0\]"):
        MixtureMaskGenerator(["not a generator"])  # type: ignore[list-item]


def test_constraint_error_names_generator_and_range() -> None:
    constraint = HoleRatioConstraint(BoxMaskGenerator(), min_ratio=0.9, max_ratio=1.0, max_tries=5)
    with pytest.raises(RuntimeError, match=r"BoxMaskGenerator.*\[0\.9, 1\.0\].*5 tries"):
        constraint(64, 64, mask_rng(0, 0))


def test_generators_build_from_lightning_cli_yaml() -> None:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--gen", type=MaskGenerator)
    config = parser.parse_string(
        """
gen:
  class_path: pconv_lightning.masks.MixtureMaskGenerator
  init_args:
    generators:
      - class_path: pconv_lightning.masks.StrokeMaskGenerator
        init_args: {preset: thick}
      - class_path: pconv_lightning.masks.BoxMaskGenerator
    weights: [2.0, 1.0]
"""
    )
    mixture = parser.instantiate(config).gen
    assert isinstance(mixture, MixtureMaskGenerator)
    assert mixture.generators[0].preset == "thick" and mixture.weights == [2.0, 1.0]


def hand_made(holes: list[tuple[int, int]], size: int = 10) -> np.ndarray:
    mask = np.ones((size, size), np.uint8)
    for y, x in holes:
        mask[y, x] = 0
    return mask


def test_bucket_and_border_on_hand_made_masks() -> None:
    assert hole_ratio(hand_made([(1, 1), (2, 2)])) == pytest.approx(0.02)
    assert [ratio_bucket(r) for r in (0.005, 0.01, 0.0100001, 0.1, 0.1000001, 0.6, 0.61)] == [
        -1,
        -1,
        0,
        0,
        1,
        5,
        -1,
    ]
    mask = np.ones((20, 20), np.uint8)
    mask[2:8, 2:12] = 0  # 60 / 400 = 0.15, inside
    assert ratio_bucket(hole_ratio(mask)) == 1 and not touches_border(mask)
    assert not touches_border(hand_made([]))
    for corner in [(0, 5), (9, 3), (4, 0), (6, 9)]:
        assert touches_border(hand_made([corner]))
    assert not touches_border(hand_made([(1, 1), (8, 8)]))


@pytest.mark.parametrize("hole_value", [255, 0])
def test_polarity_through_save_and_load(tmp_path, hole_value: int) -> None:
    mask = hand_made([(0, 0), (5, 6)])
    path = tmp_path / "m.png"
    save_mask(path, mask, hole_value=hole_value)
    pixels = np.asarray(Image.open(path))
    assert pixels[0, 0] == hole_value and pixels[1, 1] == 255 - hole_value
    np.testing.assert_array_equal(load_mask(path, hole_value=hole_value), mask)
    flipped = load_mask(path, hole_value=255 - hole_value)
    np.testing.assert_array_equal(flipped, 1 - mask)


@pytest.mark.parametrize("name", ["shapes", "mixture", "constrained"])
def test_generators_pickle_for_dataloader_workers(name: str) -> None:
    generator = build(name)
    clone = pickle.loads(pickle.dumps(generator))
    np.testing.assert_array_equal(clone(64, 64, mask_rng(2, 3)), generator(64, 64, mask_rng(2, 3)))
    assert repr(clone) == repr(generator)
