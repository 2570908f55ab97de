"""The released reference model, weights/reference_256.safetensors (model card: weights/README.md):
fp16, exactly the paper's 7-layer PConvUNet, and what `pconv inpaint` repairs a photo with when
no --checkpoint is given."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from training_helpers import SAMPLES

from pconv_lightning.checkpoints import reference
from pconv_lightning.cli import cli_main
from pconv_lightning.models import PConvUNet


def test_the_released_file_is_the_7_layer_network_in_fp16():
    path = reference.reference_weights()
    assert path is not None, f"{reference.REFERENCE_WEIGHTS} is missing"
    state = load_file(path)
    expected = PConvUNet(layers=7).state_dict()
    assert sorted(state) == sorted(expected)
    for name, tensor in state.items():
        assert tensor.shape == expected[name].shape, name
        if expected[name].is_floating_point():
            assert tensor.dtype == torch.float16, name
            assert torch.isfinite(tensor).all(), name
    net = PConvUNet(layers=7)
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def test_inpaint_without_checkpoint_fills_only_the_holes_and_beats_a_mean_fill(tmp_path):
    photo = np.asarray(Image.open(SAMPLES / "val" / "kodim14.jpg").convert("RGB"))
    h, w = photo.shape[:2]
    mask = Image.open(SAMPLES / "eval_masks" / "b2_inner_0000.png").resize((w, h), Image.NEAREST)
    hole = np.asarray(mask) > 127  # a 20-30 % NVIDIA test mask, white = hole
    (tmp_path / "photos").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(photo).save(tmp_path / "photos" / "kodim14.png")
    mask.save(tmp_path / "masks" / "kodim14.png")
    args = [f"--image={tmp_path / 'photos'}", f"--mask={tmp_path / 'masks'}"]
    assert cli_main(["inpaint", *args, f"--output={tmp_path / 'out'}"]) == 0
    out = np.asarray(Image.open(tmp_path / "out" / "kodim14.png").convert("RGB"))
    assert out.shape == photo.shape
    assert np.array_equal(out[~hole], photo[~hole])  # the known pixels are the photo's own
    mean_fill = photo.copy()
    mean_fill[hole] = photo[~hole].mean(axis=0).round().astype(np.uint8)
    model, floor = _psnr(out[hole], photo[hole]), _psnr(mean_fill[hole], photo[hole])
    assert model > floor + 1.0, (model, floor)  # a trained repair, not noise or a flat fill
