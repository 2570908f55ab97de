"""``pconv evaluate``: scores against hand-computed values, cells of hand-made masks, methods that
keep valid pixels bit-exact, a network run downscaled (against a hand-worked case and
``pconv inpaint --work-pixels``), report files, determinism and refused checkpoints."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from training_helpers import SAMPLES

from pconv_lightning.checkpoints import reference
from pconv_lightning.checkpoints.network import save_network
from pconv_lightning.cli import cli_main
from pconv_lightning.data.images import load_rgb
from pconv_lightning.data.transforms import eval_transform
from pconv_lightning.evaluation.command import main as evaluate_main
from pconv_lightning.evaluation.methods import (
    DownscaledNetworkMethod,
    MeanFill,
    NetworkMethod,
    baselines,
)
from pconv_lightning.evaluation.pairs import Pair, make_pairs, missing_cells
from pconv_lightning.evaluation.runner import evaluate
from pconv_lightning.evaluation.scores import image_scores
from pconv_lightning.inference import Inpainter, TorchEngine, downscaled_inpaint
from pconv_lightning.masks.io import save_mask
from pconv_lightning.masks.manifest import EvalMask
from pconv_lightning.metrics import InpaintingMetrics
from pconv_lightning.models import PConvUNet

# The module-scoped fixture is built once, on one xdist worker, for all the tests here.
pytestmark = pytest.mark.xdist_group("evaluation")

CELL_LABELS = ["1-10", "10-20", "20-30", "30-40", "40-50", "50-60"]
METHODS = ["net", "net@32", "telea", "ns", "patchmatch", "mean"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A random 3-layer PConvUNet as safetensors (inputs: multiples of 8)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("net") / "net.safetensors"
    save_network(PConvUNet(layers=3).eval(), path)
    return path


def run_args(checkpoint: Path, out: Path, *extra: str) -> list[str]:
    return [
        f"--checkpoint=net={checkpoint}",
        f"--images={SAMPLES / 'val'}",
        "--builtin-masks=1",
        "--size=64",
        "--work-size=32",
        "--per-cell=2",
        "--batch-size=5",
        "--no-progress",
        f"--out={out}",
        *extra,
    ]


@pytest.fixture(scope="module")
def report(checkpoint, tmp_path_factory) -> Path:
    """One evaluation run through the ``pconv`` command."""
    out = tmp_path_factory.mktemp("report")
    assert cli_main(["evaluate", *run_args(checkpoint, out)]) == 0
    return out


def batch(seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """An 8-bit-valued image batch and masks with a hole in the middle and one at the edge."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (2, 3, size, size), generator=gen).float() / 255
    mask = torch.ones(2, 1, size, size)
    mask[0, :, 8:20, 10:24] = 0
    mask[1, :, 0:6, :] = 0
    return image, mask


# --- scores -----------------------------------------------------------------------------


def test_known_mse_gives_known_psnr_and_l1():
    target = torch.zeros(2, 3, 16, 16)
    comp = torch.stack([torch.full((3, 16, 16), 0.1), torch.full((3, 16, 16), 0.01)])
    mask = torch.zeros(2, 1, 16, 16)  # all hole: hole L1 = L1
    scores = image_scores(comp, target, mask)
    assert scores["psnr"].tolist() == pytest.approx([20.0, 40.0], abs=1e-4)  # MSE 1e-2, 1e-4
    assert scores["l1"].tolist() == pytest.approx([10.0, 1.0], abs=1e-5)
    assert scores["l1_hole"].tolist() == pytest.approx([10.0, 1.0], abs=1e-5)


def test_identical_images_give_ssim_one_and_l1_zero():
    image, mask = batch()
    scores = image_scores(image, image, mask)
    assert scores["ssim"].tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert scores["l1"].tolist() == [0.0, 0.0]
    assert scores["l1_hole"].tolist() == [0.0, 0.0]
    assert math.isinf(scores["psnr"][0])


def test_hole_l1_counts_hole_pixels_only():
    target = torch.zeros(1, 3, 10, 10)
    mask = torch.ones(1, 1, 10, 10)
    mask[..., :2, :] = 0  # 20 of 100 pixels
    comp = (1 - mask).expand(1, 3, 10, 10) * 0.5
    scores = image_scores(comp, target, mask)
    assert scores["l1_hole"].item() == pytest.approx(50.0)
    assert scores["l1"].item() == pytest.approx(10.0)


