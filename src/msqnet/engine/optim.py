"""Optimiser with separate learning rates for the pretrained encoder and the new layers, and the LR schedule.

The schedule is a pure function of the optimiser step (``LRSchedule.factor``), so resuming needs
only the step count, never a pickled scheduler object.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .config import OptimConfig, ScheduleConfig

__all__ = ["build_optimizer", "param_groups", "LRSchedule"]


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """Trainable parameters in up to four groups: (encoder | new) x (decayed | not decayed).

    The encoder group holds ``model.video_encoder``'s parameters when that encoder was loaded
    pretrained (``cfg.encoder_lr`` applies); otherwise everything trains at ``cfg.lr``. Frozen
    parameters (``requires_grad=False``) are never handed to the optimiser. Weight decay applies to
    parameters of 2 or more dimensions only (weight matrices), never to biases, norms or scalars.
    """
    pretrained = getattr(getattr(getattr(model, "cfg", None), "video_encoder", None), "pretrained", None) is not None
    encoder = getattr(model, "video_encoder", None)
    encoder_ids = {id(p) for p in encoder.parameters()} if (pretrained and encoder is not None) else set()
    encoder_lr = cfg.lr if cfg.encoder_lr is None else cfg.encoder_lr
    groups: dict[tuple[str, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        part = "encoder" if id(p) in encoder_ids else "new"
        decay = p.ndim >= 2 and cfg.weight_decay > 0
        key = (part, decay)
        if key not in groups:
            groups[key] = {
                "name": f"{part}{'' if decay else '_no_decay'}",
                "params": [],
                "lr": encoder_lr if part == "encoder" else cfg.lr,
                "weight_decay": cfg.weight_decay if decay else 0.0,
            }
        groups[key]["params"].append(p)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    out = [groups[k] for k in sorted(groups)]
    for g in out:
        g["initial_lr"] = g["lr"]
    return out


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over the model's trainable parameters (see ``param_groups``)."""
    groups = param_groups(model, cfg)
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    # foreach=False: the per-parameter loop gives the same bits whatever the tensor grouping.
    return cls(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, foreach=False)


@dataclass
class LRSchedule:
    """Learning-rate factor (of each group's ``initial_lr``) at every optimiser step.

    Args:
        cfg: the schedule.
        steps_per_epoch: optimiser steps per epoch.
        epochs: training length in epochs.
    """

    cfg: ScheduleConfig
    steps_per_epoch: int
    epochs: int

    @property
    def total_steps(self) -> int:
        """Optimiser steps of the whole run."""
        return self.steps_per_epoch * self.epochs

    @property
    def warmup_steps(self) -> int:
        """Linear warmup length in steps."""
        return self.cfg.warmup_steps + round(self.cfg.warmup_epochs * self.steps_per_epoch)

    def factor(self, step: int) -> float:
        """The rate multiplier for optimiser step ``step`` (0-based: the rate the step is taken at)."""
        c = self.cfg
        warm = self.warmup_steps
        if step < warm:
            return (step + 1) / warm
        if c.name == "constant":
            return 1.0
        if c.name == "cosine":
            span = max(1, self.total_steps - warm)
            progress = min(1.0, (step - warm) / span)
            return c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        # warm_restarts: stepped per epoch, as the reference's CosineAnnealingWarmRestarts.
        epoch = step // self.steps_per_epoch
        t_cur, t_i = _restart_position(epoch, c.restart_epochs, c.restart_mult)
        return c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t_cur / t_i))

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's rate for step ``step``; returns the factor."""
        f = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * f
        return f


def _restart_position(epoch: int, t0: int, mult: int) -> tuple[int, int]:
    """(epochs into the current cycle, length of that cycle) of warm restarts with periods t0 * mult**k."""
    if mult == 1:
        return epoch % t0, t0
    length = t0
    while epoch >= length:
        epoch -= length
        length *= mult
    return epoch, length
