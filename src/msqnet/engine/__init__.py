"""Training and evaluation engine: config, trainer, evaluation, checkpoints and resume, DDP, losses, reports.

- :func:`train` runs a :class:`TrainConfig` (``msqnet train``); :class:`TrainResult` says what it produced.
- :func:`evaluate_split` / :func:`evaluate_checkpoint` score a split and compute its metrics once
  over every clip (``msqnet evaluate``); :mod:`msqnet.engine.report` writes the report folder.
- :mod:`msqnet.engine.frozen_cache`: the frozen encoders' outputs computed once per split (``cache_frozen``).
- :mod:`msqnet.engine.state`: atomic, verified training-state checkpoints and ``--resume auto``.
- :mod:`msqnet.engine.distributed`: ``torchrun`` process groups, sharded sampling, gathering.
"""
from .config import LossConfig, OptimConfig, ScheduleConfig, TrainConfig, load_train_config
from .evaluate import EvalResult, evaluate_checkpoint, evaluate_split, predict_dataset
from .losses import AsymmetricLoss, build_loss
from .optim import LRSchedule, build_optimizer
from .state import TrainingState, find_resume_state, load_training_state, save_training_state
from .frozen_cache import CachedClipDataset, FrozenFrameCache
from .trainer import Trainer, TrainResult, train

__all__ = [
    "TrainConfig",
    "OptimConfig",
    "ScheduleConfig",
    "LossConfig",
    "load_train_config",
    "train",
    "Trainer",
    "TrainResult",
    "FrozenFrameCache",
    "CachedClipDataset",
    "EvalResult",
    "evaluate_split",
    "evaluate_checkpoint",
    "predict_dataset",
    "AsymmetricLoss",
    "build_loss",
    "build_optimizer",
    "LRSchedule",
    "TrainingState",
    "save_training_state",
    "load_training_state",
    "find_resume_state",
]
