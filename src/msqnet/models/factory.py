"""One entry point that builds a model from a preset name, a config file or a ModelConfig."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Sequence

from ..config_loader import apply_overrides, from_dict, read_config_file, ConfigError
from .config import ModelConfig
from .msqnet import MSQNet

__all__ = ["list_presets", "get_model_config", "create_model"]


def list_presets() -> list[str]:
    """Names of the model presets shipped with msqnet."""
    folder = resources.files("msqnet") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def get_model_config(name_or_path: str | os.PathLike | ModelConfig, overrides: Sequence[str] = ()) -> ModelConfig:
    """Resolve a preset name or YAML/JSON file (plus ``key=value`` overrides) into a ModelConfig."""
    if isinstance(name_or_path, ModelConfig):
        if overrides:
            raise ConfigError("overrides apply to a preset name or file, not to a ModelConfig object")
        return name_or_path
    name = str(name_or_path)
    if name in list_presets():
        source = resources.files("msqnet") / "presets" / f"{name}.yaml"
        path = Path(str(source))
    else:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"{name}: neither a model preset ({', '.join(list_presets())}) nor a config file")
    data = apply_overrides(read_config_file(path), list(overrides))
    try:
        return from_dict(ModelConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def create_model(
    config: str | os.PathLike | ModelConfig, class_names: Sequence[str], overrides: Sequence[str] = ()
) -> MSQNet:
    """Build MSQNet for ``class_names``: label embeddings from the frozen text encoder, then the model."""
    from .text import build_label_embedder

    cfg = get_model_config(config, overrides)
    label_embed = None
    if cfg.query != "learned":
        label_embed = build_label_embedder(cfg.label_embedder)(list(class_names))  # (C, E)
    return MSQNet(cfg, class_names, label_embed=label_embed)
