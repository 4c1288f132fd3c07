"""Classification heads: one score per class from that class's decoded feature."""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GroupWiseLinear", "TextConditionedHead"]


class GroupWiseLinear(nn.Module):
    """Query2Label's head: ``logit_c = <W_c, h_c> + b_c`` with free per-class weights (closed set).

    Args:
        num_classes: C.
        dim: D, the decoder width.
    """

    def __init__(self, num_classes: int, dim: int, bias: bool = True):
        super().__init__()
        self.W = nn.Parameter(torch.empty(1, num_classes, dim))
        self.b = nn.Parameter(torch.empty(1, num_classes)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(+-1/sqrt(D)) init, as the reference."""
        bound = 1.0 / math.sqrt(self.W.shape[2])
        nn.init.uniform_(self.W, -bound, bound)
        if self.b is not None:
            nn.init.uniform_(self.b, -bound, bound)

    def forward(self, h: torch.Tensor, label_embed: torch.Tensor | None = None) -> torch.Tensor:
        """Score class features h (B, C, D) -> logits (B, C)."""
        if h.shape[1] != self.W.shape[1]:
            raise ValueError(
                f"the group-wise linear head was trained for {self.W.shape[1]} classes, got {h.shape[1]}: "
                "scoring other class names needs head: text"
            )
        logits = (self.W * h).sum(-1)  # (B, C)
        return logits if self.b is None else logits + self.b


class TextConditionedHead(nn.Module):
    """Open-vocabulary head: ``logit_c = s * <norm(h_c), norm(P e_c)> + b``, where ``e_c`` is the
    class's text embedding and ``P`` a shared projection, so any class name can be scored.

    Args:
        text_dim: width of the label embeddings.
        dim: D, the decoder width.
    """

    def __init__(self, text_dim: int, dim: int):
        super().__init__()
        self.text_proj = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.feat_proj = nn.Linear(dim, dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.bias = nn.Parameter(torch.tensor(-2.0))  # multi-label priors are low

    def forward(self, h: torch.Tensor, label_embed: torch.Tensor | None = None) -> torch.Tensor:
        """Score class features h (B, C, D) against label embeddings (C, E) -> logits (B, C)."""
        if label_embed is None:
            raise ValueError("the text head needs the label embeddings of the classes to score")
        w = nn.functional.normalize(self.text_proj(label_embed), dim=-1)  # (C, D)
        f = nn.functional.normalize(self.feat_proj(h), dim=-1)  # (B, C, D)
        return self.logit_scale.exp().clamp(max=100.0) * (f * w.unsqueeze(0)).sum(-1) + self.bias
