"""What the machine offers, decided in one place and overridable: the CPU's matrix ISA, and device names.

Every branch the code takes from the hardware reads it here, so each branch can be forced (and is
tested) on any machine:

- :func:`cpu_isa`: ``amx`` (Intel AMX tiles: bf16 GEMMs in hardware, several times fp32's rate),
  ``avx512_bf16`` (bf16 dot products in AVX512 registers) or ``none`` (bf16 is emulated, slower than
  fp32). It decides precision ``auto`` (:func:`msqnet.precision.resolve_precision`), the
  attention ``auto`` choice (:func:`msqnet.models.attention.attend`) and compiling ``auto``
  (:func:`msqnet.compiled.should_compile`). The environment variable
  ``MSQNET_CPU_ISA=amx|avx512_bf16|none`` replaces what the CPU reports, e.g. to run the AMX
  branch's code on a machine without AMX (slowly: bf16 is then emulated, but the numbers are the same).
- :func:`parse_device`: the one parser of device names (``auto``, ``cpu``, ``cuda``, ``cuda:N``)
  for every command and config, so a bad name is a one-line error where it is read.
- :func:`describe`: one line saying which branches this machine takes (the test log prints it).

CUDA-only branches (NCCL, fp16/bf16 autocast on CUDA, the CUDA flash-attention kernels) have no CPU
stand-in for their kernels; ``benchmarks/gpu_checks.py`` runs them on a GPU machine.
"""
from __future__ import annotations

import os
import re
import typing
from typing import Literal

import torch

from .utils import quote

__all__ = ["CpuIsa", "ISA_ENV", "cpu_isa", "detected_cpu_isa", "cpu_has_bf16", "cpu_prefers_fused_bf16_attention",
           "cpu_prefers_compiled", "parse_device", "describe"]

CpuIsa = Literal["amx", "avx512_bf16", "none"]
ISA_ENV = "MSQNET_CPU_ISA"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


_DETECTED: list[CpuIsa] = []  # the CPU's answer, asked once (a plain global: torch.compile traces it without warning)


def detected_cpu_isa() -> CpuIsa:
    """The matrix ISA this CPU reports to PyTorch (ignoring ``MSQNET_CPU_ISA``)."""
    if _DETECTED:
        return _DETECTED[0]

    def supported(name: str) -> bool:
        check = getattr(torch.cpu, name, None)
        return bool(check is not None and check())

    if supported("_is_amx_tile_supported"):
        _DETECTED.append("amx")
    else:
        _DETECTED.append("avx512_bf16" if supported("_is_avx512_bf16_supported") else "none")
    return _DETECTED[0]


def cpu_isa() -> CpuIsa:
    """The CPU's matrix ISA as the code branches on it: ``MSQNET_CPU_ISA`` when set, else :func:`detected_cpu_isa`."""
    forced = os.environ.get(ISA_ENV, "").strip()
    if not forced:
        return detected_cpu_isa()
    if forced not in typing.get_args(CpuIsa):
        raise ValueError(f"{ISA_ENV}={quote(forced)}: expected one of {list(typing.get_args(CpuIsa))} (or unset)")
    return typing.cast(CpuIsa, forced)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX512-BF16): precision ``auto`` is bf16 there."""
    return cpu_isa() != "none"


def cpu_prefers_fused_bf16_attention() -> bool:
    """Whether the fused CPU attention kernel beats three plain bf16 kernels here: everywhere but on AVX512-BF16
    without AMX (measured on each kind, see :mod:`msqnet.models.attention`)."""
    return cpu_isa() != "avx512_bf16"


def cpu_prefers_compiled() -> bool:
    """Whether compiling the encoder blocks pays on this CPU (compiling ``auto``, :mod:`msqnet.compiled`): only with
    AMX, where the non-GEMM work is about half of the bf16 forward; elsewhere the forward is GEMM-bound."""
    return cpu_isa() == "amx"


def parse_device(name: str) -> str:
    """``name`` if it is a device msqnet runs on (``auto``, ``cpu``, ``cuda``, ``cuda:N``), else a ValueError."""
    if not isinstance(name, str) or not _DEVICE.fullmatch(name):
        raise ValueError(f"device {quote(name)}: expected auto, cpu, cuda or cuda:N (N = 0, 1, ...)")
    return name


def describe() -> str:
    """One line: the CPU ISA (detected, and forced if so) and the branches ``auto`` takes on it."""
    isa = cpu_isa()
    forced = f" (forced by {ISA_ENV}; the CPU reports {detected_cpu_isa()})" if os.environ.get(ISA_ENV, "").strip() else ""
    attention = "sdpa (fused)" if cpu_prefers_fused_bf16_attention() else "three bf16 kernels"
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    compiled = "b16-sized models compiled" if cpu_prefers_compiled() else "eager"
    return (f"CPU ISA {isa}{forced}: precision auto -> {'bf16' if cpu_has_bf16() else 'fp32'} on the CPU, "
            f"attention auto in bf16 -> {attention}, compile auto -> {compiled}; CUDA: {cuda}")
