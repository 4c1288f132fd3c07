"""The compiled inference path: each repeated encoder block through ``torch.compile`` (inductor), compiled once.

A model's repeated blocks (every ``nn.ModuleList`` of two or more modules of one class: the
TimeSformer / VideoMAE / CLIP layers; not torch's own transformer layers, see :func:`repeated_blocks`)
run through one ``torch.compile``d function that takes the block as an input. Dynamo treats a block's
weights as inputs (``inline_inbuilt_nn_modules``), so the twelve layers of a ViT-B share one compiled
graph: it is compiled on the first layer's first call and reused by the others (no per-layer
recompiles; a new block class, input shape or dtype compiles once more, up to dynamo's
``recompile_limit`` variants, past which dynamo itself runs eager). The state-dict keys do not change,
and a deep copy of a compiled model runs its own weights.

The setting, ``MSQNET_COMPILE`` or the ``setting`` argument:

- ``0``: eager (PyTorch's kernels, one op at a time);
- ``1``: compiled;
- ``auto`` (default): compiled only on a CPU with AMX (:func:`msqnet.hardware.cpu_isa`, forced with
  ``MSQNET_CPU_ISA``) and only for a model whose repeated blocks hold at least
  ``AUTO_MIN_BLOCK_WEIGHTS`` weights (the b16 family: seconds per clip, against a warm-up of tens of
  seconds; ``msqnet-lite`` and test-sized models stay eager). On AMX the issue-19 profile has the
  non-GEMM work (layout copies, LayerNorm, GELU, softmax) at about half of the bf16 forward, which
  fusion takes away; elsewhere the forward is GEMM-bound and compiling measured no faster
  (``benchmarks/model_speed.py``, README "Benchmarks"), so it would only add its warm-up. Eager on
  CUDA (not measured).

The warm-up is paid on the first forward of each input shape and dtype (tens of seconds for a
ViT-B block on a 2-core CPU; the inductor cache on disk makes later processes faster). When
compilation fails (no C++ compiler, an unsupported op), one warning is logged and every block runs
eager from then on: the numbers are the same, only slower.
"""
from __future__ import annotations

import logging
import os
import typing
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from .hardware import cpu_prefers_compiled
from .utils import quote

__all__ = ["CompileSetting", "COMPILE_ENV", "AUTO_MIN_BLOCK_WEIGHTS", "compile_setting", "should_compile",
           "repeated_blocks", "compile_blocks", "uncompile_blocks"]

log = logging.getLogger(__name__)

CompileSetting = Literal["0", "1", "auto"]
COMPILE_ENV = "MSQNET_COMPILE"
AUTO_MIN_BLOCK_WEIGHTS = 5_000_000  # auto's size rule: below it, the warm-up outweighs what compiling saves


def compile_setting(setting: str | None = None) -> CompileSetting:
    """``setting``, else ``MSQNET_COMPILE``, else ``auto``; a ValueError for anything but ``0``, ``1``, ``auto``."""
    where = "compile setting" if setting is not None else COMPILE_ENV
    value = (setting if setting is not None else os.environ.get(COMPILE_ENV, "")).strip() or "auto"
    if value not in typing.get_args(CompileSetting):
        raise ValueError(f"{where}={quote(value)}: expected 0 (eager), 1 (compiled) or auto")
    return typing.cast(CompileSetting, value)


def should_compile(model: nn.Module, device: torch.device | str, setting: str | None = None) -> bool:
    """Whether inference of ``model`` on ``device`` runs compiled under ``setting`` (``auto``: the module docstring)."""
    value = compile_setting(setting)
    if value != "auto":
        return value == "1"
    if torch.device(device).type != "cpu" or not cpu_prefers_compiled():
        return False
    return sum(p.numel() for block in repeated_blocks(model) for p in block.parameters()) >= AUTO_MIN_BLOCK_WEIGHTS


def repeated_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of ``model``: the members of every ModuleList of >= 2 modules of one class, except
    torch's own ``nn.TransformerEncoderLayer`` / ``DecoderLayer`` (their inference path is one fused native
    kernel already, which is all dynamo would capture of them)."""
    blocks = []
    for sub in model.modules():
        if (isinstance(sub, nn.ModuleList) and len(sub) >= 2 and len({type(m) for m in sub}) == 1
                and not type(sub[0]).__module__.startswith("torch.")):
            blocks.extend(sub)
    return blocks


@dataclass
class _Fallback:
    """Shared by one model's compiled blocks: once one fails to compile, all run eager."""

    blocks: list[nn.Module] = field(default_factory=list)
    failed: bool = False

    def disable(self, error: BaseException) -> None:
        """Log ``error`` once (one line) and put every block back on the eager path."""
        if not self.failed:
            first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
            log.warning("torch.compile failed (%s: %s); running eager (same numbers, slower). Set %s=0 to skip "
                        "compiling.", type(error).__name__, first, COMPILE_ENV)
        self.failed = True
        uncompile_blocks(self.blocks)


def _compile_errors() -> tuple[type[BaseException], ...]:
    """The exception types of a failed compilation (dynamo, inductor, the C++ toolchain)."""
    from torch._dynamo.exc import TorchDynamoException

    errors: list[type[BaseException]] = [TorchDynamoException]
    try:
        from torch._inductor.exc import InductorError

        errors.append(InductorError)
    except ImportError:  # older torch: inductor errors arrive as BackendCompilerFailed
        pass
    return tuple(errors)


def _block_forward(block: nn.Module, *args, **kwargs):
    """One call of ``block``, as the compiled function sees it: the block is an input, so one compiled graph
    serves every block of a class (and a deep copy of the model runs its own weights)."""
    return block._call_impl(*args, **kwargs)


_COMPILED: list = []  # torch.compile(_block_forward), made on first use (importing dynamo takes a second or two)


def _compiled_block_forward(block: nn.Module, *args, **kwargs):
    """:func:`_block_forward` through ``torch.compile`` (inductor): compiled on the first call of each block class,
    input shape and dtype, then reused."""
    if not _COMPILED:
        _COMPILED.append(torch.compile(_block_forward))
    return _COMPILED[0](block, *args, **kwargs)


class _CompiledCall:
    """A block's ``_compiled_call_impl``: the compiled forward, or the eager one once compiling has failed."""

    def __init__(self, block: nn.Module, fallback: _Fallback):
        self.block = block
        self.fallback = fallback

    def __call__(self, *args, **kwargs):
        if not self.fallback.failed:
            try:
                return _compiled_block_forward(self.block, *args, **kwargs)
            except _compile_errors() as e:
                self.fallback.disable(e)
        return self.block._call_impl(*args, **kwargs)


def compile_blocks(model: nn.Module) -> nn.Module:
    """Compile every repeated block of ``model`` in place (inductor), with the eager fallback of the module
    docstring; returns ``model``."""
    fallback = _Fallback(repeated_blocks(model))
    for block in fallback.blocks:
        block._compiled_call_impl = _CompiledCall(block, fallback)  # what nn.Module.__call__ runs when set
    return model


def uncompile_blocks(blocks: typing.Iterable[nn.Module]) -> None:
    """Put ``blocks`` back on the eager path."""
    for block in blocks:
        block._compiled_call_impl = None