def test_per_image_scores_average_to_the_training_metrics():
    """Same torchmetrics settings as validation: the means agree with InpaintingMetrics."""
    image, mask = batch()
    comp = (image + 0.05 * torch.randn_like(image)).clamp(0, 1)
    scores = image_scores(comp, image, mask)
    metrics = InpaintingMetrics()
    metrics.update(comp, image, mask)
    expected = metrics.compute()
    for name in ("psnr", "ssim", "l1"):  # l1_hole: validation weighs images by hole size
        # both in the same units: L1 in percent in training logs and in reports
        assert scores[name].mean().item() == pytest.approx(expected[name].item(), rel=1e-5), name


def ssim_reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM (Wang et al. 2004) per image in float64: Gaussian window 11x11, sigma 1.5,
    C1 = 0.01^2, C2 = 0.03^2 (data range 1), averaged over the channels and every pixel, the
    image reflected at its borders (torchmetrics' convention; the MATLAB original averages
    only where the window fits inside, a few hundredths lower on these 48x48 images)."""
    x = torch.nn.functional.pad(x.double(), (5, 5, 5, 5), mode="reflect")
    y = torch.nn.functional.pad(y.double(), (5, 5, 5, 5), mode="reflect")
    offsets = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(offsets**2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(x.shape[1], 1, 11, 11)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, window, groups=x.shape[1])

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return ssim.mean(dim=(1, 2, 3))


def test_ssim_of_a_noisy_pair_against_independent_computations():
    import kornia

    image, mask = batch(size=48)
    image = torch.nn.functional.avg_pool2d(image, 3, 1, 1)  # some structure to keep
    gen = torch.Generator().manual_seed(1)
    noise = torch.tensor([0.03, 0.1]).view(2, 1, 1, 1)
    comp = (image + noise * torch.randn(image.shape, generator=gen)).clamp(0, 1)
    expected = ssim_reference(comp, image)
    assert 0.2 < expected[1] < expected[0] < 0.95  # far from the identical pair's 1
    by_kornia = kornia.metrics.ssim(comp, image, 11, max_val=1.0)  # reflected borders
    assert by_kornia.double().mean(dim=(1, 2, 3)).tolist() == pytest.approx(
        expected.tolist(), abs=1e-5
    )
    assert image_scores(comp, image, mask)["ssim"].tolist() == pytest.approx(
        expected.tolist(), abs=1e-5
    )
    metrics = InpaintingMetrics()  # validation: the mean of the per-image values
    metrics.update(comp, image, mask)
    assert metrics.compute()["ssim"].item() == pytest.approx(expected.mean().item(), abs=1e-5)


def test_validation_psnr_is_the_mean_of_per_image_values():
    """Images at 20 and 40 dB: the per-image mean is 30 dB, the pooled MSE would give 23."""
    target = torch.zeros(2, 3, 16, 16)
    comp = torch.stack([torch.full((3, 16, 16), 0.1), torch.full((3, 16, 16), 0.01)])
    mask = torch.zeros(2, 1, 16, 16)
    pooled = 10 * math.log10(1 / ((0.1**2 + 0.01**2) / 2))
    assert pooled == pytest.approx(22.97, abs=0.01)
    for first, second in ((slice(0, 2), slice(0, 0)), (slice(0, 1), slice(1, 2))):
        metrics = InpaintingMetrics()  # one batch of both, or one image per batch
        metrics.update(comp[first], target[first], mask[first])
        if second.stop:
            metrics.update(comp[second], target[second], mask[second])
        assert metrics.compute()["psnr"].item() == pytest.approx(30.0, abs=1e-4)
    assert image_scores(comp, target, mask)["psnr"].mean().item() == pytest.approx(30.0, abs=1e-4)


# --- pairing and cells ------------------------------------------------------------------


def test_pairing_rule_cycles_images_and_masks_per_cell():
    images = [Path(f"img{i}.png") for i in range(3)]
    masks = [
        EvalMask(Path("b.png"), 0.05, 0, False),
        EvalMask(Path("a.png"), 0.06, 0, False),
        EvalMask(Path("c.png"), 0.55, 5, True),
    ]
    pairs = make_pairs(images, masks, per_cell=4)
    first = [(p.image.name, p.mask.name) for p in pairs[:4]]
    assert first == [
        ("img0.png", "a.png"),
        ("img1.png", "b.png"),
        ("img2.png", "a.png"),
        ("img0.png", "b.png"),
    ]
    assert [(p.bucket, p.touches_border) for p in pairs[4:]] == [(5, True)] * 4
    assert [p.index for p in pairs] == list(range(8))
    assert len(missing_cells(pairs)) == 10 and "50-60 inner" in missing_cells(pairs)


def rectangle_mask(size: int, top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.ones((size, size), np.uint8)
    mask[top : top + height, left : left + width] = 0
    return mask


def test_cells_of_hand_made_masks(tmp_path, checkpoint, monkeypatch):
    """A folder without manifest is indexed from pixels; cells are measured at --size."""
    # the baselines alone: the released 7-layer model would not run at 64 pixels
    monkeypatch.setattr(reference, "REFERENCE_WEIGHTS", tmp_path / "unreleased.safetensors")
    masks = tmp_path / "masks"
    masks.mkdir()
    # 128 px on disk, evaluated at 64: holes are 2x2-pixel aligned, so ratios are kept exactly
    made = {
        "inner_05.png": (rectangle_mask(128, 40, 40, 32, 26), "1-10", "inner"),  # 0.0508
        "edge_25.png": (rectangle_mask(128, 0, 0, 64, 64), "20-30", "border"),  # 0.25
        "inner_45.png": (rectangle_mask(128, 8, 8, 112, 66), "40-50", "inner"),  # 0.4512
        "edge_55.png": (rectangle_mask(128, 0, 58, 128, 70), "50-60", "border"),  # 0.5469
        "tiny.png": (rectangle_mask(128, 60, 60, 4, 4), None, None),  # 0.001: left out
    }
    for name, (mask, _, _) in made.items():
        save_mask(masks / name, mask)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"tiny\.png"):
        code = evaluate_main(
            [
                f"--images={SAMPLES / 'val'}",
                f"--masks={masks}",
                "--size=64",
                "--per-cell=1",
                "--limit=2",
                "--no-progress",
                f"--out={out}",
            ]
        )
    assert code == 0
    assert "val, 2 files" in (out / "metrics.md").read_text()
    assert (out / "masks_manifest.csv").is_file() and not (masks / "manifest.csv").exists()
    per_image = pd.read_csv(out / "per_image.csv", dtype={"bucket": str})
    cells = per_image[per_image["method"] == "mean"].set_index("mask")[["bucket", "border"]]
    expected = {n: (b, t) for n, (_, b, t) in made.items() if b is not None}
    assert {n: tuple(cells.loc[n]) for n in cells.index} == expected
    assert "no masks for cell 10-20 inner" in (out / "metrics.md").read_text()


# --- methods ----------------------------------------------------------------------------


def test_every_method_keeps_valid_pixels_bit_exact_and_changes_holes(checkpoint):
    image, mask = batch(size=32)
    valid = (mask > 0.5).expand_as(image)
    for method in [NetworkMethod("net", checkpoint), *baselines()]:
        comp = method(image, mask)
        assert comp.shape == image.shape and comp.dtype == image.dtype
        assert torch.equal(comp[valid], image[valid]), method.name
        assert not torch.equal(comp[~valid], image[~valid]), method.name
        assert comp.min() >= 0 and comp.max() <= 1


def test_mean_fill_uses_the_valid_mean_colour():
    image, mask = batch()
    comp = MeanFill("mean")(image, mask)
    valid = mask[0, 0] > 0.5
    expected = image[0][:, valid].mean(1)
    assert torch.allclose(comp[0][:, ~valid], expected[:, None].expand(3, int((~valid).sum())))


class Recorder:
    """A network stand-in: records its inputs, returns a fixed 2x2 image per channel."""

    name, net = "stub", SimpleNamespace(layers=1)

    def __init__(self, output: torch.Tensor) -> None:
        self.output, self.inputs = output, []

    def fill(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.inputs.append((image, mask))
        return self.output


def test_downscaled_network_by_hand():
    """4x4 -> 2x2: block means, a block with one hole pixel is a hole; the stub's output in
    the small holes, the small image elsewhere; 2x2 -> 4x4 bilinear with half-pixel centres
    (a column [a, b] becomes [a, a + (b-a)/4, a + 3(b-a)/4, b])."""
    image = torch.arange(16.0).reshape(1, 1, 4, 4).expand(1, 3, 4, 4) / 16
    mask = torch.ones(1, 1, 4, 4)
    mask[0, 0, 1, 0] = 0  # one hole pixel in the top-left block
    stub = Recorder(torch.tensor([[[[0.0, 0.4], [0.8, 1.0]]]]).expand(1, 3, 2, 2))
    comp = DownscaledNetworkMethod(stub, 2)(image, mask)
    small, small_mask = stub.inputs[0]
    means = torch.tensor([[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])
    assert torch.allclose(small[0, 0], means / 4 / 16)
    assert small_mask[0, 0].tolist() == [[0, 1], [1, 1]]
    # hole pixel (row 1, col 0): a quarter of the way from the stub's 0 (small hole) to the
    # small image's valid block below it, (8 + 9 + 12 + 13) / 4 / 16
    assert comp[0, :, 1, 0].tolist() == pytest.approx([0.25 * 10.5 / 16] * 3)
    assert torch.equal(comp[mask.expand_as(comp) > 0], image[mask.expand_as(image) > 0])
    assert DownscaledNetworkMethod(stub, 2).name == "stub@2"


def test_downscaled_network_agrees_with_inpaint_work_pixels(checkpoint):
    """The evaluation's torch path against ``pconv inpaint --work-pixels`` (cv2 on uint8)."""
    image, mask = batch(seed=3, size=64)
    mask[:, :, 40:52, 30:50] = 0
    network = NetworkMethod("net", checkpoint)
    comp = DownscaledNetworkMethod(network, 32)(image, mask)
    inpainter = Inpainter(TorchEngine(network.net))
    for i in range(2):
        rgb = (image[i] * 255).round().byte().permute(1, 2, 0).numpy()
        valid = mask[i, 0].byte().numpy()
        expected = downscaled_inpaint(inpainter, rgb, valid, 32 * 32)
        got = (comp[i] * 255).round().byte().permute(1, 2, 0).numpy()
        diff = np.abs(got.astype(int) - expected.astype(int))[valid == 0]
        # measured 0.15 / 0.11 mean and 1 / 3 max (uint8 rounding of cv2's small image)
        assert diff.mean() < 0.5 and diff.max() <= 4, (diff.mean(), diff.max())


