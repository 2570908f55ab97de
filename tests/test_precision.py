"""The default training precision follows the processor: bf16-mixed on a CPU with native bf16,
32-true with a notice elsewhere; a precision given explicitly always wins."""

from __future__ import annotations

import logging

import pytest
from training_helpers import CONFIGS, tiny_args

import pconv_lightning.precision as precision
from pconv_lightning.cli import cli_main


@pytest.mark.parametrize(
    ("text", "native"),
    [
        ("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n", True),
        ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n", False),  # emulated only
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),  # Arm (Graviton 3)
        ("processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\n", False),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(text, native, tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(text)
    assert precision.cpu_has_native_bf16(info) is native


def test_unreadable_cpuinfo_means_no_flags(tmp_path):
    assert precision.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("accelerator", ["cpu", "auto", None])
def test_default_precision_on_the_cpu(accelerator, monkeypatch):
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.default_precision(accelerator) == ("bf16-mixed", None)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    chosen, notice = precision.default_precision(accelerator)
    assert chosen == "32-true" and "no native bf16" in notice and "\n" not in notice


def test_other_accelerators_keep_lightnings_default(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.default_precision("gpu") == (None, None)
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: True)
    assert precision.default_precision("auto") == (None, None)


def _fit(tmp_path, monkeypatch, *extra: str):
    monkeypatch.chdir(tmp_path)
    args = ["fit", f"--config={CONFIGS / 'quickstart.yaml'}", *tiny_args(tmp_path / "r", steps=1)]
    return cli_main([*args, "--trainer.logger=false", *extra])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("native", "extra", "expected", "noticed"),
    [
        (True, [], "bf16-mixed", False),
        (False, [], "32-true", True),
        (True, ["--trainer.precision=32-true"], "32-true", False),  # explicit wins
        (False, ["--trainer.precision=bf16-mixed"], "bf16-mixed", False),
    ],
)
def test_pconv_fit_follows_the_cpu(native, extra, expected, noticed, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level(logging.INFO):
        cli = _fit(tmp_path, monkeypatch, *extra)
    assert cli.trainer.precision == expected
    assert ("no native bf16" in caplog.text) is noticed
