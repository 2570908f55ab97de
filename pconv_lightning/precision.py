"""The default training precision: bf16 autocast on a CPU that computes bf16 natively.

A CPU with AVX512-BF16 or AMX-BF16 runs the partial-convolution UNet's train step about twice as
fast under bf16 autocast as in fp32 (``benchmarks/train_step.py``); without those instructions
bf16 is emulated and slower, so fp32 stays. A precision given in the config or on the command
line always wins; this only fills in a run that names none.
"""

from __future__ import annotations

from pathlib import Path

import torch

NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""x86 ``/proc/cpuinfo`` flags of native bf16 arithmetic."""


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The processor's feature flags (x86 ``flags`` / Arm ``Features``); empty if unknown."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bf16 arithmetic instructions (x86 AVX512/AMX-BF16, Arm BF16)."""
    flags = cpu_flags(cpuinfo)
    return bool(flags & NATIVE_BF16_FLAGS) or "bf16" in flags


def default_precision(accelerator: str | None) -> tuple[str | None, str | None]:
    """``(precision, notice)`` for a run whose config names no precision.

    On the CPU (``accelerator`` ``cpu``, or ``auto``/None without CUDA): ``bf16-mixed`` when
    the CPU has native bf16, else ``32-true`` with a one-line notice why. Elsewhere
    ``(None, None)``: Lightning's default (32-true) stands.
    """
    on_cpu = accelerator == "cpu" or (
        accelerator in (None, "auto") and not torch.cuda.is_available()
    )
    if not on_cpu:
        return None, None
    if cpu_has_native_bf16():
        return "bf16-mixed", None
    return "32-true", (
        "precision: 32-true, since this CPU has no native bf16 instructions (AVX512-BF16, "
        "AMX-BF16 or Arm BF16), under which bf16 autocast is slower; pass "
        "--trainer.precision to choose"
    )