@pytest.mark.parametrize("work", [64, 20])
def test_downscaled_network_checks_the_work_size(checkpoint, work):
    method = DownscaledNetworkMethod(NetworkMethod("net", checkpoint), work)
    with pytest.raises(ValueError, match=f"--work-size {work} does not suit --size 64"):
        method.check_size(64)


def test_network_method_checks_the_size(checkpoint):
    with pytest.raises(ValueError, match="multiple of 8"):
        NetworkMethod("net", checkpoint).check_size(60)


# --- the command and its report ---------------------------------------------------------


def test_report_files_exist_and_parse(report):
    for name in (
        "metrics.csv",
        "per_image.csv",
        "metrics.md",
        "metrics_by_bucket.png",
        "examples.png",
    ):
        assert (report / name).is_file(), name
    with (report / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        *("method", "bucket", "border", "n", "psnr", "ssim", "l1", "l1_hole", "lpips")
    ]
    cells = {(r["method"], r["bucket"], r["border"]): int(r["n"]) for r in rows}
    for method in METHODS:
        for bucket in CELL_LABELS:
            assert cells[method, bucket, "inner"] == cells[method, bucket, "border"] == 2
            assert cells[method, bucket, "all"] == 4
        assert cells[method, "all", "all"] == 24
    assert len(rows) == len(METHODS) * (len(CELL_LABELS) * 3 + 1)
    text = (report / "metrics.md").read_text()
    table = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in table[0]] == [
        "method",
        "hole (%)",
        "border",
        "n",
        "PSNR (dB)",
        "SSIM",
        "L1 (%)",
        "L1 hole (%)",
        "LPIPS",
    ]
    body = {tuple(c.strip() for c in line[:3]) for line in table[1:]}
    assert body == set(cells)
    assert "torchmetrics SSIM (Gaussian 11, sigma 1.5)" in text
    assert "LPIPS skipped" not in text and "FID skipped" in text
    assert "resized to 64" in text and "k mod 4" in text
    for png in ("metrics_by_bucket.png", "examples.png"):
        with Image.open(report / png) as im:
            assert im.width > 300 and im.height > 300


