"""Per-encoder input normalisation: each encoder sees the statistics it was trained with."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["Normalize"]


class Normalize(nn.Module):
    """Map a clip or image batch (..., 3, H, W), uint8 or float in [0, 1], to ``(x - mean) / std``.

    With ``mean=None`` the input is passed through unchanged (reference parity: both encoders
    receive the same, already normalised tensor). uint8 input is always scaled to [0, 1] first.
    """

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None):
        super().__init__()
        if (mean is None) != (std is None):
            raise ValueError("mean and std must both be set or both be None")
        self.enabled = mean is not None
        if self.enabled:
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (..., 3, H, W)."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if not self.enabled:
            return x
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
