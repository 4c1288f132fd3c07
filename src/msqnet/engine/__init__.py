"""Training and evaluation engine: the training recipe and the library pieces it wires together.

- :class:`Trainer` / :func:`train` run a :class:`TrainConfig` (``msqnet train``); :class:`TrainResult`
  says what it produced.
- :func:`evaluate_split` / :func:`evaluate_checkpoint` score a split and compute its metrics once
  over every clip (``msqnet evaluate``); :mod:`msqnet.engine.report` writes the report folder.
- :mod:`msqnet.engine.step`: one optimisation step and what a non-finite one does.
- :mod:`msqnet.engine.checkpoint_keeper`: last/previous training states, best-N models, ``best``.
- :mod:`msqnet.engine.state`: the verified training-state folder format.
- :mod:`msqnet.engine.metrics_log`: ``metrics.jsonl`` and TensorBoard.
- :mod:`msqnet.engine.frozen_cache`: the frozen encoders' outputs computed once per split (``cache_frozen``).
- :mod:`msqnet.engine.distributed`: ``torchrun`` process groups and gathering.
"""
from .checkpoint_keeper import CheckpointKeeper, find_resume_state
from .config import LossConfig, OptimConfig, ScheduleConfig, TrainConfig, load_train_config
from .evaluate import EvalResult, evaluate_checkpoint, evaluate_split
from .inference import predict_dataset, score_clips
from .frozen_cache import CachedClipDataset, FrozenFrameCache
from .losses import AsymmetricLoss, build_loss
from .metrics_log import MetricsLog, read_metrics_log
from .optim import LRSchedule, build_optimizer
from .state import TrainingState, load_training_state, write_training_state
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
    "CheckpointKeeper",
    "find_resume_state",
    "MetricsLog",
    "read_metrics_log",
    "FrozenFrameCache",
    "CachedClipDataset",
    "EvalResult",
    "evaluate_split",
    "evaluate_checkpoint",
    "predict_dataset",
    "score_clips",
    "AsymmetricLoss",
    "build_loss",
    "build_optimizer",
    "LRSchedule",
    "TrainingState",
    "write_training_state",
    "load_training_state",
]
