"""Token reduction: from the backbone's spatio-temporal tokens to the decoder's memory.

``temporal`` and ``reference`` give one token per temporal position (the class queries can weight time
only); ``spatiotemporal`` keeps every patch token, so each class query's cross-attention is a map over
space and time.
"""
from __future__ import annotations

import typing

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..utils import quote
from .config import Pooling
from .video_encoder import VideoTokens

__all__ = ["TemporalPool", "SpatioTemporalTokens", "ReferencePool", "build_pooling"]


class TemporalPool(nn.Module):
    """One token per frame: the mean of that frame's patch tokens (optionally plus CLS).

    This is what the paper describes. HF TimeSformer orders tokens ``[CLS, (patch, frame)]`` with
    frames innermost, so the per-frame mean needs the layout, not a 1-D pool over the token axis.
    """

    def __init__(self, add_cls: bool = False):
        super().__init__()
        self.add_cls = add_cls

    def forward(self, v: VideoTokens) -> torch.Tensor:
        """Pool ``v.tokens`` (B, L, D) to (B, num_time, D)."""
        x = v.tokens[:, 1:] if v.has_cls else v.tokens  # (B, N*T', D)
        pattern = "b (n t) d -> b t n d" if v.time_innermost else "b (t n) d -> b t n d"
        x = rearrange(x, pattern, t=v.num_time, n=v.num_space).mean(dim=2)  # (B, T', D)
        if self.add_cls and v.has_cls:
            x = x + v.tokens[:, :1]  # CLS (B, 1, D) broadcast over time
        return x


class SpatioTemporalTokens(nn.Module):
    """No reduction: every patch token of every temporal position, time-major (optionally plus CLS).

    The decoder's memory is then T' x N tokens instead of T', so a class query can pick out where in
    each frame its class happens, not only when (``msqnet.inference.explain``).
    """

    def __init__(self, add_cls: bool = False):
        super().__init__()
        self.add_cls = add_cls

    def forward(self, v: VideoTokens) -> torch.Tensor:
        """Reorder ``v.tokens`` (B, L, D) to (B, num_time * num_space, D), index ``t * num_space + n``."""
        x = v.tokens[:, 1:] if v.has_cls else v.tokens  # (B, N*T', D) or (B, T'*N, D)
        if v.time_innermost:  # TimeSformer orders patches (space, time): make it time-major like the others
            x = rearrange(x, "b (n t) d -> b (t n) d", t=v.num_time, n=v.num_space)  # (B, T'*N, D)
        if self.add_cls and v.has_cls:
            x = x + v.tokens[:, :1]  # CLS (B, 1, D) broadcast over every token
        return x


class ReferencePool(nn.Module):
    """The reference's reduction: ``adaptive_avg_pool1d`` over the whole token axis (CLS included).

    With TimeSformer's frame-innermost order each bin averages a band of spatial patches over all
    frames rather than one frame; kept for parity with published checkpoints.

    Args:
        num_out: tokens out (the reference: the clip's frame count T).
    """

    def __init__(self, num_out: int):
        super().__init__()
        self.num_out = num_out

    def forward(self, v: VideoTokens) -> torch.Tensor:
        """Pool ``v.tokens`` (B, L, D) to (B, num_out, D)."""
        x = F.adaptive_avg_pool1d(v.tokens.transpose(1, 2), self.num_out)  # (B, D, num_out)
        return x.transpose(1, 2)


def build_pooling(kind: Pooling, *, num_frames: int, add_cls: bool = False) -> nn.Module:
    """The pooling module named by ``ModelConfig.pooling``, for clips of ``num_frames`` frames."""
    if kind == "temporal":
        return TemporalPool(add_cls=add_cls)
    if kind == "spatiotemporal":
        return SpatioTemporalTokens(add_cls=add_cls)
    if kind == "reference":
        return ReferencePool(num_frames)
    raise ValueError(f"unknown pooling {quote(kind)}; expected one of {list(typing.get_args(Pooling))}")
