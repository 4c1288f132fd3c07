"""The packaged presets: model architectures and training recipes, each a YAML file found by its name.

    presets/models/<name>.yaml     a model config (``ModelConfig``): msqnet-lite, msqnet-b16, ...
    presets/recipes/<name>.yaml    a training config (``TrainConfig``): the demo's run, one per benchmark

``msqnet presets`` lists both. Wherever a model config is asked for (``TrainConfig.model``,
``create_model``) a model preset's name or a file works; wherever a training config is asked for
(``msqnet train``, ``msqnet evaluate --data``) a recipe's name or a file works.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ..config_loader import ConfigError
from ..utils import quote

__all__ = ["list_presets", "list_recipes", "model_preset_file", "recipe_file"]


def _folder(kind: str) -> Path:
    return Path(str(resources.files("msqnet") / "presets" / kind))


def _names(kind: str) -> list[str]:
    return sorted(p.stem for p in _folder(kind).glob("*.yaml"))


def list_presets() -> list[str]:
    """Names of the packaged model presets."""
    return _names("models")


def list_recipes() -> list[str]:
    """Names of the packaged training recipes."""
    return _names("recipes")


def _file(kind: str, what: str, name_or_path: str | os.PathLike, *, must_exist: bool) -> Path:
    name = str(name_or_path)
    if name in _names(kind):
        return _folder(kind) / f"{name}.yaml"
    path = Path(name)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. a name longer than a path may be: not a file, and not a name either
        is_file = False
    if is_file or (not must_exist and (path.exists() or path.suffix or len(path.parts) > 1)):
        return path  # a path, not a name: the config reader says what is wrong with it
    raise ConfigError(f"{quote(name)}: neither a {what} ({', '.join(_names(kind))}) nor a config file")


def model_preset_file(name_or_path: str | os.PathLike) -> Path:
    """The YAML file of a model preset's name, or the given model config file."""
    return _file("models", "model preset", name_or_path, must_exist=True)


def recipe_file(name_or_path: str | os.PathLike) -> Path:
    """The YAML file of a training recipe's name, or the given path of a training config file (reading it
    says what is wrong with a path that is not one)."""
    return _file("recipes", "training recipe", name_or_path, must_exist=False)
