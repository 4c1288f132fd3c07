"""Attention implementation of the encoders: ``auto`` (default), ``sdpa`` or ``eager``.

- ``sdpa`` runs every encoder's attention through ``torch.nn.functional.scaled_dot_product_attention``
  (the fused flash-attention kernel on CPU and GPU: the (N, N) scores never reach memory).
- ``auto`` is ``sdpa``, except in bf16/fp16 on a CPU with AVX512-BF16 but without AMX
  (:func:`msqnet.hardware.cpu_isa`, forced with ``MSQNET_CPU_ISA``), where the CPU flash kernel
  computes no faster than in fp32; there ``softmax(Q K^T / sqrt(d)) V`` as three bf16 kernels is
  faster (measured on an AVX512-BF16 EPYC, one thread: 11 vs 16 ms for one TimeSformer-B spatial
  attention, 2.5 vs 6.5 ms for a temporal one; ``benchmarks/model_speed.py`` compares them). With
  AMX the fused kernel is faster; without any bf16 hardware (ISA ``none``, bf16 matrix products
  emulated) much faster: 21 vs 355 ms spatial, 8.6 vs 24 ms temporal (an AVX2 EPYC, one thread).
- ``eager`` keeps each encoder's own explicit arithmetic (reference parity).

HF's TimeSformer writes its attention by hand and has no ``attn_implementation`` switch in
transformers 5, so :class:`FastTimesformerSelfAttention` replaces its self-attention modules,
reusing their ``qkv`` projection: the same weights under the same state-dict keys. HF's VideoMAE
and CLIP take ``sdpa`` themselves, and ``auto`` through HF's attention-function registry.
``nn.Transformer`` (the query decoder) already calls the fused kernel inside ``nn.MultiheadAttention``
(it asks for no attention weights): nothing to switch there.
"""
from __future__ import annotations

import typing
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import AttentionInterface, PreTrainedModel, TimesformerModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.models.timesformer.modeling_timesformer import TimesformerSelfAttention

from ..hardware import cpu_prefers_fused_bf16_attention
from ..utils import quote
from .config import AttentionKind

__all__ = ["AttentionKind", "attend", "FastTimesformerSelfAttention", "set_attention"]

_HF_AUTO = "msqnet_auto"  # our ``auto`` under HF's attention-function registry


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, scale: float | None = None,
           dropout_p: float = 0.0, kind: Literal["auto", "sdpa"] = "auto") -> torch.Tensor:
    """``softmax(q k^T * scale) v`` for (B, H, N, d) tensors -> (B, H, N, d); ``scale`` default 1/sqrt(d)."""
    if (kind == "auto" and q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16)
            and not cpu_prefers_fused_bf16_attention()):
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        if k.shape[-2] > q.shape[-1]:  # scale whichever is smaller: q (N, d) or the scores (N, N)
            scores = (q * scale) @ k.transpose(-2, -1)  # (B, H, N, N)
        else:
            scores = (q @ k.transpose(-2, -1)) * scale
        probs = torch.softmax(scores, dim=-1)
        if dropout_p:
            probs = F.dropout(probs, dropout_p)
        return probs @ v
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale)


def _hf_auto_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                       **kwargs) -> tuple[torch.Tensor, None]:
    """:func:`attend` in HF's attention-function signature: (B, H, N, d) in, (B, N, H, d) out."""
    if attention_mask is not None or kwargs.get("is_causal"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    out = attend(query, key, value, scale=scaling, dropout_p=dropout)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(_HF_AUTO, _hf_auto_attention)


class FastTimesformerSelfAttention(nn.Module):
    """TimeSformer self-attention through :func:`attend`, a drop-in for HF's ``TimesformerSelfAttention``.

    Args:
        qkv: the layer's joint query/key/value projection, D -> 3D (kept: same weights, same keys).
        num_heads: attention heads.
        dropout: attention-probability dropout, applied in training only.
        kind: ``auto`` or ``sdpa`` (see the module docstring).
    """

    def __init__(self, qkv: nn.Linear, num_heads: int, dropout: float = 0.0, kind: Literal["auto", "sdpa"] = "auto"):
        super().__init__()
        self.qkv = qkv
        self.num_heads = num_heads
        self.dropout = dropout
        self.kind = kind

    def forward(self, hidden_states: torch.Tensor, output_attentions: bool = False) -> tuple[torch.Tensor]:
        """Attend tokens (B, N, D) -> (B, N, D), as a 1-tuple like HF's module."""
        if output_attentions:
            raise ValueError("attention weights are only returned by the eager attention; build the model with "
                             "attention: eager")
        q, k, v = rearrange(self.qkv(hidden_states), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        out = attend(q, k, v, dropout_p=self.dropout if self.training else 0.0, kind=self.kind)  # (B, H, N, d)
        return (rearrange(out, "b h n d -> b n (h d)"),)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, dropout={self.dropout}, kind={self.kind}"


def _timesformer_attention(old: nn.Module, kind: AttentionKind, config) -> nn.Module:
    """The TimeSformer self-attention module of ``kind`` holding ``old``'s qkv projection."""
    if kind == "eager":
        eager = TimesformerSelfAttention(config)
        eager.qkv = old.qkv
        return eager.train(old.training)
    return FastTimesformerSelfAttention(old.qkv, config.num_attention_heads, config.attention_probs_dropout_prob,
                                        kind).train(old.training)


def set_attention(module: nn.Module, kind: AttentionKind) -> nn.Module:
    """Switch every encoder attention inside ``module`` to ``kind`` (``auto``, ``sdpa``, ``eager``), in place."""
    if kind not in typing.get_args(AttentionKind):
        raise ValueError(f"attention: expected one of {list(typing.get_args(AttentionKind))}, got {quote(kind)}")
    hf_name = {"auto": _HF_AUTO, "sdpa": "sdpa", "eager": "eager"}[kind]
    for sub in module.modules():
        if isinstance(sub, TimesformerModel):
            for layer in sub.encoder.layer:
                for block in (layer.attention, getattr(layer, "temporal_attention", None)):
                    if block is not None:
                        block.attention = _timesformer_attention(block.attention, kind, sub.config)
        elif isinstance(sub, PreTrainedModel) and sub._supports_sdpa:
            sub.set_attn_implementation(hf_name)
    return module
