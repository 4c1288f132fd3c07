"""Numeric precision: the allowed values, what inference's ``auto`` means on this machine, autocast, and
the one rule for where dtypes meet.

``auto`` is bf16 where bf16 matrix products run in hardware (CUDA, or a CPU with AVX512-BF16 or
AMX: :func:`msqnet.hardware.cpu_isa`, forced with ``MSQNET_CPU_ISA``), fp32 elsewhere: on a CPU
without them bf16 is emulated and slower than fp32.

The dtype rule, the same for every encoder family and every path (train, evaluate, predict, cache, export):

1. **Weights are all of one dtype**: fp32 (training, evaluation, ``msqnet.predict`` from Python; bf16
   or fp16 arithmetic then comes from :func:`autocast`), or all bf16 (:func:`cast_for_inference`,
   what ``msqnet predict`` runs). Nothing is left in fp32 beside bf16 weights, nor the other way round.
2. **A tensor is cast to the dtype of the weights that read it, where they read it**
   (:func:`to_param_dtype`), never to a fixed ``float32``: pixels (uint8 or float) at each encoder's
   entry, cached frozen features (stored as fp16) and the frozen part's outputs at the trainable
   part's entry, label embeddings (fp32 from the text encoder, or any caller) at the query builder
   and the text head, the frozen visual embedding at the query builder. So one code path runs with
   fp32 or bf16 weights, with or without autocast.
3. **Autocast changes the arithmetic, not the interfaces**: inside an autocast region matrix
   products and convolutions compute in bf16/fp16 whatever their inputs; every other op sees inputs
   in its weights' dtype by rule 2 (LayerNorm on CPU refuses fp32 input with bf16 weights).
4. **What leaves the model is float32**: logits become probabilities in fp32
   (``engine.inference.to_probabilities``), embedders return fp32, the frozen-frame cache stores fp16
   by choice (half the disk) and is cast by rule 2 when read, and ONNX graphs are traced from an
   fp32 CPU copy of the weights (ONNX Runtime runs fp32).
"""
from __future__ import annotations

import contextlib
import typing
from typing import Literal

import torch

from .compiled import compile_blocks, should_compile
from .hardware import cpu_has_bf16

__all__ = ["Precision", "InferencePrecision", "cpu_has_bf16", "resolve_precision", "autocast", "cast_for_inference",
           "param_dtype", "to_param_dtype"]

# Training and evaluation: fp32, or autocast to bf16 or fp16 (fp16 with a gradient scaler in training).
Precision = Literal["fp32", "bf16", "fp16"]
# Prediction: ``auto`` (bf16 where the hardware multiplies it natively, else fp32), bf16 or fp32.
InferencePrecision = Literal["auto", "bf16", "fp32"]


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


def cast_for_inference(model: torch.nn.Module, precision: str, *, compile: str | None = None) -> torch.nn.Module:
    """Store ``model``'s weights in the compute dtype of a resolved ``precision``, and compile its repeated
    blocks where ``compile`` (default: ``MSQNET_COMPILE``, else ``auto``) says so; in place.

    For a model used only for inference (``msqnet predict``): bf16 weights halve the memory read
    per clip and spare autocast from casting every weight on every call; fp32 leaves them as they
    are. Compiling is :mod:`msqnet.compiled`'s (``auto``: b16-sized models on a CPU with AMX).
    """
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"precision: expected a resolved 'bf16' or 'fp32', got {precision!r}")
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    weights = next(model.parameters(), None)
    if should_compile(model, weights.device if weights is not None else "cpu", compile):
        compile_blocks(model)
    return model


def param_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype of ``module``'s floating-point weights (float32 for a module without any)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    for b in module.buffers():
        if b.is_floating_point():
            return b.dtype
    return torch.float32


def to_param_dtype(x: torch.Tensor, module: torch.nn.Module) -> torch.Tensor:
    """``x`` in the dtype of the weights of ``module``, the part about to read it (rule 2 above)."""
    return x.to(param_dtype(module))
