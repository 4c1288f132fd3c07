"""The training loop: optimisation, mixed precision, DDP, evaluation, checkpoints, resume and logs.

``train(cfg)`` runs one ``TrainConfig`` to the end and returns a ``TrainResult``. The run folder::

    <output_dir>/config.yaml               the resolved training config
    <output_dir>/metrics.jsonl             one JSON line per log step ({"kind": "train", ...})
                                           and per evaluation ({"kind": "eval", "split", metrics...})
    <output_dir>/checkpoints/last/         training state (see msqnet.engine.state); also a model folder
    <output_dir>/checkpoints/previous/     the state before it
    <output_dir>/models/epoch-NNN/         the keep_best best model folders (msqnet.checkpoint format)
    <output_dir>/best                      link to the best of them (msqnet evaluate reads it)
    <output_dir>/cache/<split>-<fp>.safetensors  the frozen encoders' outputs (cache_frozen; or cache_dir)
    <output_dir>/summary.json              the end-of-run summary
    <output_dir>/tensorboard/              when TensorBoard is installed

Reproducibility: the data order of epoch ``e`` and every clip's augmentation are functions of
``(seed, e, index)`` (``ClipSampler``, ``ClipDataset``), checkpoints hold every RNG and the data
position, and the LR schedule is a function of the step; with ``deterministic: true`` a run killed
anywhere and resumed ends with the same weights, bit for bit, as one that never stopped.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..card import training_card_data
from ..checkpoint import CheckpointError, save_model
from ..config import ConfigError, to_dict, write_config_file
from ..data.dataset import ClipDataset, SkipTally
from ..data.loader import ClipSampler, build_loader
from ..data.datasets import DatasetSplit, load_split
from ..data.views import TestView
from ..metrics import default_metric_names, metric_keys
from ..models import MSQNet, create_model
from ..models.msqnet import FrozenFrames
from ..precision import autocast, cpu_has_bf16
from ..utils import atomic_write_text, json_text
from .config import TrainConfig
from .distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    init_distributed,
    shutdown_distributed,
)
from .evaluate import (
    EvalResult,
    evaluate_split,
    is_finite,
    resolve_metric_key,
)
from .frozen_cache import CachedClipDataset, FrozenFrameCache, cached_frozen_frames
from .losses import build_loss
from .optim import LRSchedule, build_optimizer
from .state import (
    TrainingState,
    capture_rng,
    find_resume_state,
    load_training_state,
    restore_rng,
    save_training_state,
    verify_training_state,
)

__all__ = [
    "NonFiniteError",
    "TrainResult",
    "Trainer",
    "MetricsLog",
    "read_metrics_log",
    "forward_backward",
    "gradient_norm",
    "optimizer_step",
    "train",
    "RESUME_FIELDS",
]

log = logging.getLogger("msqnet.train")

# Config fields a resumed run must share with the run it continues (they define the data position,
# the model or the sample stream); other changes (epochs, eval, logging) are allowed and logged.
RESUME_FIELDS = ("model", "model_overrides", "data", "train_split", "sampling", "transform", "batch_size",
                 "grad_accum", "clips_per_epoch", "seed", "zero_shot")
# With ``nonfinite: skip``, this many non-finite optimiser steps in a row mean the model has diverged.
MAX_CONSECUTIVE_NONFINITE = 20
# Data fields that may change on resume: the dataset may have moved to another disk.
_MOVABLE_DATA_FIELDS = ("root", "annotations")


@dataclass
class TrainResult:
    """What a training run produced.

    Args:
        output_dir: the run folder.
        best_model: the best model folder (``None`` without evaluation).
        last_state: the final training state folder (also a model folder).
        metric: the key that picked the best model.
        best_value: its best value.
        best_epoch: the epoch (1-based) of the best model.
        final_metrics: split -> metrics of the last evaluation.
        epochs: epochs trained (in this and earlier, resumed-from runs).
        steps: optimiser steps taken.
        seconds: wall time of this process's training loop (evaluations included).
        clips_per_second: training throughput of this run (all processes).
        cache_seconds: wall time spent building the frozen-output caches before the loop
            (``cache_frozen``; 0 when they were reloaded).
        skipped: clips skipped as unreadable during this run's training.
        nonfinite_steps: optimiser steps skipped for a non-finite loss or gradient
            (``nonfinite: skip``), over the whole run.
    """

    output_dir: Path
    best_model: Path | None
    last_state: Path
    metric: str | None
    best_value: float | None
    best_epoch: int | None
    final_metrics: dict[str, dict[str, float]]
    epochs: int
    steps: int
    seconds: float
    clips_per_second: float
    skipped: int = 0
    nonfinite_steps: int = 0
    cache_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """A readable end-of-run summary."""
        lines = [
            f"trained {self.epochs} epoch(s), {self.steps} optimiser steps in {_duration(self.seconds)} "
            f"({self.clips_per_second:.1f} clips/s); {self.skipped} clip(s) skipped",
        ]
        if self.cache_seconds:
            lines.append(f"frozen outputs cached in {_duration(self.cache_seconds)} before training")
        if self.nonfinite_steps:
            lines.append(f"{self.nonfinite_steps} optimiser step(s) skipped for a non-finite loss or gradient "
                         f"(nonfinite: skip)")
        for split, metrics in self.final_metrics.items():
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            lines.append(f"  {split}: {shown}")
        if self.best_model is not None:
            lines.append(f"best {self.metric} {self.best_value:.4f} at epoch {self.best_epoch}: {self.best_model}")
        lines.append(f"training state: {self.last_state}")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


# --- logging -------------------------------------------------------------------------------------


def read_metrics_log(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (its first ``limit`` lines); a damaged line is dropped with a warning."""
    records = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for n, line in enumerate(lines[:limit], 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:  # a damaged log costs its lines, not the run
            log.warning("%s:%d: not a JSON record; left out of the history", path, n)
    return records


class MetricsLog:
    """``metrics.jsonl`` (one JSON record per line) and, when installed, TensorBoard; rank 0 only.

    Args:
        path: the JSONL file.
        enabled: write anything at all (False on ranks other than 0).
        keep_records: on resume, keep only this many existing lines (drop what the interrupted
            run logged after its last checkpoint); ``None`` starts a new file.
        tensorboard_dir: TensorBoard log folder, or ``None``.
    """

    def __init__(self, path: Path, *, enabled: bool, keep_records: int | None = None,
                 tensorboard_dir: Path | None = None):
        self.path = path
        self.enabled = enabled
        self.count = 0
        self.records: list[dict[str, Any]] = []
        self._tb = None
        if not enabled:
            return
        if keep_records is not None and path.is_file():
            self.records = read_metrics_log(path, keep_records)
        atomic_write_text(path, "".join(json_text(r) + "\n" for r in self.records))
        self.count = len(self.records)
        self._file = open(path, "a", encoding="utf-8")
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(tensorboard_dir))
            except ImportError:
                log.info("TensorBoard is not installed; metrics go to %s only", path)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (and its numbers to TensorBoard)."""
        if not self.enabled:
            return
        self._file.write(json_text(record) + "\n")
        self._file.flush()
        self.records.append(record)
        self.count += 1
        if self._tb is not None:
            step = record.get("step", 0)
            prefix = record.get("kind", "train") if record.get("kind") != "eval" else f"eval/{record.get('split')}"
            for k, v in record.items():
                if k not in ("kind", "split", "step", "epoch", "time") and isinstance(v, (int, float)):
                    self._tb.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        """Flush and close."""
        if self.enabled:
            self._file.close()
            if self._tb is not None:
                self._tb.close()


# --- one step --------------------------------------------------------------------------------------


class NonFiniteError(RuntimeError):
    """Training met a NaN or infinite loss or gradient (``nonfinite: raise``); the weights were not updated."""


def forward_backward(
    model: torch.nn.Module,
    loss_fn: torch.nn.Module,
    video: torch.Tensor | None,
    target: torch.Tensor,
    *,
    device: torch.device,
    precision: str = "fp32",
    frozen: FrozenFrames | None = None,
    scaler: torch.amp.GradScaler | None = None,
    loss_scale: float = 1.0,
) -> torch.Tensor:
    """Forward a batch (clips, or their cached frozen outputs), backpropagate ``loss * loss_scale``;
    returns the unscaled loss (detached)."""
    with autocast(device, precision):
        out = model(video, frozen=frozen)
    loss = loss_fn(out.logits, target)  # the losses compute in float32
    scaled = loss * loss_scale
    if scaler is not None and scaler.is_enabled():
        scaled = scaler.scale(scaled)
    scaled.backward()
    return loss.detach()


def gradient_norm(params: Sequence[torch.nn.Parameter]) -> float:
    """The global L2 norm of the parameters' gradients (0 without any)."""
    norms = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


