"""Class queries: one per class, from the class text, fused with a video-specific visual embedding."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import repeat
from torch import nn

from ..precision import to_param_dtype
from ..utils import quote

__all__ = ["QueryBuilder"]


class QueryBuilder(nn.Module):
    """Build the decoder's class queries (B, C, D).

    ``multimodal`` (the paper): ``q_c = W [e_c ; v]`` with ``e_c`` the class's label embedding and
    ``v`` the clip's visual embedding, so every query gets the same video-dependent shift. ``text``
    drops ``v``; ``learned`` replaces ``e_c`` by a free vector (no text).

    Args:
        mode: ``multimodal``, ``text`` or ``learned``.
        label_embed: (C, E) label embeddings of the training classes (``None`` for ``learned``).
        visual_dim: width of the visual embedding (0 = no visual embedding).
        d_model: D, the decoder width.
        trainable: keep ``label_embed`` as a trainable parameter ``label_embeddings`` (the
            reference's ``query_embed``), rather than as a fixed buffer.
        num_classes: C, needed for ``learned``.
        learned_dim: E for ``learned`` queries.
        input_norm: centre label embeddings on the training classes' mean and LayerNorm them, and
            LayerNorm the visual embedding, before fusing (``ModelConfig.input_norm``).
    """

    def __init__(
        self,
        *,
        mode: str,
        label_embed: torch.Tensor | None,
        visual_dim: int,
        d_model: int,
        trainable: bool,
        num_classes: int,
        learned_dim: int | None = None,
        input_norm: bool = False,
    ):
        super().__init__()
        self.mode = mode
        self.trainable = trainable or mode == "learned"
        if mode == "learned":
            init = torch.randn(num_classes, learned_dim or d_model) * 0.02
        else:
            if label_embed is None or label_embed.shape[0] != num_classes:
                raise ValueError(f"query mode {quote(mode)} needs label embeddings for {num_classes} classes")
            init = label_embed.detach().clone().float()
        if self.trainable:
            self.label_embeddings = nn.Parameter(init)  # (C, E)
        else:
            self.register_buffer("label_embeddings", init)  # (C, E), saved: the label set it was built for
        self.text_dim = init.shape[1]
        self.visual_dim = visual_dim if mode == "multimodal" else 0
        self.input_norm = input_norm and mode != "learned"
        if self.input_norm:
            # The training classes' mean label embedding: what every class shares says nothing about one.
            self.register_buffer("label_center", init.mean(dim=0))  # (E,), saved with the model
        # The reference sizes this from the video backbone; it must be text width + visual width.
        self.proj = nn.Linear(self.text_dim + self.visual_dim, d_model, bias=False)

    def labels(self, label_embed: torch.Tensor | None = None) -> torch.Tensor:
        """The label embeddings (C, E) queries and text heads read: the training classes' (or
        ``label_embed``), centred and normalised with ``input_norm``."""
        e = to_param_dtype(self.label_embeddings if label_embed is None else label_embed, self.proj)  # (C, E)
        if self.input_norm:
            e = F.layer_norm(e - self.label_center, e.shape[-1:])
        return e

    def forward(
        self, batch_size: int, visual: torch.Tensor | None = None, label_embed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Queries (B, C, D) for ``label_embed`` (C', E; default: the training classes) and visual (B, V)."""
        e = self.labels(label_embed)  # (C, E)
        q = repeat(e, "c e -> b c e", b=batch_size)
        if self.visual_dim:
            if visual is None:
                raise ValueError("multimodal queries need the clip's visual embedding")
            visual = to_param_dtype(visual, self.proj)
            if self.input_norm:
                visual = F.layer_norm(visual, visual.shape[-1:])
            v = repeat(visual, "b v -> b c v", c=e.shape[0])
            q = torch.cat((q, v), dim=-1)  # (B, C, E + V)
        return self.proj(q)  # (B, C, D)
