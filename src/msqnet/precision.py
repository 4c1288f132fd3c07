"""Numeric precision: the allowed values, what inference's ``auto`` means on this machine, and autocast.

``auto`` is bf16 where bf16 matrix products run in hardware (CUDA, or a CPU with AVX512-BF16 or
AMX), fp32 elsewhere: on a CPU without them bf16 is emulated and slower than fp32.
"""
from __future__ import annotations

import contextlib
import typing
from typing import Literal

import torch

__all__ = ["Precision", "InferencePrecision", "cpu_has_bf16", "resolve_precision", "autocast", "cast_for_inference"]

# Training and evaluation: fp32, or autocast to bf16 or fp16 (fp16 with a gradient scaler in training).
Precision = Literal["fp32", "bf16", "fp16"]
# Prediction: ``auto`` (bf16 where the hardware multiplies it natively, else fp32), bf16 or fp32.
InferencePrecision = Literal["auto", "bf16", "fp32"]


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX)."""
    cpu = torch.cpu
    checks = (getattr(cpu, "_is_avx512_bf16_supported", None), getattr(cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``auto`` -> ``bf16`` or ``fp32`` for ``device``; ``bf16``/``fp32`` pass through."""
    if precision not in typing.get_args(InferencePrecision):
        raise ValueError(f"precision: expected one of {list(typing.get_args(InferencePrecision))}, got {precision!r}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """Autocast context for ``precision`` (``fp32`` = none; ``bf16``, ``fp16``) on ``device``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def cast_for_inference(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """Store ``model``'s weights in the compute dtype of a resolved ``precision``, in place.

    For a model used only for inference (``msqnet predict``): bf16 weights halve the memory read
    per clip and spare autocast from casting every weight on every call. fp32 leaves it as it is.
    """
    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision: expected a resolved 'bf16' or 'fp32', got {precision!r}")
    return model
