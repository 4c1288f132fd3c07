"""The layout of a training run's folder: the one place every command (train, evaluate, demo, predict) reads it from.

A run folder (``TrainConfig.output_dir``) holds::

    config.yaml                 the resolved training config
    metrics.jsonl               one JSON record per log step and per evaluation (msqnet.engine.metrics_log)
    checkpoints/last/           the newest training state (msqnet.engine.state); also a model folder
    checkpoints/previous/       the state before it
    models/epoch-NNN/           the kept best model folders (msqnet.checkpoint format)
    best                        link to the best of them
    cache/                      the frozen encoders' cached outputs (cache_frozen)
    summary.json                the end-of-run summary
    tensorboard/                TensorBoard logs, when enabled and installed
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunDir"]

log = logging.getLogger(__name__)

# How far above a checkpoint folder its run folder may be (models/epoch-001, checkpoints/last, best).
_MAX_DEPTH = 3


@dataclass(frozen=True)
class RunDir:
    """A training run's folder and the paths inside it.

    Args:
        root: the run folder.
    """

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def config_file(self) -> Path:
        """The resolved training config the run was started (or last resumed) with."""
        return self.root / "config.yaml"

    @property
    def metrics_log(self) -> Path:
        """``metrics.jsonl``: the run's training and evaluation records."""
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        """The folder of the training states."""
        return self.root / "checkpoints"

    @property
    def last_state(self) -> Path:
        """The newest training state."""
        return self.checkpoints / "last"

    @property
    def previous_state(self) -> Path:
        """The training state before the newest."""
        return self.checkpoints / "previous"

    @property
    def best(self) -> Path:
        """The link to the best model folder."""
        return self.root / "best"

    @property
    def cache(self) -> Path:
        """The default folder of the frozen-output caches."""
        return self.root / "cache"

    @property
    def summary_file(self) -> Path:
        """The end-of-run summary."""
        return self.root / "summary.json"

    @property
    def tensorboard(self) -> Path:
        """The TensorBoard log folder."""
        return self.root / "tensorboard"

    @staticmethod
    def best_model_name(epoch: int) -> str:
        """The path, relative to the run folder, of the best-model folder kept after ``epoch`` (1-based)."""
        return f"models/epoch-{epoch:03d}"

    def holds_run(self) -> bool:
        """Whether a training run has saved a state here."""
        return self.last_state.exists() or self.previous_state.exists()

    def model_folder(self) -> Path | None:
        """The run's model: its ``best`` model folder, else its last training state; ``None`` without either.

        A ``best`` link whose target is gone is said with a warning (the run then gives another model).
        """
        if self.best.is_symlink() and not self.best.exists():
            fallback = "its last training state" if self.last_state.is_dir() else "no model"
            log.warning("%s: the link points at %s, which is missing (deleted or moved); using %s", self.best,
                        os.readlink(self.best), fallback)
        for folder in (self.best, self.last_state):
            if folder.is_dir():
                return folder
        return None

    @classmethod
    def containing(cls, checkpoint: str | os.PathLike) -> RunDir | None:
        """The run folder a checkpoint folder lives in (the nearest one holding a metrics log), if any."""
        path = Path(checkpoint)
        for parent in (path, *list(path.resolve().parents)[:_MAX_DEPTH]):
            if cls(parent).metrics_log.is_file():
                return cls(parent)
        return None
