"""One optimisation step: forward and backward of a micro-batch, the update, and what a non-finite one does.

A non-finite loss or gradient stops the run (``nonfinite: raise``) or is skipped and counted
(``skip``). The trainer calls these for every step; ``benchmarks/train_speed.py`` times them alone.
"""
from __future__ import annotations

import logging
import math
from typing import Sequence

import torch

from ..models.msqnet import FrozenFrames
from ..precision import autocast
from .config import NonFinite

__all__ = ["NonFiniteError", "NonFiniteGuard", "forward_backward", "gradient_norm", "optimizer_step",
           "MAX_CONSECUTIVE_NONFINITE"]

log = logging.getLogger("msqnet.train")

# With ``nonfinite: skip``, this many non-finite optimiser steps in a row mean the model has diverged.
MAX_CONSECUTIVE_NONFINITE = 20


class NonFiniteError(RuntimeError):
    """Training met a NaN or infinite loss or gradient (``nonfinite: raise``); the weights were not updated."""


def forward_backward(
    model: torch.nn.Module,
    loss_fn: torch.nn.Module,
    video: torch.Tensor | None,
    target: torch.Tensor,
    *,
    device: torch.device,
    precision: str = "fp32",
    frozen: FrozenFrames | None = None,
    scaler: torch.amp.GradScaler | None = None,
    loss_scale: float = 1.0,
) -> torch.Tensor:
    """Forward a batch (clips, or their cached frozen outputs), backpropagate ``loss * loss_scale``;
    returns the unscaled loss (detached)."""
    with autocast(device, precision):
        out = model(video, frozen=frozen)
    loss = loss_fn(out.logits, target)  # the losses compute in float32
    scaled = loss * loss_scale
    if scaler is not None and scaler.is_enabled():
        scaled = scaler.scale(scaled)
    scaled.backward()
    return loss.detach()


def gradient_norm(params: Sequence[torch.nn.Parameter]) -> float:
    """The global L2 norm of the parameters' gradients (0 without any)."""
    norms = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


def optimizer_step(
    params: Sequence[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad_norm: float | None = None,
    *,
    check_finite: bool = False,
) -> float | None:
    """Unscale, clip, step and zero the gradients; returns the gradient norm when clipping or checking.

    With ``check_finite``, a non-finite gradient norm skips the update (weights and optimiser state
    untouched, gradients zeroed) and is returned for the caller to act on. An fp16 gradient scaler
    skips such steps itself (and lowers its scale), so its steps are not checked.
    """
    use_scaler = scaler is not None and scaler.is_enabled()
    if use_scaler:
        scaler.unscale_(optimizer)
    norm = None
    if clip_grad_norm is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip_grad_norm))
    elif check_finite and not use_scaler:
        norm = gradient_norm(params)
    if check_finite and not use_scaler and not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return norm
    if use_scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm


class NonFiniteGuard:
    """Decides what a non-finite optimiser step does: stop the run (``raise``), or leave the weights
    as they are, count the step and go on (``skip``), until ``MAX_CONSECUTIVE_NONFINITE`` in a row
    say the model has diverged.

    Args:
        mode: ``raise`` or ``skip`` (``TrainConfig.nonfinite``).
    """

    def __init__(self, mode: NonFinite):
        self.mode = mode
        self.in_a_row = 0

    def finite(self) -> None:
        """A step updated the weights."""
        self.in_a_row = 0

    def nonfinite(self, what: str, value: float | None, where: str, params: Sequence[torch.nn.Parameter],
                  skipped_before: int) -> None:
        """A step's ``what`` (``loss``, ``gradient norm``) was ``value`` (``None``: another process's) at
        ``where``; raises ``NonFiniteError`` unless the step may be skipped (then logs the first ones)."""
        if self.mode == "raise":
            shown = "another process's batch" if value is None else value
            raise NonFiniteError(
                f"non-finite {what} ({shown}) at {where}; the weights were not updated. Lower optim.lr, set "
                f"clip_grad_norm, check those clips, or set nonfinite: skip to skip such steps and count them")
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise NonFiniteError(
                f"non-finite {what} at {where}, and the weights themselves are non-finite: skipping steps cannot "
                f"recover from that; lower optim.lr or set clip_grad_norm, and restart")
        self.in_a_row += 1
        if self.in_a_row >= MAX_CONSECUTIVE_NONFINITE:
            raise NonFiniteError(
                f"non-finite {what} at {where}: {self.in_a_row} optimiser steps in a row were non-finite, so "
                f"the model has diverged and skipping cannot recover; lower optim.lr or set clip_grad_norm, and restart")
        if skipped_before < 10:
            log.warning("skipped optimiser step: non-finite %s at %s (nonfinite: skip)", what, where)
