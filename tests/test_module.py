"""InpaintingModule: logged terms, metrics against hand computations, NaN handling,
checkpoints that load with weights_only, mixed precision, channels_last and compile."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch._dynamo.utils import counters
from torchmetrics.functional.image import structural_similarity_index_measure
from training_helpers import SAMPLES

from pconv_lightning.data import InpaintingDataModule
from pconv_lightning.data.pack import build_pack
from pconv_lightning.data.packed import PackedInpaintingDataModule
from pconv_lightning.metrics import InpaintingMetrics
from pconv_lightning.models import PConvUNet
from pconv_lightning.module import InpaintingModule
from pconv_lightning.nonfinite import NonFiniteLossError, NonFiniteWatch


def tiny_module(**kwargs) -> InpaintingModule:
    return InpaintingModule(net=PConvUNet(layers=5), **kwargs)


def tiny_data(**kwargs) -> InpaintingDataModule:
    args = dict(
        train=str(SAMPLES / "train"),
        val=str(SAMPLES / "val"),
        eval_masks=str(SAMPLES / "eval_masks"),
        image_size=64,
        batch_size=2,
        num_workers=0,
        max_eval_samples=2,
    )
    return InpaintingDataModule(**(args | kwargs))


def tiny_trainer(root: Path, steps: int = 2, **kwargs) -> Trainer:
    args = dict(
        default_root_dir=root,
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1,
        enable_checkpointing=False,
    )
    return Trainer(**(args | kwargs))


class Recorder(Callback):
    def __init__(self) -> None:
        self.logged: dict[str, float] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.logged.update({k: float(v) for k, v in trainer.callback_metrics.items()})


def test_training_logs_every_loss_term_and_validation_metrics(tmp_path):
    recorder = Recorder()
    trainer = tiny_trainer(tmp_path, steps=2, callbacks=[recorder], val_check_interval=2)
    trainer.fit(tiny_module(), tiny_data())
    for term in ("valid", "hole", "perceptual", "style_out", "style_comp", "tv"):
        assert math.isfinite(recorder.logged[f"train/loss_{term}"])
    assert recorder.logged["train/lr"] == pytest.approx(2e-4)
    metrics = trainer.callback_metrics
    for key in ("val/psnr", "val/ssim", "val/l1", "val/l1_hole", "val/loss"):
        assert key in metrics and math.isfinite(float(metrics[key]))


def test_metrics_against_hand_computed_values():
    metrics = InpaintingMetrics()
    target = torch.full((2, 3, 16, 16), 0.5)
    mask = torch.ones(2, 1, 16, 16)
    mask[:, :, :8] = 0  # half the image is hole
    comp = target.clone()
    comp[:, :, :8] += 0.1  # error 0.1 on the holes only
    metrics.update(comp, target, mask, torch.tensor([4, 4]))
    values = metrics.compute()
    # MSE = 0.01 on half the pixels -> 0.005; PSNR = 10 log10(1 / 0.005)
    assert values["psnr"].item() == pytest.approx(10 * math.log10(1 / 0.005), rel=1e-4)
    assert values["l1"].item() == pytest.approx(5.0, rel=1e-4)  # percent, as pconv evaluate
    assert values["l1_hole"].item() == pytest.approx(10.0, rel=1e-4)
    assert values["psnr_40-50"].item() == pytest.approx(values["psnr"].item())
    assert "psnr_10-20" not in values
    metrics.reset()
    metrics.update(target, target, mask)
    values = metrics.compute()
    assert values["ssim"].item() == pytest.approx(1.0)
    assert values["l1"].item() == 0.0


def test_metrics_under_bf16_autocast_are_the_float64_values():
    """Validation runs inside the bf16-mixed autocast region: SSIM's filters must not run in
    bf16 there. Reference: torchmetrics' functional SSIM and PSNR on float64 tensors."""
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(4, 3, 64, 64, generator=generator)
    target = torch.nn.functional.avg_pool2d(target, 5, 1, 2)  # smooth, like a photo
    mask = (torch.rand(4, 1, 64, 64, generator=generator) > 0.1).float()
    comp = mask * target + (1 - mask) * torch.rand(4, 3, 64, 64, generator=generator)
    metrics = InpaintingMetrics()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        metrics.update(comp, target, mask, torch.zeros(4, dtype=torch.long))
    values = metrics.compute()
    ssim = structural_similarity_index_measure(
        comp.double(), target.double(), data_range=1.0, kernel_size=11, sigma=1.5
    )
    mse = ((comp.double() - target.double()) ** 2).mean(dim=(1, 2, 3))
    assert values["ssim"].item() == pytest.approx(ssim.item(), abs=1e-5)
    assert values["psnr"].item() == pytest.approx((10 * torch.log10(1 / mse)).mean().item(), 1e-5)


