"""Attention implementation of the encoders: fused (``scaled_dot_product_attention``) or eager.

``fused`` (the default) runs every encoder's attention through
``torch.nn.functional.scaled_dot_product_attention``, which never materialises the (N, N) score
matrix in memory and uses the flash-attention kernel on CPU and GPU. ``eager`` keeps the explicit
``softmax(Q K^T / sqrt(d)) V`` arithmetic of the reference implementation (reference parity).

- HF's TimeSformer writes its attention by hand and has no ``attn_implementation`` switch in
  transformers 5, so :class:`FusedTimesformerSelfAttention` replaces its self-attention modules,
  reusing their ``qkv`` projection: the same weights under the same state-dict keys.
- HF's VideoMAE and CLIP support ``attn_implementation="sdpa"`` themselves; it is switched there.
- ``nn.Transformer`` (the query decoder) already calls the fused kernel inside
  ``nn.MultiheadAttention`` (it asks for no attention weights); nothing to switch.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import PreTrainedModel
from transformers.models.timesformer.modeling_timesformer import TimesformerSelfAttention

__all__ = ["AttentionKind", "FusedTimesformerSelfAttention", "set_attention"]

AttentionKind = Literal["fused", "eager"]


class FusedTimesformerSelfAttention(nn.Module):
    """TimeSformer self-attention through ``scaled_dot_product_attention``, a drop-in for HF's.

    Args:
        qkv: the layer's joint query/key/value projection, D -> 3D (kept: same weights, same keys).
        num_heads: attention heads.
        dropout: attention-probability dropout, applied in training only.
    """

    def __init__(self, qkv: nn.Linear, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.qkv = qkv
        self.num_heads = num_heads
        self.dropout = dropout

    def forward(self, hidden_states: torch.Tensor, output_attentions: bool = False) -> tuple[torch.Tensor]:
        """Attend tokens (B, N, D) -> (B, N, D), as a 1-tuple like HF's module."""
        if output_attentions:
            raise ValueError("fused attention does not return attention weights; build the model with attention: eager")
        q, k, v = rearrange(self.qkv(hidden_states), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)  # (B, H, N, d)
        return (rearrange(out, "b h n d -> b n (h d)"),)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, dropout={self.dropout}, fused"


def _timesformer_attention(old: nn.Module, kind: AttentionKind, config) -> nn.Module:
    """The TimeSformer self-attention module of ``kind`` holding ``old``'s qkv projection."""
    if kind == "fused":
        if isinstance(old, FusedTimesformerSelfAttention):
            return old
        return FusedTimesformerSelfAttention(old.qkv, config.num_attention_heads, config.attention_probs_dropout_prob)
    if isinstance(old, TimesformerSelfAttention):
        return old
    eager = TimesformerSelfAttention(config)
    eager.qkv = old.qkv
    return eager.train(old.training)


def set_attention(module: nn.Module, kind: AttentionKind) -> nn.Module:
    """Switch every encoder attention inside ``module`` to ``fused`` or ``eager``, in place; returns it."""
    if kind not in ("fused", "eager"):
        raise ValueError(f"attention: expected 'fused' or 'eager', got {kind!r}")
    from transformers import TimesformerModel

    for sub in module.modules():
        if isinstance(sub, TimesformerModel):
            for layer in sub.encoder.layer:
                for block in (layer.attention, getattr(layer, "temporal_attention", None)):
                    if block is not None:
                        block.attention = _timesformer_attention(block.attention, kind, sub.config)
        elif isinstance(sub, PreTrainedModel) and sub._supports_sdpa and sub.config._attn_implementation in ("sdpa", "eager"):
            sub.set_attn_implementation("sdpa" if kind == "fused" else "eager")
    return module