def optimizer_step(
    params: Sequence[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad_norm: float | None = None,
    *,
    check_finite: bool = False,
) -> float | None:
    """Unscale, clip, step and zero the gradients; returns the gradient norm when clipping or checking.

    With ``check_finite``, a non-finite gradient norm skips the update (weights and optimiser state
    untouched, gradients zeroed) and is returned for the caller to act on. An fp16 gradient scaler
    skips such steps itself (and lowers its scale), so its steps are not checked.
    """
    use_scaler = scaler is not None and scaler.is_enabled()
    if use_scaler:
        scaler.unscale_(optimizer)
    norm = None
    if clip_grad_norm is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip_grad_norm))
    elif check_finite and not use_scaler:
        norm = gradient_norm(params)
    if check_finite and not use_scaler and not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return norm
    if use_scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm


# --- the run ---------------------------------------------------------------------------------------


class Trainer:
    """One training run: builds data, model, optimiser and state in ``__init__``, trains in ``fit``.

    Args:
        cfg: the training config.
        resume: ``None``, ``"auto"`` or a path (see ``train``).
        progress: progress bars on rank 0 (log lines otherwise).
        dist: this process's place in a DDP job; ``None`` = join the one ``torchrun`` describes
            (or run alone).
    """

    def __init__(self, cfg: TrainConfig, *, resume: str | None = None, progress: bool = True,
                 dist: DistInfo | None = None):
        info = dist if dist is not None else init_distributed(cfg.device)
        self.cfg = cfg
        self.info = info
        self.device = info.device
        self.progress = progress and info.is_main
        self.out = Path(cfg.output_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self._setup_determinism()
        try:
            self._build(resume)
        except BaseException:
            self._restore_determinism()
            raise

    def _build(self, resume: str | None) -> None:
        cfg, info = self.cfg, self.info
        self._load_data()
        self._build_model()
        resume_path = self._resume_path(resume)
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        barrier()
        t0 = time.perf_counter()
        self.caches = self._build_caches() if cfg.cache_frozen else {}
        self.cache_seconds = time.perf_counter() - t0 if cfg.cache_frozen else 0.0
        self._build_optimisation()
        self.state = TrainingState(world_size=info.world_size, config=to_dict(cfg))
        self._nonfinite_run = 0  # consecutive optimiser steps skipped as non-finite
        self._resume_rng = None
        if resume_path is not None:
            self._load_state(resume_path)
        if info.is_main:
            write_config_file(cfg, self.out / "config.yaml")
        self.metrics_log = MetricsLog(
            self.out / "metrics.jsonl", enabled=info.is_main,
            keep_records=self.state.log_records if resume_path is not None else None,
            tensorboard_dir=self.out / "tensorboard" if cfg.tensorboard else None,
        )
        self.ddp = None
        if info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
            )

    # -- setup ----------------------------------------------------------------------------------

    def _setup_determinism(self) -> None:
        cfg = self.cfg
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self._prev_deterministic = torch.are_deterministic_algorithms_enabled()
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)  # the same initial weights on every process

    def _restore_determinism(self) -> None:
        """Leave the global deterministic-algorithms switch as the caller had it."""
        if self.cfg.deterministic and not self._prev_deterministic:
            torch.use_deterministic_algorithms(False)

    def _load_data(self) -> None:
        cfg = self.cfg
        self.train_split = load_split(cfg.data, cfg.train_split)
        self.eval_splits = [load_split(cfg.data, name) for name in cfg.eval_splits]
        for s in [self.train_split, *self.eval_splits]:
            for p in s.problems[:3]:
                log.warning("split %s: skipped annotation entry: %s", s.name, p)
            if s.class_names != self.train_split.class_names:
                raise ConfigError(
                    f"eval split {s.name!r} has another label set than train split {cfg.train_split!r} "
                    f"({len(s.class_names)} vs {len(self.train_split.class_names)} classes)"
                )
        if not self.train_split.records:
            raise ConfigError(f"train split {cfg.train_split!r} has no clips")
        if cfg.val_fraction:
            self._hold_out_validation(cfg.val_fraction)
        if cfg.zero_shot:
            self._restrict_to_seen_classes(cfg.zero_shot)
        self.multi_label = self.train_split.multi_label
        self.metric_names = list(cfg.metrics) or default_metric_names(
            self.multi_label, self.train_split.num_classes, segments=self.train_split.segments,
            data_format=cfg.data.format)
        self.metric_key = resolve_metric_key(cfg.metric, self.multi_label)
        self._check_metric_key()

    def _hold_out_validation(self, fraction: float) -> None:
        """Move a seeded random ``fraction`` of the training clips into a split ``val``, evaluated first."""
        records = self.train_split.records
        count = round(len(records) * fraction)
        if not 1 <= count < len(records):
            raise ConfigError(f"val_fraction: {fraction} of {len(records)} training clips leaves no clip to "
                              f"{'validate on' if count < 1 else 'train on'}")
        order = np.random.default_rng([self.cfg.seed, len(records)]).permutation(len(records))
        held = set(order[:count].tolist())
        self.eval_splits.insert(0, replace(self.train_split, name="val", records=[records[i] for i in sorted(held)]))
        self.train_split = replace(self.train_split, records=[r for i, r in enumerate(records) if i not in held])
        log.info("holding out %d of %d training clips as the validation split 'val'", count, len(records))

    def _restrict_to_seen_classes(self, zero_shot: str) -> None:
        """Zero-shot training: keep only the split file's seen classes in train and eval labels."""
        from ..zero_shot import load_zero_shot_split, restrict_split

        try:
            zs = load_zero_shot_split(zero_shot, self.train_split.class_names)
        except (ValueError, FileNotFoundError) as e:
            raise ConfigError(f"zero_shot: {e}") from None
        unseen_train = sum(1 for r in self.train_split.records if set(r.labels) & set(zs.unseen))
        self.train_split = restrict_split(self.train_split, zs.seen)
        self.eval_splits = [restrict_split(s, zs.seen) for s in self.eval_splits]
        log.info("zero-shot split %s: training on %d seen classes, %d unseen held out (%d train clips carried "
                 "unseen labels, now dropped from their targets)", zs.name, len(zs.seen), len(zs.unseen), unseen_train)

    def _check_metric_key(self) -> None:
        """Fail at start, not after the first epoch, when ``metric`` is not among the computed keys."""
        if not self.cfg.eval_splits:
            return
        try:
            keys = metric_keys(self.metric_names, self.train_split.segments)
        except ValueError as e:
            raise ConfigError(f"metrics: {e}") from None
        if self.metric_key not in keys:
            raise ConfigError(f"metric: {self.metric_key!r} is not computed; evaluation gives {sorted(keys)} "
                              f"(add it to metrics or pick one of those)")

    def _build_model(self) -> None:
        cfg = self.cfg
        self.model: MSQNet = create_model(cfg.model, self.train_split.class_names, cfg.model_overrides)
        self.model.multi_label = self.multi_label
        mc = self.model.cfg
        if mc.num_frames != cfg.sampling.num_frames:
            raise ConfigError(f"sampling.num_frames ({cfg.sampling.num_frames}) must equal the model's num_frames "
                              f"({mc.num_frames}); set both")
        if mc.image_size != cfg.transform.size:
            raise ConfigError(f"transform.size ({cfg.transform.size}) must equal the model's image_size "
                              f"({mc.image_size}); set both")
        self.model.test_view = TestView.from_configs(cfg.sampling, cfg.transform)  # saved with every checkpoint
        if cfg.cache_frozen and not self.model.has_frozen_frames:
            raise ConfigError("cache_frozen: this model has no frozen encoder to cache (no visual embedder, and a "
                              "video encoder trained end to end)")
        self.model.to(self.device)
        self.model.train()
        # Dropout and friends draw differently on every process from here on.
        torch.manual_seed(cfg.seed + self.info.rank)

    def _build_optimisation(self) -> None:
        cfg = self.cfg
        self.loss_fn = build_loss(cfg.loss, self.multi_label)
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if cfg.precision == "fp16" and self.device.type == "cpu":
            log.warning("precision fp16 on the CPU is slow and rarely useful; bf16 is the CPU choice")
        if cfg.precision == "bf16" and self.device.type == "cpu" and not cpu_has_bf16():
            log.warning("this CPU has no native bf16; autocast emulates it and may be slower than fp32")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")
        if cfg.cache_frozen:
            self.train_dataset = CachedClipDataset(
                self.caches[self.train_split.name], self.train_split.records, self.train_split.num_classes,
                sampling=cfg.sampling, hflip=cfg.transform.hflip, multi_label=self.multi_label, seed=cfg.seed,
            )
        else:
            self.train_dataset = ClipDataset(
                self.train_split.records, self.train_split.num_classes, sampling=cfg.sampling,
                transform=cfg.transform, train=True, multi_label=self.multi_label, on_error=cfg.data.on_error,
                seed=cfg.seed,
            )
        self.sampler = ClipSampler(len(self.train_split.records), seed=cfg.seed, shuffle=True,
                                   clips_per_epoch=cfg.clips_per_epoch, rank=self.info.rank,
                                   world_size=self.info.world_size)
        self.loader_generator = torch.Generator().manual_seed(cfg.seed)
        self.loader = build_loader(self.train_dataset, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                                   sampler=self.sampler, generator=self.loader_generator, drop_last=True)
        micro = len(self.sampler) // cfg.batch_size
        self.steps_per_epoch = micro // cfg.grad_accum
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"an epoch has {len(self.sampler)} clips per process, fewer than batch_size x grad_accum "
                f"({cfg.batch_size} x {cfg.grad_accum}); lower them or raise clips_per_epoch"
            )
        self.micro_per_epoch = self.steps_per_epoch * cfg.grad_accum
        self.schedule = LRSchedule(cfg.schedule, self.steps_per_epoch, cfg.epochs)

    def _resume_path(self, resume: str | None) -> Path | None:
        if resume is None:
            if (self.ckpt_dir / "last").exists() or (self.ckpt_dir / "previous").exists():
                raise ConfigError(f"{self.out} already holds a training run; resume it with --resume auto "
                                  f"or choose another output_dir")
            return None
        if resume == "auto":
            path = find_resume_state(self.out)
            if path is None:
                log.info("no training state in %s: starting a new run", self.out)
            return path
        path = Path(resume)
        if (path / "checkpoints").is_dir():
            found = find_resume_state(path)
            if found is None:
                raise CheckpointError(f"{path}: no training state to resume from")
            return found
        verify_training_state(path)
        return path

    def _load_state(self, path: Path) -> None:
        doc = verify_training_state(path)
        old = doc["state"]["config"]  # compared before any tensor is loaded: a changed run is named, not a shape
        new = to_dict(self.cfg)

        def defining(cfg: dict[str, Any], key: str) -> Any:
            value = cfg.get(key)
            if key == "data" and isinstance(value, dict):
                value = {k: v for k, v in value.items() if k not in _MOVABLE_DATA_FIELDS}
            return value

        changed = [k for k in RESUME_FIELDS if defining(old, k) != defining(new, k)]
        if changed:
            raise ConfigError(f"cannot resume {path}: the config changed in {changed}; "
                              f"these define the run (start a new output_dir to change them)")
        others = sorted(k for k in new if k not in RESUME_FIELDS and old.get(k) != new[k])
        if others:
            log.info("resuming with changed settings: %s", ", ".join(others))
        state, rng = load_training_state(path, model=self.model, optimizer=self.optimizer, scaler=self.scaler,
                                         loader_generator=self.loader_generator, rank=self.info.rank, verified=doc)
        if state.step_in_epoch and state.world_size != self.info.world_size:
            raise ConfigError(f"cannot resume {path} mid-epoch with {self.info.world_size} processes: it was written "
                              f"by {state.world_size} (the data position is per process); resume with the same count")
        if rng is None:
            log.warning("%s: no RNG state for rank %d (the run had fewer processes); the random streams restart",
                        path, self.info.rank)
        self._resume_rng = rng
        kept = [b for b in state.best if (self.out / b["path"]).is_dir()]
        if len(kept) != len(state.best):
            log.warning("best model folder(s) missing since the checkpoint: %s",
                        [b["path"] for b in state.best if b not in kept])
            state.best = kept
        state.config = new
        state.world_size = self.info.world_size
        self.state = state
        if self.info.is_main:
            log.info("resuming %s: epoch %d, step %d of the epoch, %d optimiser steps done",
                     path, state.epoch + 1, state.step_in_epoch, state.global_step)

    def _build_caches(self) -> dict[str, FrozenFrameCache]:
        """The frozen encoders' outputs for the training split and every evaluation split, built or reloaded."""
        cfg = self.cfg
        lost = [name for name, on in (("train_crop", cfg.transform.train_crop != "center"),
                                      ("color_jitter_prob", cfg.transform.color_jitter_prob > 0),
                                      ("grayscale_prob", cfg.transform.grayscale_prob > 0)) if on]
        if lost:
            log.warning("cache_frozen: training reads cached test views, so transform.%s do(es) not apply "
                        "(only hflip and the temporal draw among cache_frames do)", ", ".join(lost))
        caches = {}
        for split, train in [(self.train_split, True), *((s, False) for s in self.eval_splits)]:
            caches[split.name] = cached_frozen_frames(
                self.model, split, cfg.cache_dir or self.out / "cache", sampling=cfg.sampling, transform=cfg.transform,
                train=train, frames=cfg.cache_frames, batch_size=cfg.effective_eval_batch_size,
                num_workers=cfg.num_workers, on_error=cfg.data.on_error, seed=cfg.seed, precision=cfg.precision,
                device=self.device, progress=self.progress, say=self._say)
        return caches

    # -- helpers ---------------------------------------------------------------------------------

    def _say(self, msg: str) -> None:
        if not self.info.is_main:
            return
        if self.progress:
            tqdm.write(msg, file=sys.stderr)
        else:
            log.info(msg)

    def _save_state(self, epoch: int, step_in_epoch: int) -> Path:
        """Write the training state (every process contributes its RNG states; rank 0 writes)."""
        rngs = all_gather_objects(capture_rng())
        self.state.epoch = epoch
        self.state.step_in_epoch = step_in_epoch
        self.state.log_records = self.metrics_log.count
        path = self.ckpt_dir / "last"
        if self.info.is_main:
            save_training_state(self.ckpt_dir, model=self.model, optimizer=self.optimizer, scaler=self.scaler,
                                state=self.state, rng=rngs, loader_generator=self.loader_generator,
                                model_extra=training_card_data(to_dict(self.cfg), self.metrics_log.records,
                                                               epochs_done=epoch, step=self.state.global_step))
        barrier()
        return path

    def _update_best(self, epoch: int, value: float) -> None:
        """Keep the ``keep_best`` best model folders and point ``<output_dir>/best`` at the top one."""
        if not is_finite(value):
            return
        if not all(bool(torch.isfinite(t).all()) for t in self.model.state_dict().values() if t.is_floating_point()):
            log.warning("epoch %d: the weights hold NaN or infinite values; not kept as a best model", epoch + 1)
            return
        best = self.state.best
        if len(best) >= self.cfg.keep_best and value <= best[-1]["value"]:
            return
        rel = f"models/epoch-{epoch + 1:03d}"
        entry = {"value": value, "epoch": epoch + 1, "global_step": self.state.global_step, "path": rel}
        if self.info.is_main:
            save_model(self.model, self.out / rel, extra={
                "metric": self.metric_key, "value": value, "epoch": epoch + 1,
                **training_card_data(to_dict(self.cfg), self.metrics_log.records, epochs_done=epoch + 1,
                                     step=self.state.global_step)})
        best.append(entry)
        best.sort(key=lambda e: (-e["value"], e["epoch"]))
        for gone in best[self.cfg.keep_best:]:
            if self.info.is_main:
                shutil.rmtree(self.out / gone["path"], ignore_errors=True)
        del best[self.cfg.keep_best:]
        if self.info.is_main:
            _point_link(self.out / "best", self.out / best[0]["path"])

    def _evaluate(self, epoch: int) -> dict[str, EvalResult]:
        cfg = self.cfg
        results = {}
        for split in self.eval_splits:
            dataset = None
            if split.name in self.caches:
                dataset = CachedClipDataset(self.caches[split.name], split.records, split.num_classes,
                                            sampling=cfg.sampling, hflip=False, seed=cfg.seed)
            r = evaluate_split(
                self.model, split, sampling=cfg.sampling, transform=cfg.transform, metrics=self.metric_names,
                batch_size=cfg.effective_eval_batch_size, num_workers=cfg.num_workers, device=self.device,
                precision=cfg.precision, on_error=cfg.data.on_error, data_format=cfg.data.format, seed=cfg.seed,
                progress=self.progress, dataset=dataset,
            )
            results[split.name] = r
            chance = r.chance
            shown = ", ".join(
                f"{k} {v:.4f}" + (f" (chance {chance[k]:.3f})" if k in chance else "") for k, v in r.metrics.items())
            self._say(f"eval {split.name} after epoch {epoch + 1}: {shown} [{r.num_clips} clips, {r.seconds:.1f} s]")
            self.metrics_log.write({"kind": "eval", "epoch": epoch + 1, "step": self.state.global_step,
                                    "split": split.name, **r.metrics, "chance": chance, "num_clips": r.num_clips,
                                    "skipped": len(r.skipped), "time": time.time()})
        return results

    # -- the loop ----------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        cfg = self.cfg
        forward_model = self.ddp if self.ddp is not None else self.model
        start_epoch, start_micro = self.state.epoch, self.state.step_in_epoch
        if self._resume_rng is not None:
            restore_rng(self._resume_rng)
        t_start = time.perf_counter()
        clips_seen = 0
        skipped_total = 0
        final: dict[str, EvalResult] = {}
        # The last position whose weights hold every step before it and nothing after: the place a
        # Ctrl-C can save and resume from.
        clean: tuple[int, int] | None = None
        if start_epoch >= cfg.epochs:
            self._say(f"the run already finished its {cfg.epochs} epochs; nothing to train")
        try:
            for epoch in range(start_epoch, cfg.epochs):
                micro = start_micro if epoch == start_epoch else 0
                self.sampler.set_epoch(epoch, skip=micro * cfg.batch_size)
                tally = SkipTally()
                nonfinite_before = self.state.nonfinite_steps
                window_loss, window_n = 0.0, 0
                epoch_loss, epoch_n = 0.0, 0
                t_window, clips_window = time.perf_counter(), 0
                self.model.train()
                bar = tqdm(total=self.micro_per_epoch, initial=micro, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                           disable=not self.progress, dynamic_ncols=True, leave=False)
                batches = iter(self.loader)
                step_uids: list[str] = []  # the clips of the optimiser step in progress
                bad_loss: float | None = None  # its first non-finite micro-batch loss
                while micro < self.micro_per_epoch:
                    if micro % cfg.grad_accum == 0:
                        clean = (epoch, micro)
                    batch = next(batches)
                    tally.update(batch)
                    boundary = (micro + 1) % cfg.grad_accum == 0
                    loss = self._micro_step(forward_model, batch, sync=boundary)
                    micro += 1
                    n = len(batch["uid"])
                    clips_seen += n
                    clips_window += n
                    step_uids += batch["uid"]
                    if n:
                        value = float(loss)
                        if math.isfinite(value):
                            window_loss += value * n
                            window_n += n
                        elif bad_loss is None:
                            bad_loss = value
                    bar.update(1)
                    if not boundary:
                        continue
                    clean = None
                    self.schedule.apply(self.optimizer, self.state.global_step)
                    self._optimizer_step(epoch, bad_loss, step_uids)
                    step_uids, bad_loss = [], None
                    self.state.global_step += 1
                    clean = (epoch, micro)
                    if self.state.global_step % cfg.log_every == 0 or micro == self.micro_per_epoch:
                        total_loss = all_reduce_sum(window_loss)
                        total_n = all_reduce_sum(window_n)
                        total_clips = all_reduce_sum(clips_window)
                        rate = total_clips / max(1e-9, time.perf_counter() - t_window)
                        mean = total_loss / total_n if total_n else float("nan")
                        epoch_loss += total_loss
                        epoch_n += total_n
                        lr = self.optimizer.param_groups[0]["lr"]
                        self.metrics_log.write({"kind": "train", "epoch": epoch + 1, "step": self.state.global_step,
                                                "loss": mean, "lr": lr, "clips_per_s": rate, "time": time.time()})
                        bar.set_postfix(loss=f"{mean:.4f}", lr=f"{lr:.2e}", clips_s=f"{rate:.1f}")
                        if not self.progress and self.info.is_main:
                            log.info("epoch %d step %d: loss %.4f, lr %.3g, %.1f clips/s",
                                     epoch + 1, self.state.global_step, mean, lr, rate)
                        window_loss, window_n, clips_window, t_window = 0.0, 0, 0, time.perf_counter()
                    every = cfg.checkpoint_every_steps
                    if every and self.state.global_step % every == 0 and micro < self.micro_per_epoch:
                        self._save_state(epoch, micro)
                bar.close()
                clean = None
                skipped = sorted({u for part in all_gather_objects(tally.uids) for u in part})
                skipped_total += len(skipped)
                epoch_mean = epoch_loss / epoch_n if epoch_n else float("nan")
                nonfinite = self.state.nonfinite_steps - nonfinite_before
                self._say(f"epoch {epoch + 1}/{cfg.epochs}: loss {epoch_mean:.4f}, "
                          f"{self.state.global_step} steps" + (
                              f" ({nonfinite} skipped: non-finite loss or gradient)" if nonfinite else "") + ", " + (
                              f"{len(skipped)} clip(s) skipped (unreadable): {', '.join(skipped[:10])}"
                              if skipped else "no clips skipped"))
                last_epoch = epoch + 1 == cfg.epochs
                due = cfg.eval_every and (epoch + 1) % cfg.eval_every == 0
                if self.eval_splits and (due or last_epoch):
                    results = self._evaluate(epoch)
                    final = {k: v for k, v in results.items()}
                    first = results[self.eval_splits[0].name]
                    self._update_best(epoch, first.metrics.get(self.metric_key, float("nan")))
                self._save_state(epoch + 1, 0)
        except KeyboardInterrupt:
            # Keep the work done so far when the position is a clean one (an optimiser-step boundary).
            if clean is not None and not self.info.distributed:
                path = self._save_state(*clean)
                self._say(f"interrupted: training state saved to {path}; continue with --resume auto")
            raise
        finally:
            self.metrics_log.close()
            self._restore_determinism()
        seconds = time.perf_counter() - t_start
        total_clips = all_reduce_sum(clips_seen)
        best = self.state.best[0] if self.state.best else None
        result = TrainResult(
            output_dir=self.out,
            best_model=(self.out / "best") if best else None,
            last_state=self.ckpt_dir / "last",
            metric=self.metric_key if self.eval_splits else None,
            best_value=best["value"] if best else None,
            best_epoch=best["epoch"] if best else None,
            final_metrics={k: v.metrics for k, v in final.items()},
            epochs=max(self.state.epoch, 0),
            steps=self.state.global_step,
            seconds=seconds,
            cache_seconds=self.cache_seconds,
            clips_per_second=total_clips / max(seconds, 1e-9),
            skipped=skipped_total,
            nonfinite_steps=self.state.nonfinite_steps,
            history=list(self.metrics_log.records),
        )
        if self.info.is_main:
            summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.__dict__.items() if k != "history"}
            atomic_write_text(self.out / "summary.json", json_text(summary, indent=2) + "\n")
        return result

    def _optimizer_step(self, epoch: int, bad_loss: float | None, uids: list[str]) -> None:
        """Update the weights, unless the step's loss or gradient is non-finite (then raise or skip it).

        Every process reaches the same decision: the gradients are already averaged over processes,
        and a non-finite loss on any process is summed over all of them.
        """
        cfg = self.cfg
        any_bad_loss = all_reduce_sum(0.0 if bad_loss is None else 1.0) > 0
        if any_bad_loss:
            self.optimizer.zero_grad(set_to_none=True)
            what, value = "loss", bad_loss
        else:
            norm = optimizer_step(self.params, self.optimizer, self.scaler, cfg.clip_grad_norm, check_finite=True)
            if norm is None or math.isfinite(norm):
                self._nonfinite_run = 0
                return
            what, value = "gradient norm", norm
        where = (f"epoch {epoch + 1}, optimiser step {self.state.global_step + 1}"
                 + (f", clips {', '.join(uids[:8])}{' ...' if len(uids) > 8 else ''}" if uids else ""))
        if cfg.nonfinite == "raise":
            shown = "another process's batch" if value is None else value
            raise NonFiniteError(
                f"non-finite {what} ({shown}) at {where}; the weights were not updated. Lower optim.lr, set "
                f"clip_grad_norm, check those clips, or set nonfinite: skip to skip such steps and count them")
        if not all(bool(torch.isfinite(p).all()) for p in self.params):
            raise NonFiniteError(
                f"non-finite {what} at {where}, and the weights themselves are non-finite: skipping steps cannot "
                f"recover from that; lower optim.lr or set clip_grad_norm, and restart")
        self._nonfinite_run += 1
        if self._nonfinite_run >= MAX_CONSECUTIVE_NONFINITE:
            raise NonFiniteError(
                f"non-finite {what} at {where}: {self._nonfinite_run} optimiser steps in a row were non-finite, so "
                f"the model has diverged and skipping cannot recover; lower optim.lr or set clip_grad_norm, and restart")
        self.state.nonfinite_steps += 1
        if self.state.nonfinite_steps <= 10:
            log.warning("skipped optimiser step: non-finite %s at %s (nonfinite: skip)", what, where)

    def _micro_step(self, forward_model: torch.nn.Module, batch: dict[str, Any], *, sync: bool) -> torch.Tensor:
        """Forward and backward one micro-batch (an all-skipped batch takes a zero-weight dummy step)."""
        cfg = self.cfg
        video, frozen = None, None
        weight = 1.0 / cfg.grad_accum
        if not batch["uid"]:
            # Every process must take part in each DDP step; a zero-weight step on a blank clip keeps
            # the collective calls matched without touching the weights' gradients.
            s, t = cfg.transform.size, cfg.sampling.num_frames
            video = torch.zeros(1, t, 3, s, s, dtype=torch.uint8, device=self.device)
            target = (torch.zeros(1, self.train_split.num_classes, device=self.device) if self.multi_label
                      else torch.zeros(1, dtype=torch.int64, device=self.device))
            weight = 0.0
        else:
            target = batch["target"].to(self.device, non_blocking=True)
            if "frozen" in batch:
                frozen = batch["frozen"].to(self.device)
            else:
                video = batch["video"].to(self.device, non_blocking=True)
        ctx = self.ddp.no_sync() if (self.ddp is not None and not sync) else contextlib.nullcontext()
        with ctx:
            return forward_backward(forward_model, self.loss_fn, video, target, device=self.device,
                                    precision=cfg.precision, frozen=frozen, scaler=self.scaler, loss_scale=weight)


def _point_link(link: Path, target: Path) -> None:
    """Make ``link`` a relative symlink to ``target`` atomically (a copy where symlinks are unsupported)."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.relpath(target, link.parent), tmp)
        if link.exists() and not link.is_symlink():
            shutil.rmtree(link)
        os.replace(tmp, link)
    except OSError:
        if tmp.is_symlink():
            tmp.unlink()
        if link.is_symlink():
            link.unlink()
        shutil.copytree(target, tmp)
        if link.exists():
            shutil.rmtree(link)
        os.replace(tmp, link)


def train(cfg: TrainConfig, *, resume: str | None = None, progress: bool = True) -> TrainResult:
    """Train ``cfg`` to the end (single process, or one rank of a ``torchrun`` job); see the module docstring.

    Args:
        cfg: the training config.
        resume: ``None`` (a new run; refuses an ``output_dir`` that holds one), ``"auto"`` (continue
            the newest valid state in ``output_dir``, or start new), or a state folder / run folder.
        progress: show progress bars (rank 0).
    """
    started = not torch.distributed.is_initialized()
    info = init_distributed(cfg.device)
    try:
        return Trainer(cfg, resume=resume, progress=progress, dist=info).fit()
    finally:
        if started:
            shutdown_distributed()