class NaNAfter(Callback):
    """Poisons the network's output from global step ``step`` on."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            pl_module.net.register_forward_hook(
                lambda _m, _i, out: torch.full_like(out, float("nan"))
            )


def test_nan_loss_stops_with_step_and_files_and_keeps_the_last_good_checkpoint(tmp_path):
    ckpt = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=1, save_top_k=0
    )
    trainer = tiny_trainer(
        tmp_path, steps=10, callbacks=[NaNAfter(3), ckpt], enable_checkpointing=True
    )
    with pytest.raises(NonFiniteLossError, match=r"global step 3.*kodim\d\d\.jpg"):
        trainer.fit(tiny_module(), tiny_data())
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True, map_location="cpu")
    assert state["global_step"] == 3
    assert all(
        torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point()
    )


class NaNFrom(Callback):
    """Poisons the network's output from global step ``step`` on, keeping the autograd graph
    (the steps after it train on), and keeps the files of each step's batch."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.paths: dict[int, list[str]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.paths[trainer.global_step] = list(batch["path"])
        if trainer.global_step == self.step:
            pl_module.net.register_forward_hook(lambda _m, _i, out: out * float("nan"))


@pytest.mark.slow
@pytest.mark.parametrize("checkpoints", [False, True])
def test_a_loss_read_every_4_steps_names_the_first_nan_step_and_no_checkpoint_follows_it(
    tmp_path, checkpoints
):
    """As on a GPU: the loss is read on the host every 4th step (3, 7, ...) and before each
    checkpoint. NaN from step 5: the error names step 5 and its batch's files, raised at the
    save after step 5 (last.ckpt stays the finite one of step 5) or, without saves, at step 7."""
    poison = NaNFrom(5)
    callbacks = [poison]
    if checkpoints:
        callbacks.append(
            ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=1)
        )
    trainer = tiny_trainer(
        tmp_path, steps=12, callbacks=callbacks, enable_checkpointing=checkpoints
    )
    module = tiny_module()
    module.finite_watch.interval = 4
    with pytest.raises(NonFiniteLossError, match=r"global step 5 \(epoch 0, batch 5\)") as err:
        trainer.fit(module, tiny_data(max_train_samples=24))
    assert str(err.value).endswith("files: " + ", ".join(poison.paths[5]))
    assert trainer.global_step == (6 if checkpoints else 7)
    if checkpoints:
        state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
        assert state["global_step"] == 5
        floats = [v for v in state["state_dict"].values() if v.is_floating_point()]
        assert all(torch.isfinite(v).all() for v in floats)


def test_the_loss_is_read_every_step_on_the_cpu_and_every_logging_interval_elsewhere():
    assert NonFiniteWatch().resolve(torch.device("cpu"), 50) == 1
    assert NonFiniteWatch().resolve(torch.device("cuda", 0), 50) == 50
    assert NonFiniteWatch(interval=3).resolve(torch.device("cpu"), 50) == 3