def test_summary_rows_are_means_of_the_per_image_rows(report):
    per_image = pd.read_csv(report / "per_image.csv", dtype={"bucket": str})
    summary = pd.read_csv(report / "metrics.csv", dtype={"bucket": str})
    assert len(per_image) == 24 * len(METHODS)
    for _, row in summary.iterrows():
        part = per_image[per_image["method"] == row["method"]]
        if row["bucket"] != "all":
            part = part[part["bucket"] == row["bucket"]]
        if row["border"] != "all":
            part = part[part["border"] == row["border"]]
        assert len(part) == row["n"]
        assert part["psnr"].mean() == pytest.approx(row["psnr"], abs=1e-5)
        assert part["l1_hole"].mean() == pytest.approx(row["l1_hole"], abs=1e-5)


def test_two_runs_give_identical_files(report, checkpoint, tmp_path):
    assert evaluate_main(run_args(checkpoint, tmp_path)) == 0
    for name in ("metrics.csv", "per_image.csv"):  # metrics.md names the output folder
        assert (tmp_path / name).read_bytes() == (report / name).read_bytes(), name


class Payload:
    """Anything that is not a tensor or plain data needs pickle to load."""


def test_checkpoint_that_needs_pickle_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": PConvUNet(layers=3).state_dict(), "extra": Payload()}, bad)
    assert evaluate_main(run_args(bad, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "pconv evaluate: error" in err and "bad.ckpt" in err and "pickle" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--size=60"], "--size 60 does not suit checkpoint 'net'"),
        (["--images=/nonexistent/images"], "--images /nonexistent/images is not a directory"),
    ],
)
def test_bad_arguments_are_named(checkpoint, tmp_path, capsys, change, message):
    assert evaluate_main(run_args(checkpoint, tmp_path, *change)) == 2
    assert message in capsys.readouterr().err


