"""Training losses: BCE for multi-label, CE for single-label, and the asymmetric loss (ASL).

All losses take logits ``(B, C)``; multi-label targets are float multi-hot ``(B, C)``, single-label
targets int64 class ids ``(B,)``. Multi-label losses average over all ``B x C`` terms, so ASL with
no focusing and no margin equals BCE exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config_loader import ConfigError
from ..utils import quote
from .config import LossConfig

__all__ = ["AsymmetricLoss", "build_loss", "resolve_loss_name"]


class AsymmetricLoss(nn.Module):
    """Asymmetric loss (Ridnik et al., ICCV 2021) for multi-label classification.

    Negatives are shifted by a probability margin (``p_m = max(p - clip, 0)``), so easy negatives
    cost nothing, and each term is down-weighted by ``(1 - p_t) ** gamma`` with separate exponents
    for positives and negatives; many-class multi-label sets are dominated by easy negatives.

    Args:
        gamma_pos: focusing exponent of the positive terms.
        gamma_neg: focusing exponent of the negative terms.
        clip: probability margin of the negatives (0 disables).
        eps: floor of the probabilities inside the logarithms.
    """

    def __init__(self, *, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05, eps: float = 1e-8):
        super().__init__()
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.clip = clip
        self.eps = eps

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean ASL over the ``(B, C)`` terms."""
        logits = logits.float()
        targets = targets.to(logits.dtype)
        p = torch.sigmoid(logits)
        # Probability of "not this class", raised by the margin so that p < clip costs nothing.
        q = (1 - p + self.clip).clamp(max=1) if self.clip > 0 else 1 - p
        pos = targets * torch.log(p.clamp(min=self.eps))
        neg = (1 - targets) * torch.log(q.clamp(min=self.eps))
        loss = pos + neg
        if self.gamma_pos > 0 or self.gamma_neg > 0:
            p_t = p * targets + q * (1 - targets)
            gamma = self.gamma_pos * targets + self.gamma_neg * (1 - targets)
            loss = loss * torch.pow(1 - p_t, gamma)
        return -loss.mean()

    def extra_repr(self) -> str:
        return f"gamma_pos={self.gamma_pos}, gamma_neg={self.gamma_neg}, clip={self.clip}"


class _CrossEntropy(nn.Module):
    """Softmax cross-entropy on int64 class ids (rejects multi-hot targets with a clear message)."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.ndim != 1:
            raise ValueError(f"loss 'ce' needs (B,) class ids (single-label data), got targets of shape {tuple(targets.shape)}")
        return F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)


class _BinaryCrossEntropy(nn.Module):
    """Sigmoid binary cross-entropy on float multi-hot targets, averaged over ``B x C``."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.ndim != 2:
            raise ValueError(f"loss 'bce' needs (B, C) multi-hot targets, got targets of shape {tuple(targets.shape)}")
        return F.binary_cross_entropy_with_logits(logits.float(), targets.to(torch.float32))


def resolve_loss_name(cfg: LossConfig, multi_label: bool) -> str:
    """The concrete loss for the data: ``auto`` becomes ``bce`` or ``ce``; mismatches are errors."""
    name = cfg.name
    if name == "auto":
        return "bce" if multi_label else "ce"
    if name == "ce" and multi_label:
        raise ConfigError("loss.name: 'ce' needs single-label data; this dataset is multi-label (use bce or asymmetric)")
    if name in ("bce", "asymmetric") and not multi_label:
        raise ConfigError(f"loss.name: {quote(name)} needs multi-label data; this dataset is single-label (use ce)")
    return name


def build_loss(cfg: LossConfig, multi_label: bool) -> nn.Module:
    """The loss module ``cfg`` names for multi- or single-label data."""
    name = resolve_loss_name(cfg, multi_label)
    if name == "bce":
        return _BinaryCrossEntropy()
    if name == "ce":
        return _CrossEntropy(cfg.label_smoothing)
    return AsymmetricLoss(gamma_pos=cfg.gamma_pos, gamma_neg=cfg.gamma_neg, clip=cfg.clip)