def test_checkpoint_loads_with_weights_only_and_restores_the_module(tmp_path):
    module = tiny_module()
    trainer = tiny_trainer(tmp_path, steps=1, enable_checkpointing=False)
    trainer.fit(module, tiny_data())
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    state = torch.load(tmp_path / "m.ckpt", weights_only=True, map_location="cpu")
    assert state["hyper_parameters"]["loss_weights"]["hole"] == 6.0
    net = PConvUNet(layers=5)
    net.load_state_dict(
        {k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")}
    )
    for name, param in net.state_dict().items():
        assert torch.equal(param, module.net.state_dict()[name])


class FirstStep(Callback):
    """The first training batch and that step's loss."""

    def __init__(self) -> None:
        self.batch: dict[str, torch.Tensor] | None = None
        self.loss: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.batch is None:
            self.batch = {k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.loss is None:
            self.loss = float(outputs["loss"])


def test_bf16_mixed_training_on_cpu(tmp_path):
    recorder, first = Recorder(), FirstStep()
    torch.manual_seed(0)
    module = tiny_module()
    fp32 = copy.deepcopy(module)  # the same weights, never trained
    conv_dtypes = []  # what the second encoder convolution returns (its BatchNorm's input)
    module.net.encoder[1].bn.register_forward_pre_hook(
        lambda _m, args: conv_dtypes.append(args[0].dtype)
    )
    trainer = tiny_trainer(tmp_path, steps=2, precision="bf16-mixed", callbacks=[recorder, first])
    trainer.fit(module, tiny_data())
    assert math.isfinite(recorder.logged["train/loss"])
    assert conv_dtypes and set(conv_dtypes) == {torch.bfloat16}
    # The fp32 loss of the first step: same weights, same batch, train-mode BatchNorm.
    image, mask = first.batch["image"], first.batch["mask"]
    with torch.no_grad():
        fp32_loss = fp32.train().loss(fp32(image, mask), image, mask)["total"].item()
    assert first.loss == pytest.approx(fp32_loss, rel=1e-2)  # measured 0.2%


def test_channels_last_gives_the_same_output():
    torch.manual_seed(0)
    reference = tiny_module().eval()
    channels_last = tiny_module(channels_last=True).eval()
    channels_last.load_state_dict(reference.state_dict())
    kernels = [p for p in channels_last.net.parameters() if p.dim() == 4]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    assert not any(
        p.is_contiguous(memory_format=torch.channels_last)
        for p in reference.net.parameters()
        if p.dim() == 4
    )
    inputs = []  # what the network itself receives
    channels_last.net.register_forward_pre_hook(lambda _m, args: inputs.extend(args))
    image, mask = torch.rand(2, 3, 64, 64), torch.ones(2, 1, 64, 64)
    mask[:, :, 10:40, 20:50] = 0
    with torch.no_grad():
        expected = reference(image, mask)
        # float32 rounding differs between memory formats; He init makes outputs O(10)
        atol = 1e-5 * expected.abs().max().item()
        torch.testing.assert_close(channels_last(image, mask), expected, rtol=1e-4, atol=atol)
    assert inputs[0].is_contiguous(memory_format=torch.channels_last)
    assert not inputs[0].is_contiguous()


@pytest.mark.parametrize("source", ["folder", "pack"])
def test_channels_last_batches_reach_the_loss_in_that_format(source, tmp_path):
    """The loss's VGG16 sees the target and the mask in the network's format, not only the
    network's output (the mixed formats cost a quarter of the CPU training step), from the
    folder loader and from the photo pack (whose own transfer hook builds the images)."""
    if source == "pack":
        build_pack(SAMPLES / "train", tmp_path / "p.pack", size=64, fmt="png")
        data = PackedInpaintingDataModule(
            train=str(tmp_path / "p.pack"), image_size=64, batch_size=2, num_workers=0
        )
    else:
        data = tiny_data()
    module = tiny_module(channels_last=True)
    vgg_kernels = [p for p in module.loss.parameters() if p.dim() == 4]
    assert vgg_kernels and all(
        p.is_contiguous(memory_format=torch.channels_last) for p in vgg_kernels
    )
    seen = []
    module.loss.register_forward_pre_hook(lambda _m, args: seen.append(args))
    tiny_trainer(tmp_path, steps=2, limit_val_batches=0).fit(module, data)
    assert len(seen) == 2
    for output, image, mask in seen:
        for tensor in (output, image, mask):
            assert tensor.is_contiguous(memory_format=torch.channels_last)
        assert not image.is_contiguous()  # really converted: (N, 3, H, W) with C > 1


@pytest.mark.slow
def test_compile_gives_the_same_output():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = InpaintingModule(net=PConvUNet(layers=3), vgg_weights=None).eval()
        compiled = InpaintingModule(net=PConvUNet(layers=3), vgg_weights=None, compile=True).eval()
    compiled.load_state_dict(reference.state_dict())
    assert compiled.net._compiled_call_impl is not None  # what nn.Module.compile installs
    assert reference.net._compiled_call_impl is None
    image, mask = torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32)
    mask[:, :, 4:20, 8:24] = 0
    counters.clear()
    with torch.no_grad():
        torch.testing.assert_close(
            compiled(image, mask), reference(image, mask), rtol=1e-4, atol=1e-5
        )
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo captured the network's graph


def test_skipped_files_are_counted_in_the_logs(tmp_path, broken_dir):
    data = tiny_data(train=str(broken_dir))
    trainer = tiny_trainer(tmp_path, steps=3, limit_val_batches=0)
    trainer.fit(tiny_module(), data)
    assert data.skipped_files
    assert trainer.callback_metrics["data/skipped_files"].item() == len(data.skipped_files)


@pytest.mark.parametrize(
    ("device", "machine", "flags", "capability", "expected"),
    [
        ("cpu", "x86_64", {"avx2", "avx512f"}, None, True),  # measured: AMD EPYC
        ("cpu", "x86_64", {"avx2"}, None, False),
        ("cpu", "aarch64", {"bf16"}, None, False),
        ("cuda", "x86_64", set(), (9, 0), True),  # measured: H200
        ("cuda", "x86_64", set(), (6, 1), False),  # no tensor cores
        ("mps", "arm64", set(), None, False),
    ],
)
def test_channels_last_is_chosen_where_it_was_measured_faster(
    monkeypatch, device, machine, flags, capability, expected
):
    from pconv_lightning import memory_format

    monkeypatch.setattr(memory_format.platform, "machine", lambda: machine)
    monkeypatch.setattr(memory_format, "cpu_flags", lambda: flags)
    monkeypatch.setattr(memory_format.torch.cuda, "get_device_capability", lambda _d: capability)
    assert memory_format.channels_last_pays(torch.device(device)) is expected


@pytest.mark.parametrize("chosen", [True, False])
def test_an_unset_channels_last_is_decided_for_the_trainers_device(tmp_path, monkeypatch, chosen):
    monkeypatch.setattr("pconv_lightning.module.channels_last_pays", lambda device: chosen)
    module = tiny_module()
    assert module.channels_last is None
    tiny_trainer(tmp_path, steps=1, limit_val_batches=0).fit(module, tiny_data())
    assert module.channels_last is chosen
    kernels = [p for p in [*module.net.parameters(), *module.loss.parameters()] if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) is chosen for p in kernels)
    explicit = tiny_module(channels_last=not chosen)
    tiny_trainer(tmp_path, steps=1, limit_val_batches=0).fit(explicit, tiny_data())
    assert explicit.channels_last is not chosen  # a value given always wins
