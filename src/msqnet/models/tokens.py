"""What every video encoder returns: its tokens and their layout (shared by the encoders and the pooling)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["VideoTokens"]


@dataclass
class VideoTokens:
    """Backbone output: ``tokens`` (B, L, D) and their layout.

    Args:
        tokens: ``last_hidden_state``, (B, L, D).
        has_cls: whether ``tokens[:, 0]`` is a CLS token.
        num_time: temporal positions in the token grid (T for TimeSformer, T / tubelet for VideoMAE).
        num_space: spatial patches per temporal position.
        time_innermost: token order after CLS is ``(space, time)`` (TimeSformer) rather than
            ``(time, space)`` (VideoMAE).
    """

    tokens: torch.Tensor
    has_cls: bool
    num_time: int
    num_space: int
    time_innermost: bool
