"""One entry point that builds a model from a preset name, a config file or a ModelConfig."""
from __future__ import annotations

import os
from typing import Sequence

from .config import ModelConfig, get_model_config
from .msqnet import MSQNet, check_class_names
from .text import build_label_embedder

__all__ = ["create_model"]


def create_model(
    config: str | os.PathLike | ModelConfig, class_names: Sequence[str], overrides: Sequence[str] = (), *,
    multi_label: bool = True,
) -> MSQNet:
    """Build MSQNet for ``class_names`` (multi-label, or one label per clip): label embeddings from the
    frozen text encoder, then the model."""
    class_names = check_class_names(class_names)  # before the text encoder loads
    cfg = get_model_config(config, overrides)
    label_embed = None
    if cfg.query != "learned":
        label_embed = build_label_embedder(cfg.label_embedder)(list(class_names))  # (C, E)
    return MSQNet(cfg, class_names, label_embed=label_embed, multi_label=multi_label)
