"""Where the channels-last memory format trains faster, as measured with this suite.

``benchmarks/train_step.py`` (CPU) and ``benchmarks/gpu.py`` (GPU) measure the train step of
the 7-layer PConvUNet with the paper's loss, channels_last off and on:

- an x86 CPU with AVX-512 (AMD EPYC, oneDNN): fp32 1.08-1.15x, bf16-mixed 1.41x at 128x128
  batch 8 (2.87x fp32 against 2.03x without it);
- an NVIDIA H200 (compute capability 9.0, tensor cores): 1.17x in TF32, 1.18x in bf16-mixed,
  1.17x in 16-mixed at 256x256 batch 32.

Tensor cores (compute capability 7.0 and up) and oneDNN's AVX-512 kernels take NHWC natively;
elsewhere (other CPUs, Apple and other accelerators) nothing was measured and the default
stays contiguous (NCHW).
"""

from __future__ import annotations

import platform

import torch

from pconv_lightning.precision import cpu_flags


def channels_last_pays(device: torch.device) -> bool:
    """Whether training on ``device`` was measured faster in channels-last format."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (7, 0)
    if device.type == "cpu":
        return platform.machine() in ("x86_64", "AMD64") and "avx512f" in cpu_flags()
    return False