def lpips_pairs() -> list[Pair]:
    mask = SAMPLES / "eval_masks" / "b2_inner_0000.png"
    return [Pair(0, SAMPLES / "val" / "kodim13.jpg", mask, 0.25, 2, False)]


def test_lpips_vgg_is_scored_with_the_offline_weights():
    """LPIPS-VGG of each composite; the mean fill is further from the photo than Telea's."""
    evaluation = evaluate(lpips_pairs(), baselines(), size=64, progress=False)
    lpips = {row["method"]: row["lpips"] for row in evaluation.rows}
    assert all(0 < v < 1 for v in lpips.values())
    assert lpips["mean"] > lpips["telea"]
    assert not any("LPIPS" in note for note in evaluation.notes)


def test_lpips_is_skipped_with_the_reason_when_its_weights_are_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("PCONV_WEIGHTS_DIR", str(tmp_path / "weights"))

    def offline(url, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    evaluation = evaluate(lpips_pairs(), [MeanFill("mean")], size=64, progress=False)
    assert "lpips" not in evaluation.rows[0]
    assert any("LPIPS skipped" in n and "pconv weights vgg16" in n for n in evaluation.notes)


def test_patchmatch_fills_only_the_holes_and_repeats_with_its_seed():
    from pconv_lightning.evaluation.methods import PatchMatch

    photo = sorted((SAMPLES / "val").glob("*.jpg"))[0]
    image = eval_transform(64)(load_rgb(photo))[None].expand(2, -1, -1, -1).contiguous()
    mask = torch.ones(2, 1, 64, 64)
    mask[0, :, 20:40, 10:50] = 0
    mask[1, :, 0:30, 30:64] = 0  # touches two borders
    first = PatchMatch(seed=0)(image, mask)
    assert torch.equal(first, PatchMatch(seed=0)(image, mask))
    assert not torch.equal(first, PatchMatch(seed=1)(image, mask))
    valid = (mask > 0.5).expand_as(image)
    assert torch.equal(first[valid], image[valid])
    assert not torch.equal(first[~valid], image[~valid])


def test_patchmatch_copies_a_periodic_texture_into_the_hole():
    # Vertical stripes of period 6 (independent truth): patch copying continues them exactly
    # where a diffusion (Telea) or a mean colour blurs them.
    from pconv_lightning.evaluation.methods import PatchMatch

    column = torch.tensor([0.1, 0.1, 0.1, 0.9, 0.9, 0.9]).repeat(11)[:64]
    image = torch.stack([column, column * 0.5, 1 - column]).view(1, 3, 1, 64).expand(1, 3, 64, 64)
    image = (image * 255).round() / 255
    mask = torch.ones(1, 1, 64, 64)
    mask[..., 24:40, 20:44] = 0
    hole = (mask < 0.5).expand_as(image)
    errors = {
        m.name: (m(image, mask) - image)[hole].abs().mean().item()
        for m in (PatchMatch(), *[b for b in baselines() if b.name in ("telea", "mean")])
    }
    assert (
        errors["patchmatch"] < 0.05
    )  # about 0.03: the stripes' edges, off by a pixel here and there
    assert errors["patchmatch"] < errors["telea"] / 5 and errors["patchmatch"] < errors["mean"] / 5
