"""Classification heads: one score per class from that class's decoded feature."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..precision import to_param_dtype

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
    """Open-vocabulary head: ``logit_c = <F h_c, P e_c> / sqrt(D) + b``, where ``e_c`` is the class's
    (normalised) label embedding and ``F``, ``P`` shared linear maps, so any class name can be scored.

    ``P`` is linear: a class never trained on gets the classifier its text implies, a linear function
    of how its embedding relates to the training classes'.

    Args:
        text_dim: E, the width of the label embeddings.
        dim: D, the decoder width.
    """

    def __init__(self, text_dim: int, dim: int):
        super().__init__()
        self.text_proj = nn.Linear(text_dim, dim, bias=False)
        self.feat_proj = nn.Linear(dim, dim)
        self.bias = nn.Parameter(torch.tensor(-2.0))  # multi-label priors are low

    def forward(self, h: torch.Tensor, label_embed: torch.Tensor | None = None) -> torch.Tensor:
        """Score class features h (B, C, D) against label embeddings (C, E) -> logits (B, C)."""
        if label_embed is None:
            raise ValueError("the text head needs the label embeddings of the classes to score")
        w = self.text_proj(to_param_dtype(label_embed, self.text_proj))  # (C, D)
        return (self.feat_proj(h) * w).sum(-1) / math.sqrt(h.shape[-1]) + self.bias
