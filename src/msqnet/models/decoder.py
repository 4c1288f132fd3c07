"""The query decoder: ``nn.Transformer`` from the clip's memory tokens and one query per class to class features.

Its encoder reads the memory tokens (temporal, or space-time with ``pooling: spatiotemporal``); its decoder turns one query per class into one feature per class.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import DecoderConfig

__all__ = ["SinusoidalPositionalEncoding", "QueryDecoder"]


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sine/cosine position encoding added to (B, L, D) tokens, then dropout."""

    def __init__(self, d_model: int, *, dropout: float = 0.1, max_len: int = 2000):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float).unsqueeze(1)  # (max_len, 1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (D/2,)
        pe = torch.zeros(1, max_len, d_model)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the encoding for positions ``0..L-1`` to ``x`` (B, L, D)."""
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(f"sequence of {x.shape[1]} tokens exceeds max_len={self.pe.shape[1]}")
        return self.dropout(x + self.pe[:, : x.shape[1]])


class _NoEncoder(nn.Module):
    """Stands in for ``nn.Transformer``'s encoder when it has no layers: the memory is the tokens."""

    def forward(self, src: torch.Tensor, **kwargs) -> torch.Tensor:
        return src


def _encoder(cfg: DecoderConfig) -> nn.Module | None:
    """The memory encoder when ``nn.Transformer``'s own would not do: none for zero layers, and pre-norm layers
    built without the nested-tensor fast path (which only post-norm layers can take; PyTorch warns otherwise)."""
    if not cfg.num_encoder_layers:
        return _NoEncoder()
    if not cfg.norm_first:
        return None
    layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.num_heads, cfg.dim_feedforward, cfg.dropout,
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, cfg.num_encoder_layers, norm=nn.LayerNorm(cfg.d_model),
                                 enable_nested_tensor=False)


class QueryDecoder(nn.Module):
    """Transformer encoder over video tokens + decoder over class queries (``nn.Transformer``).

    ``norm_first: false`` is the reference (PyTorch's defaults: post-norm); ``num_encoder_layers: 0``
    lets the queries read the video tokens directly (the video encoder is a transformer already).
    """

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.transformer = nn.Transformer(
            d_model=cfg.d_model,
            nhead=cfg.num_heads,
            num_encoder_layers=cfg.num_encoder_layers,
            num_decoder_layers=cfg.num_decoder_layers,
            dim_feedforward=cfg.dim_feedforward,
            dropout=cfg.dropout,
            batch_first=True,
            norm_first=cfg.norm_first,
            custom_encoder=_encoder(cfg),
        )

    def forward(self, tokens: torch.Tensor, queries: torch.Tensor, *,
                return_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Decode queries (B, C, D) against video tokens (B, M, D) into class features (B, C, D).

        With ``return_attention`` also the cross-attention of every decoder layer, (B, layers, C, M) averaged
        over heads (each row sums to 1): the explicit attention arithmetic instead of the fused kernel, so the
        features agree with the default path to float round-off only; the default path is untouched.
        """
        if not return_attention:
            return self.transformer(tokens, queries)
        weights: list[torch.Tensor] = []

        def ask_weights(module, args, kwargs):
            return args, {**kwargs, "need_weights": True, "average_attn_weights": True}

        def keep_weights(module, args, output):
            weights.append(output[1])  # (B, C, M)

        hooks = []
        for layer in self.transformer.decoder.layers:
            hooks.append(layer.multihead_attn.register_forward_pre_hook(ask_weights, with_kwargs=True))
            hooks.append(layer.multihead_attn.register_forward_hook(keep_weights))
        try:
            h = self.transformer(tokens, queries)
        finally:
            for hook in hooks:
                hook.remove()
        return h, torch.stack(weights, dim=1)  # (B, layers, C, M)
