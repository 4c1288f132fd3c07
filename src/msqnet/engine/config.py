"""Typed training configuration: one schema for every benchmark; the recipes in ``msqnet/presets/recipes``.

``msqnet train CONFIG key=value ...`` reads a file of this schema (or a packaged recipe by name),
applies the overrides and validates the whole run, its model included, before anything is built;
an unknown key or a value of the wrong type is an error naming the key path and the file. Relative
paths (``data.root``, ``data.annotations``, ``output_dir``, a ``model`` file) are relative to the
working directory, as on the command line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from ..config_loader import ConfigError, check_choices, from_dict, load_config, to_dict
from ..data.config import DataConfig, SamplingConfig, TransformConfig
from ..hardware import parse_device
from ..metrics import parse_metric_names
from ..models.config import ModelConfig, get_model_config
from ..precision import Precision
from ..presets import recipe_file
from ..utils import quote

__all__ = ["NonFinite", "OptimConfig", "ScheduleConfig", "LossConfig", "TrainConfig", "load_train_config", "RESUME_FIELDS",
           "resume_changes"]


# The model of a training config that names none.
DEFAULT_MODEL = "msqnet-lite"
# What a non-finite loss or gradient does (``nonfinite``): stop the run, or skip the step and count it.
NonFinite = Literal["raise", "skip"]
# Config fields a resumed run must share with the run it continues (they define the data position,
# the model or the sample stream); other changes (epochs, eval, logging) are allowed and logged.
RESUME_FIELDS = ("model", "model_overrides", "data", "train_split", "sampling", "transform", "batch_size",
                 "grad_accum", "clips_per_epoch", "seed", "zero_shot", "val_fraction", "val_group_by", "cache_frames",
                 "cache_views")
# Data fields that may change on resume: the dataset may have moved to another disk.
_MOVABLE_DATA_FIELDS = ("root", "annotations")


@dataclass
class OptimConfig:
    """The optimiser and its two learning rates.

    Args:
        name: ``adam`` (the reference) or ``adamw`` (decoupled weight decay).
        lr: learning rate of the new layers (pooling projection, queries, decoder, head), and of a
            video encoder trained from scratch.
        encoder_lr: learning rate of the video encoder when it was loaded pretrained
            (``model.video_encoder.pretrained`` set); ``None`` = ``lr``.
        weight_decay: L2 penalty (``adam``) or decoupled decay (``adamw``); applied to weight
            matrices only, never to biases, norms or 1-D parameters.
        betas: Adam's moment decay rates.
        eps: Adam's denominator epsilon.
    """

    name: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-5
    encoder_lr: float | None = None
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        check_choices(self)
        if self.lr <= 0 or (self.encoder_lr is not None and self.encoder_lr < 0):
            raise ConfigError(f"optim: learning rates must be positive, got lr={self.lr}, encoder_lr={self.encoder_lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"optim.weight_decay: expected >= 0, got {self.weight_decay}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas: expected two values in [0, 1), got {list(self.betas)}")
        if self.eps <= 0:
            raise ConfigError(f"optim.eps: expected > 0, got {self.eps}")


@dataclass
class ScheduleConfig:
    """How the learning rate moves over training (a pure function of the optimiser step).

    Args:
        name: ``cosine`` (linear warmup, then one cosine decay to ``min_lr_ratio`` at the end),
            ``warm_restarts`` (the reference's ``CosineAnnealingWarmRestarts`` stepped per epoch:
            cosine over ``restart_epochs`` epochs, then back to the full rate) or ``constant``
            (after the warmup).
        warmup_epochs: linear warmup length in epochs (fractions allowed).
        warmup_steps: linear warmup length in optimiser steps (added to ``warmup_epochs``).
        min_lr_ratio: the lowest rate as a fraction of the base rate (cosine end, restart trough).
        restart_epochs: ``warm_restarts``' first period ``T_0`` in epochs (the reference: 10).
        restart_mult: ``warm_restarts``' period growth factor ``T_mult`` (the reference: 1).
    """

    name: Literal["cosine", "warm_restarts", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    restart_epochs: int = 10
    restart_mult: int = 1

    def __post_init__(self) -> None:
        check_choices(self)
        if self.warmup_epochs < 0 or self.warmup_steps < 0:
            raise ConfigError("schedule: warmup_epochs and warmup_steps must be >= 0")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"schedule.min_lr_ratio: expected a fraction in [0, 1], got {self.min_lr_ratio}")
        if self.restart_epochs < 1 or self.restart_mult < 1:
            raise ConfigError("schedule: restart_epochs and restart_mult must be >= 1")


@dataclass
class LossConfig:
    """The training loss.

    Args:
        name: ``auto`` (``bce`` for multi-label data, ``ce`` for single-label), ``bce``
            (sigmoid binary cross-entropy), ``ce`` (softmax cross-entropy; single-label data only)
            or ``asymmetric`` (ASL, Ridnik et al. 2021: focusing and a probability margin on the
            negatives; multi-label only).
        label_smoothing: ``ce`` only.
        gamma_pos: ASL focusing exponent of the positives.
        gamma_neg: ASL focusing exponent of the negatives.
        clip: ASL probability margin: negatives with ``p < clip`` cost nothing.
    """

    name: Literal["auto", "bce", "ce", "asymmetric"] = "auto"
    label_smoothing: float = 0.0
    gamma_pos: float = 0.0
    gamma_neg: float = 4.0
    clip: float = 0.05

    def __post_init__(self) -> None:
        check_choices(self)
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.clip < 1:
            raise ConfigError("loss: label_smoothing and clip must be in [0, 1)")
        if self.gamma_pos < 0 or self.gamma_neg < 0:
            raise ConfigError("loss: gamma_pos and gamma_neg must be >= 0")


@dataclass
class TrainConfig:
    """One training run: model, data, optimisation, precision, checkpoints and logs.

    Args:
        model: the model: a model preset's name (``msqnet presets``), a model config file, or the
            config itself (a mapping); resolved and validated when the training config loads.
        model_overrides: ``key=value`` edits of the model config, e.g. ``decoder.num_encoder_layers=2``,
            applied and validated when the training config loads.
        data: the dataset (format, root, annotations).
        train_split: split trained on.
        eval_splits: splits evaluated every ``eval_every`` epochs and at the end; they
            are scored and logged after training epochs, never used to choose a checkpoint (the held-out
            ``val`` of ``val_fraction`` does). Empty = none.
        sampling: frame sampling and multi-view test; ``num_frames`` must equal the model's.
        transform: crops and augmentation; ``size`` must equal the model's ``image_size``.
        optim: optimiser and learning rates.
        schedule: learning-rate schedule.
        loss: the training loss.
        epochs: passes over the training data (of ``clips_per_epoch`` clips each).
        clips_per_epoch: clips drawn at random (without replacement within an epoch) per epoch,
            as the reference's 2,500-clip "epochs"; ``None`` = the whole split, shuffled.
        batch_size: clips per optimiser micro-batch on each process.
        eval_batch_size: clips (each with all its test views) per evaluation batch; ``None`` =
            ``batch_size``.
        grad_accum: micro-batches per optimiser step (effective batch = batch_size x grad_accum x
            processes).
        clip_grad_norm: clip the global gradient norm to this; ``None`` = no clipping.
        nonfinite: what a NaN or infinite loss or gradient does: ``raise`` (stop with an error naming
            the step and its clips; the default) or ``skip`` (leave the weights as they are for that
            optimiser step, count it, report the count in the summary).
        precision: ``fp32``, ``bf16`` (autocast; CPU and CUDA) or ``fp16`` (autocast with a
            gradient scaler; meant for CUDA).
        cache_frozen: run the model's frozen encoders (the visual embedder, a ``frame_transformer``'s
            CNN) once over every clip of the training and evaluation splits and reuse their outputs
            every epoch (see ``msqnet.engine.frozen_cache``): no video is decoded after that.
        cache_frames: frames cached per training clip (the middles of as many equal segments),
            among which every epoch draws its T; ``None`` = T (the test frames: no temporal
            augmentation).
        cache_views: spatial views cached per training clip: the test view and ``cache_views - 1``
            draws of the training transform (random crop, flip, colour jitter: a fixed seeded draw
            per view); every epoch reads one of them. 1 = the test view only (the mirror is then the
            only spatial augmentation). Each view costs one more decoding pass when the cache is built.
        cache_dir: where the caches are kept; ``None`` = ``<output_dir>/cache``. Runs that share a
            folder reuse each other's caches when the frozen encoders, data and frames are the same.
        val_fraction: hold out this fraction of the training split (a seeded draw) as the split
            ``val``, evaluated first every ``eval_every`` epochs; it alone picks the best checkpoints
            (``eval_splits`` are scored and logged, never used to choose). 0 = no validation split and
            no best checkpoint: the result is the last model.
        val_group_by: hold out whole groups of clips: a metadata column naming the recording a clip
            was cut from, so that no recording is on both sides; ``auto`` = the first of ``group``,
            ``source``, ``recording``, ``video`` that every training clip has, else clip by clip;
            ``null`` = clip by clip.
        num_workers: DataLoader worker processes per training process.
        seed: seed of the model init, data order, sampling and augmentation.
        deterministic: deterministic kernels (``torch.use_deterministic_algorithms``): bitwise
            reproducible runs and resumes, somewhat slower.
        threads: intra-op CPU threads per process; ``None`` = torch's default.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        eval_every: evaluate every this many epochs (and always after the last); 0 = only at the end.
        keep_best: how many best model folders to keep (by ``metric`` on the held-out ``val``).
        metric: the metrics key that selects the best checkpoints (higher is better), e.g. ``map``,
            ``charades_map``, ``top1``, ``map_tail``; ``auto`` = ``map`` for multi-label data,
            ``top1`` for single-label data.
        metrics: metrics computed at evaluation; empty = ``map`` (+ ``ak_segments`` where the
            dataset has segments, + ``charades_map`` for Charades) for multi-label data,
            ``top1``/``top5`` for single-label data.
        output_dir: run folder (config, logs, checkpoints, best models).
        log_every: optimiser steps between log lines (and ``metrics.jsonl`` records).
        checkpoint_every_steps: also write the ``last`` training state every this many optimiser
            steps inside an epoch (a kill mid-epoch resumes mid-epoch); 0 = at epoch ends only.
        tensorboard: also log to TensorBoard when ``torch.utils.tensorboard`` imports.
        zero_shot: a zero-shot class split (a shipped name such as ``charades_50_50``, or a split
            file such as ``data/synth/splits/zero_shot.json``): train and evaluate on its seen
            classes only; ``msqnet evaluate --zero-shot`` then scores the unseen ones.
    """

    data: DataConfig
    model: ModelConfig = field(default_factory=lambda: get_model_config(DEFAULT_MODEL))
    model_overrides: list[str] = field(default_factory=list)
    train_split: str = "train"
    eval_splits: list[str] = field(default_factory=lambda: ["test"])
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    epochs: int = 100
    clips_per_epoch: int | None = None
    batch_size: int = 32
    eval_batch_size: int | None = None
    grad_accum: int = 1
    clip_grad_norm: float | None = None
    nonfinite: NonFinite = "raise"
    precision: Precision = "fp32"
    cache_frozen: bool = False
    cache_frames: int | None = None
    cache_views: int = 1
    cache_dir: str | None = None
    val_fraction: float = 0.1
    val_group_by: str | None = "auto"
    num_workers: int = 4
    seed: int = 1
    deterministic: bool = False
    threads: int | None = None
    device: str = "auto"
    eval_every: int = 1
    keep_best: int = 1
    metric: str = "auto"
    metrics: list[str] = field(default_factory=list)
    output_dir: str = "runs/msqnet"
    log_every: int = 20
    checkpoint_every_steps: int = 0
    tensorboard: bool = True
    zero_shot: str | None = None

    def __post_init__(self) -> None:
        check_choices(self)
        positive = ("epochs", "batch_size", "grad_accum", "log_every", "keep_best", "cache_views")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: expected >= 1, got {getattr(self, name)}")
        for name in ("num_workers", "eval_every", "checkpoint_every_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**32:  # what numpy's and torch's seeding accept
            raise ConfigError(f"seed: expected an integer in 0..4294967295 (2**32 - 1), got {self.seed}")
        if self.clips_per_epoch is not None and self.clips_per_epoch < 1:
            raise ConfigError(f"clips_per_epoch: expected >= 1 or null (the whole split), got {self.clips_per_epoch}")
        if self.cache_frames is not None and self.cache_frames < self.sampling.num_frames:
            raise ConfigError(f"cache_frames: expected >= sampling.num_frames ({self.sampling.num_frames}) or null, "
                              f"got {self.cache_frames}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction: expected a fraction in [0, 1), got {self.val_fraction}")
        if self.val_fraction and "val" in self.eval_splits:
            raise ConfigError("val_fraction: the held-out split is named 'val', which eval_splits already lists")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size: expected >= 1, got {self.eval_batch_size}")
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise ConfigError(f"clip_grad_norm: expected > 0 or null, got {self.clip_grad_norm}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads: expected >= 1 or null, got {self.threads}")
        try:
            parse_device(self.device)
        except ValueError as e:
            raise ConfigError(f"device: {e}") from None
        if not self.output_dir:
            raise ConfigError("output_dir: required (the run folder)")
        if len(set(self.eval_splits)) != len(self.eval_splits):
            raise ConfigError(f"eval_splits: duplicate split names in {self.eval_splits}")
        for item in self.model_overrides:
            if "=" not in item:
                raise ConfigError(f"model_overrides: {quote(item)} is not KEY=VALUE (e.g. decoder.num_encoder_layers=2)")
        if self.model_overrides:
            try:
                self.model = get_model_config(self.model, self.model_overrides)
            except ConfigError as e:
                raise ConfigError(f"model_overrides: {e}") from None
        try:
            if self.metrics:
                parse_metric_names(self.metrics)
        except ValueError as e:
            raise ConfigError(f"metrics: {e}") from None

    def best_metric(self, multi_label: bool) -> str:
        """The metrics key that picks the best checkpoints: ``metric``; ``auto`` = ``map`` for
        multi-label data, ``top1`` for single-label data."""
        if self.metric == "auto":
            return "map" if multi_label else "top1"
        return self.metric

    @property
    def effective_eval_batch_size(self) -> int:
        """Clips per evaluation batch."""
        return self.eval_batch_size or self.batch_size


def load_train_config(name_or_path: str | os.PathLike, overrides: list[str] | None = None) -> TrainConfig:
    """Read a training config (a recipe's name or a file), apply ``key=value`` overrides and validate it."""
    return load_config(TrainConfig, recipe_file(name_or_path), overrides)


def resume_changes(saved: Mapping[str, Any], cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """How ``cfg`` differs from the config a run was saved with (plain data): the changed fields that
    define the run (``RESUME_FIELDS``: a resume must keep them) and the other changed fields.

    The saved config is read with today's schema first, so a run saved with its model as a preset
    name compares as the model that name resolves to.
    """
    new = to_dict(cfg)
    try:
        saved = to_dict(from_dict(TrainConfig, saved))
    except ConfigError:  # a config this msqnet cannot read: compare it as it was written
        pass

    def defining(config: Mapping[str, Any], key: str) -> Any:
        value = config.get(key)
        if key == "data" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _MOVABLE_DATA_FIELDS}
        return value

    changed = [k for k in RESUME_FIELDS if defining(saved, k) != defining(new, k)]
    others = sorted(k for k in new if k not in RESUME_FIELDS and saved.get(k) != new[k])
    return changed, others
