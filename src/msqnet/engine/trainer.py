"""The training recipe: ``Trainer`` reads a ``TrainConfig``, sets up, trains, evaluates and saves.

The recipe, in the order it runs:

* ``setup()``: the data (splits, a held-out ``val``, zero-shot classes), the model, the run folder,
  the frozen-output caches (``cache_frozen``), the loss, optimiser and LR schedule, the data loader,
  the resumed state (``--resume``), the metrics log and the DDP wrapper;
* ``train()``: per epoch, micro-batch steps (``_step``: forward/backward, with gradient accumulation)
  and optimiser steps (``_optimizer_step``), logging, evaluation and best-model keeping, a state at
  each epoch end (and every ``checkpoint_every_steps``);
* ``save_checkpoint()``: the training state (every process's RNG, the data position);
* ``cleanup()``: closes the log and restores the global determinism switch.

The library does the rest: ``msqnet.data.loader`` (order, sharding, workers), ``engine.step`` (one
step, non-finite handling), ``engine.checkpoint_keeper`` (last/previous states, best-N folders, the
``best`` link), ``engine.metrics_log``, ``engine.evaluate``, ``engine.frozen_cache``, and
``msqnet.run_dir`` (the run folder's layout).

Reproducibility: the data order of epoch ``e`` and every clip's augmentation are functions of
``(seed, e, index)`` (``ClipSampler``, ``ClipDataset``), checkpoints hold every RNG and the data
position, and the LR schedule is a function of the step; with ``deterministic: true`` a run killed
anywhere and resumed ends with the same weights, bit for bit, as one that never stopped.

Raises ``ConfigError`` for settings that cannot work together (before any step), ``CheckpointError``
for a state that cannot be resumed, ``NonFiniteError`` for a non-finite step with ``nonfinite: raise``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..checkpoint.card import training_card_data
from ..checkpoint import save_model
from ..data.class_splits import load_zero_shot_split, restrict_split
from ..config_loader import ConfigError, to_dict, write_config_file
from ..data.dataset import ClipDataset, SkipTally
from ..data.datasets import load_split
from ..data.durations import typical_clip_seconds
from ..data.loader import ClipSampler, build_loader
from ..data.views import TestView
from ..metrics import default_metric_names, metric_keys
from ..metrics.thresholds import choose_decision_thresholds
from ..models import MSQNet, create_model
from ..precision import cpu_has_bf16
from ..checkpoint.run_dir import RunDir
from ..utils import atomic_write_text, json_text, quote
from .checkpoint_keeper import CheckpointKeeper
from .config import TrainConfig, resume_changes
from .distributed import DistInfo, all_gather_objects, all_reduce_sum, barrier, init_distributed, shutdown_distributed
from .evaluate import EvalResult, evaluate_split
from .frozen_cache import augmentations_lost, cached_clip_dataset
from .losses import build_loss
from .metrics_log import MetricsLog
from .optim import LRSchedule, build_optimizer
from .state import TrainingState, capture_rng, load_training_state, restore_rng, verify_training_state
from .step import NonFiniteError, NonFiniteGuard, forward_backward, optimizer_step

__all__ = ["NonFiniteError", "TrainResult", "Trainer", "train"]

log = logging.getLogger("msqnet.train")

# Metadata columns that name the recording a clip was cut from, in the order ``val_group_by: auto`` looks
# for them: clips of one recording look alike, so a validation split holds out whole recordings.
VAL_GROUP_COLUMNS = ("group", "source", "recording", "video")


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
        selection_split: the split that picked it (``val``, held out of the training split), or ``None``.
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
    selection_split: str | None = None
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
            lines.append(f"best {self.metric} {self.best_value:.4f} on {self.selection_split} (held out of the training "
                         f"split; chose it) at epoch {self.best_epoch}: {self.best_model}")
        elif self.final_metrics:
            lines.append("no validation split chose a best model (val_fraction: 0): the result is the last model")
        lines.append(f"training state: {self.last_state}")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


@dataclass
class _LogWindow:
    """This process's loss sum, clips with a finite loss and clips seen since the last log record."""

    loss: float = 0.0
    n: int = 0
    clips: int = 0
    start: float = field(default_factory=time.perf_counter)


class Trainer:
    """One training run of a ``TrainConfig``: ``setup()``, then ``train()``; see the module docstring.

    Args:
        cfg: the training config.
        resume: ``None`` (a new run; refuses an ``output_dir`` that holds one), ``"auto"`` (continue
            the newest valid state in ``output_dir``, or start new), or a state folder / run folder.
        progress: progress bars on rank 0 (log lines otherwise).
        dist: this process's place in a DDP job; ``None`` = join the one ``torchrun`` describes
            (or run alone).
    """

    def __init__(self, cfg: TrainConfig, *, resume: str | None = None, progress: bool = True,
                 dist: DistInfo | None = None):
        self.cfg = cfg
        self.resume = resume
        self.info = dist if dist is not None else init_distributed(cfg.device)
        self.device = self.info.device
        self.progress = progress and self.info.is_main
        self.run = RunDir(cfg.output_dir)
        self.keeper = CheckpointKeeper(self.run, keep_best=cfg.keep_best, writes=self.info.is_main)

    # -- setup -------------------------------------------------------------------------------------

    def setup(self) -> Trainer:
        """Build everything the loop needs, in order; nothing is trained yet. Returns the trainer."""
        self._setup_determinism()
        try:
            self._setup_data()
            self._setup_model()
            resume_path = self.keeper.resume_path(self.resume)
            if self.info.is_main:
                self.run.root.mkdir(parents=True, exist_ok=True)
            barrier()
            self._setup_caches()
            self._setup_optimizer()
            self._setup_data_loader()
            self.state = TrainingState(world_size=self.info.world_size, config=to_dict(self.cfg),
                                       best=self.keeper.best)
            self.guard = NonFiniteGuard(self.cfg.nonfinite)
            self._resume_rng = self._load_state(resume_path) if resume_path is not None else None
            self._setup_logs(resumed=resume_path is not None)
            self.ddp = None
            if self.info.distributed:
                self.ddp = DistributedDataParallel(
                    self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        except BaseException:
            self._restore_determinism()
            raise
        return self

    def _setup_determinism(self) -> None:
        """Threads, deterministic kernels, and every global RNG seeded from ``cfg.seed``."""
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

    def _setup_data(self) -> None:
        """The training and evaluation splits (a held-out ``val`` first, seen classes only with a
        zero-shot split), and the metrics evaluation reports."""
        cfg = self.cfg
        self.train_split = load_split(cfg.data, cfg.train_split)
        self.eval_splits = [load_split(cfg.data, name) for name in cfg.eval_splits]
        for s in [self.train_split, *self.eval_splits]:
            for p in s.problems[:3]:
                log.warning("split %s: skipped annotation entry: %s", s.name, p)
            if s.class_names != self.train_split.class_names:
                raise ConfigError(
                    f"eval split {quote(s.name)} has another label set than train split {quote(cfg.train_split)} "
                    f"({len(s.class_names)} vs {len(self.train_split.class_names)} classes)"
                )
        if not self.train_split.records:
            raise ConfigError(f"train split {quote(cfg.train_split)} has no clips")
        if self.train_split.multi_label_inferred:
            log.info("every clip of train split %s has exactly one label: training it as single-label data (softmax, "
                     "cross-entropy, top-1); data.options.multi_label=true trains it multi-label", quote(cfg.train_split))
        try:
            self.eval_splits = [s.as_label_kind(self.train_split.multi_label) for s in self.eval_splits]
        except ValueError as e:
            raise ConfigError(f"eval_splits: {e}") from None
        self.selection_split: str | None = None
        held = round(len(self.train_split.records) * cfg.val_fraction)
        if cfg.val_fraction and held < 1:
            log.warning("val_fraction %s of %d training clips is no clip: no validation split, so no best "
                        "checkpoint is picked; the result is the last model", cfg.val_fraction,
                        len(self.train_split.records))
        elif cfg.val_fraction:
            group = self.train_split.group_key(VAL_GROUP_COLUMNS) if cfg.val_group_by == "auto" else cfg.val_group_by
            if group is not None and not self.train_split.group_key([group]):
                raise ConfigError(f"val_group_by: not every clip of train split {quote(cfg.train_split)} has a "
                                  f"{quote(group)} column")
            try:
                self.train_split, val = self.train_split.hold_out(cfg.val_fraction, seed=cfg.seed, name="val",
                                                                  group_by=group)
            except ValueError as e:
                raise ConfigError(f"val_fraction: {e}") from None
            self.eval_splits.insert(0, val)
            self.selection_split = val.name
            by = f", whole {group}s at a time ({len({r.meta[group] for r in val.records})} of them)" if group else ""
            log.info("holding out %d of %d training clips as the validation split 'val'%s; it picks the best "
                     "checkpoints", len(val.records), len(val.records) + len(self.train_split.records), by)
        elif self.eval_splits:
            log.info("val_fraction: 0: no validation split, so no best checkpoint is picked (the evaluation splits "
                     "are scored, never used to choose); the result is the last model")
        if cfg.zero_shot:
            self._keep_seen_classes(cfg.zero_shot)
        self.multi_label = self.train_split.multi_label
        self.metric_names = list(cfg.metrics) or default_metric_names(
            self.multi_label, self.train_split.num_classes, segments=self.train_split.segments,
            data_format=cfg.data.format)
        self.metric_key = cfg.best_metric(self.multi_label)
        if cfg.eval_splits or cfg.val_fraction:  # fail at start, not after the first epoch
            try:
                keys = metric_keys(self.metric_names, self.train_split.segments)
            except ValueError as e:
                raise ConfigError(f"metrics: {e}") from None
            if self.metric_key not in keys:
                raise ConfigError(f"metric: {quote(self.metric_key)} is not computed; evaluation gives {sorted(keys)} "
                                  f"(add it to metrics or pick one of those)")

    def _keep_seen_classes(self, zero_shot: str) -> None:
        """Zero-shot training: keep only the split file's seen classes in train and eval labels."""
        try:
            zs = load_zero_shot_split(zero_shot, self.train_split.class_names)
        except (ValueError, FileNotFoundError) as e:
            raise ConfigError(f"zero_shot: {e}") from None
        unseen_train = sum(1 for r in self.train_split.records if set(r.labels) & set(zs.unseen))
        self.train_split = restrict_split(self.train_split, zs.seen)
        self.eval_splits = [restrict_split(s, zs.seen) for s in self.eval_splits]
        log.info("zero-shot split %s: training on %d seen classes, %d unseen held out (%d train clips carried "
                 "unseen labels, now dropped from their targets)", zs.name, len(zs.seen), len(zs.unseen), unseen_train)

    def _setup_model(self) -> None:
        """The model for the training classes, its test view, on the device, in training mode."""
        cfg = self.cfg
        self.model: MSQNet = create_model(cfg.model, self.train_split.class_names, multi_label=self.multi_label)
        mc = self.model.cfg
        if mc.num_frames != cfg.sampling.num_frames:
            raise ConfigError(f"sampling.num_frames ({cfg.sampling.num_frames}) must equal the model's num_frames "
                              f"({mc.num_frames}); set both")
        if mc.image_size != cfg.transform.size:
            raise ConfigError(f"transform.size ({cfg.transform.size}) must equal the model's image_size "
                              f"({mc.image_size}); set both")
        self.model.test_view = TestView.from_configs(cfg.sampling, cfg.transform)  # saved with every checkpoint
        self.model.clip_seconds = typical_clip_seconds(self.train_split.records)  # prediction's window length
        if cfg.cache_frozen and not self.model.has_frozen_frames:
            raise ConfigError("cache_frozen: this model has no frozen encoder to cache (no visual embedder, and a "
                              "video encoder trained end to end)")
        self.model.to(self.device)
        self.model.train()
        # Dropout and friends draw differently on every process from here on.
        torch.manual_seed(cfg.seed + self.info.rank)

    def _setup_caches(self) -> None:
        """With ``cache_frozen``: every split's clips as the frozen encoders' outputs, built or reloaded."""
        cfg = self.cfg
        self.train_dataset: Any = None
        self.eval_datasets: dict[str, Any] = {}
        self.cache_seconds = 0.0
        if not cfg.cache_frozen:
            return
        lost = augmentations_lost(cfg.transform, cfg.cache_views)
        if lost:
            log.warning("cache_frozen: training reads cached test views, so transform.%s do(es) not apply "
                        "(only hflip and the temporal draw among cache_frames do; cache_views > 1 caches "
                        "augmented views)", ", ".join(lost))
        start = time.perf_counter()
        build = dict(frames=cfg.cache_frames, batch_size=cfg.effective_eval_batch_size, num_workers=cfg.num_workers,
                     on_error=cfg.data.on_error, precision=cfg.precision, device=self.device, progress=self.progress,
                     say=self._say)
        folder = cfg.cache_dir or self.run.cache
        self.train_dataset = cached_clip_dataset(
            self.model, self.train_split, folder, sampling=cfg.sampling, transform=cfg.transform, train=True,
            multi_label=self.multi_label, seed=cfg.seed, views=cfg.cache_views, **build)
        for split in self.eval_splits:
            self.eval_datasets[split.name] = cached_clip_dataset(
                self.model, split, folder, sampling=cfg.sampling, transform=cfg.transform, train=False, seed=cfg.seed,
                **build)
        self.cache_seconds = time.perf_counter() - start

    def _setup_optimizer(self) -> None:
        """The loss, the optimiser over the trainable parameters, and the gradient scaler (fp16)."""
        cfg = self.cfg
        self.loss_fn = build_loss(cfg.loss, self.multi_label)
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if cfg.precision == "fp16" and self.device.type == "cpu":
            log.warning("precision fp16 on the CPU is slow and rarely useful; bf16 is the CPU choice")
        if cfg.precision == "bf16" and self.device.type == "cpu" and not cpu_has_bf16():
            log.warning("this CPU has no native bf16; autocast emulates it and may be slower than fp32")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")

    def _setup_data_loader(self) -> None:
        """The training clips (decoded, or cached), their sharded resumable order, the loader, and the
        LR schedule over the resulting steps."""
        cfg = self.cfg
        if self.train_dataset is None:
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
        self.steps_per_epoch = len(self.sampler) // cfg.batch_size // cfg.grad_accum
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"an epoch has {len(self.sampler)} clips per process, fewer than batch_size x grad_accum "
                f"({cfg.batch_size} x {cfg.grad_accum}); lower them or raise clips_per_epoch"
            )
        self.micro_per_epoch = self.steps_per_epoch * cfg.grad_accum
        self.schedule = LRSchedule(cfg.schedule, self.steps_per_epoch, cfg.epochs)

    def _load_state(self, path: Path):
        """Continue the training state at ``path``; returns this process's RNG states to restore."""
        doc = verify_training_state(path)
        # Compared before any tensor is loaded: a changed run is named, not a shape.
        changed, others = resume_changes(doc["state"]["config"], self.cfg)
        if changed:
            raise ConfigError(f"cannot resume {path}: the config changed in {changed}; "
                              f"these define the run (start a new output_dir to change them)")
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
        self.keeper.restore_best(state.best)
        state.best = self.keeper.best
        state.config = to_dict(self.cfg)
        state.world_size = self.info.world_size
        self.state = state
        if self.info.is_main:
            log.info("resuming %s: epoch %d, step %d of the epoch, %d optimiser steps done",
                     path, state.epoch + 1, state.step_in_epoch, state.global_step)
        return rng

    def _setup_logs(self, *, resumed: bool) -> None:
        """The run's config file and metrics log (a resumed log keeps what its state counted)."""
        if self.info.is_main:
            write_config_file(self.cfg, self.run.config_file)
        self.metrics_log = MetricsLog(
            self.run.metrics_log, enabled=self.info.is_main,
            keep_records=self.state.log_records if resumed else None,
            tensorboard_dir=self.run.tensorboard if self.cfg.tensorboard else None,
        )

    # -- the loop ----------------------------------------------------------------------------------

    def train(self) -> TrainResult:
        """Train to ``cfg.epochs`` (from where a resumed state left off); returns what the run produced."""
        cfg = self.cfg
        start_epoch, start_micro = self.state.epoch, self.state.step_in_epoch
        if self._resume_rng is not None:
            restore_rng(self._resume_rng)
        t_start = time.perf_counter()
        clips_seen, skipped = 0, 0
        final: dict[str, EvalResult] = {}
        # The last position whose weights hold every step before it and nothing after: the place a
        # Ctrl-C can save and resume from.
        self._clean: tuple[int, int] | None = None
        if start_epoch >= cfg.epochs:
            self._say(f"the run already finished its {cfg.epochs} epochs; nothing to train")
        try:
            for epoch in range(start_epoch, cfg.epochs):
                seen, unreadable = self._train_epoch(epoch, start_micro if epoch == start_epoch else 0)
                clips_seen += seen
                skipped += unreadable
                due = cfg.eval_every and (epoch + 1) % cfg.eval_every == 0
                if self.eval_splits and (due or epoch + 1 == cfg.epochs):
                    final = self._evaluate(epoch)
                    if self.selection_split is not None:  # only a split held out of training chooses
                        chosen = final[self.selection_split]
                        # Decision thresholds: chosen on the validation split's predictions, saved with
                        # the model from here on (without one the model stays uncalibrated).
                        self.model.decision_thresholds = choose_decision_thresholds(
                            chosen.scores, chosen.targets, self.model.class_names, chosen.split)
                        self._keep_if_best(epoch, chosen.metrics.get(self.metric_key, float("nan")))
                self.save_checkpoint(epoch + 1, 0)
        except KeyboardInterrupt:
            # Keep the work done so far when the position is a clean one (an optimiser-step boundary).
            if self._clean is not None and not self.info.distributed:
                path = self.save_checkpoint(*self._clean)
                self._say(f"interrupted: training state saved to {path}; continue with --resume auto")
            raise
        finally:
            self.cleanup()
        seconds = time.perf_counter() - t_start
        return self._result(final, seconds=seconds, clips=all_reduce_sum(clips_seen), skipped=skipped)

    def _train_epoch(self, epoch: int, micro: int) -> tuple[int, int]:
        """Train epoch ``epoch`` (0-based) from its micro-batch ``micro``; returns the clips this process
        trained on and the clips skipped as unreadable (over all processes)."""
        cfg = self.cfg
        forward_model = self.ddp if self.ddp is not None else self.model
        self.sampler.set_epoch(epoch, skip=micro * cfg.batch_size)
        tally = SkipTally()
        nonfinite_before = self.state.nonfinite_steps
        window = _LogWindow()
        epoch_loss, epoch_n, clips_seen = 0.0, 0, 0
        self.model.train()
        bar = tqdm(total=self.micro_per_epoch, initial=micro, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not self.progress, dynamic_ncols=True, leave=False)
        batches = iter(self.loader)
        step_uids: list[str] = []  # the clips of the optimiser step in progress
        bad_loss: float | None = None  # its first non-finite micro-batch loss
        while micro < self.micro_per_epoch:
            if micro % cfg.grad_accum == 0:
                self._clean = (epoch, micro)
            batch = next(batches)
            tally.update(batch)
            boundary = (micro + 1) % cfg.grad_accum == 0
            loss = self._step(forward_model, batch, sync=boundary)
            micro += 1
            n = len(batch["uid"])
            clips_seen += n
            window.clips += n
            step_uids += batch["uid"]
            if n:
                value = float(loss)
                if math.isfinite(value):
                    window.loss += value * n
                    window.n += n
                elif bad_loss is None:
                    bad_loss = value
            bar.update(1)
            if not boundary:
                continue
            self._clean = None
            self.schedule.apply(self.optimizer, self.state.global_step)
            self._optimizer_step(epoch, bad_loss, step_uids)
            step_uids, bad_loss = [], None
            self.state.global_step += 1
            self._clean = (epoch, micro)
            if self.state.global_step % cfg.log_every == 0 or micro == self.micro_per_epoch:
                total_loss, total_n = self._log_train(epoch, window, bar)
                epoch_loss += total_loss
                epoch_n += total_n
                window = _LogWindow()
            every = cfg.checkpoint_every_steps
            if every and self.state.global_step % every == 0 and micro < self.micro_per_epoch:
                self.save_checkpoint(epoch, micro)
        bar.close()
        self._clean = None
        skipped = sorted({u for part in all_gather_objects(tally.uids) for u in part})
        epoch_mean = epoch_loss / epoch_n if epoch_n else float("nan")
        nonfinite = self.state.nonfinite_steps - nonfinite_before
        self._say(f"epoch {epoch + 1}/{cfg.epochs}: loss {epoch_mean:.4f}, {self.state.global_step} steps" + (
            f" ({nonfinite} skipped: non-finite loss or gradient)" if nonfinite else "") + ", " + (
            f"{len(skipped)} clip(s) skipped (unreadable): {', '.join(skipped[:10])}" if skipped else "no clips skipped"))
        return clips_seen, len(skipped)

    def _log_train(self, epoch: int, window: _LogWindow, bar: tqdm) -> tuple[float, float]:
        """Log the mean loss, rate and learning rate since the last record (all processes); returns the
        window's loss sum and clip count over all processes."""
        total_loss = all_reduce_sum(window.loss)
        total_n = all_reduce_sum(window.n)
        total_clips = all_reduce_sum(window.clips)
        rate = total_clips / max(1e-9, time.perf_counter() - window.start)
        mean = total_loss / total_n if total_n else float("nan")
        lr = self.optimizer.param_groups[0]["lr"]
        self.metrics_log.write({"kind": "train", "epoch": epoch + 1, "step": self.state.global_step,
                                "loss": mean, "lr": lr, "clips_per_s": rate, "time": time.time()})
        bar.set_postfix(loss=f"{mean:.4f}", lr=f"{lr:.2e}", clips_s=f"{rate:.1f}")
        if not self.progress and self.info.is_main:
            log.info("epoch %d step %d: loss %.4f, lr %.3g, %.1f clips/s", epoch + 1, self.state.global_step, mean,
                     lr, rate)
        return total_loss, total_n

    def _step(self, forward_model: torch.nn.Module, batch: dict[str, Any], *, sync: bool) -> torch.Tensor:
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

    def _optimizer_step(self, epoch: int, bad_loss: float | None, uids: list[str]) -> None:
        """Update the weights, unless the step's loss or gradient is non-finite (then raise or skip it).

        Every process reaches the same decision: the gradients are already averaged over processes,
        and a non-finite loss on any process is summed over all of them.
        """
        any_bad_loss = all_reduce_sum(0.0 if bad_loss is None else 1.0) > 0
        if any_bad_loss:
            self.optimizer.zero_grad(set_to_none=True)
            what, value = "loss", bad_loss
        else:
            norm = optimizer_step(self.params, self.optimizer, self.scaler, self.cfg.clip_grad_norm, check_finite=True)
            if norm is None or math.isfinite(norm):
                self.guard.finite()
                return
            what, value = "gradient norm", norm
        where = (f"epoch {epoch + 1}, optimiser step {self.state.global_step + 1}"
                 + (f", clips {', '.join(uids[:8])}{' ...' if len(uids) > 8 else ''}" if uids else ""))
        self.guard.nonfinite(what, value, where, self.params, skipped_before=self.state.nonfinite_steps)
        self.state.nonfinite_steps += 1

    def _evaluate(self, epoch: int) -> dict[str, EvalResult]:
        """Evaluate every evaluation split (from the caches when there are) and log each result."""
        cfg = self.cfg
        results = {}
        for split in self.eval_splits:
            r = evaluate_split(
                self.model, split, sampling=cfg.sampling, transform=cfg.transform, metrics=self.metric_names,
                batch_size=cfg.effective_eval_batch_size, num_workers=cfg.num_workers, device=self.device,
                precision=cfg.precision, on_error=cfg.data.on_error, data_format=cfg.data.format, seed=cfg.seed,
                progress=self.progress, dataset=self.eval_datasets.get(split.name),
            )
            results[split.name] = r
            shown = ", ".join(f"{k} {v:.4f}" + (f" (chance {r.chance[k]:.3f})" if k in r.chance else "")
                              for k, v in r.metrics.items())
            self._say(f"eval {split.name} after epoch {epoch + 1}: {shown} [{r.num_clips} clips, {r.seconds:.1f} s]")
            self.metrics_log.write({"kind": "eval", "epoch": epoch + 1, "step": self.state.global_step,
                                    "split": split.name, **r.metrics, "chance": r.chance, "num_clips": r.num_clips,
                                    "skipped": len(r.skipped), "time": time.time()})
        return results

    # -- saving ------------------------------------------------------------------------------------

    def _card_data(self, epochs_done: int) -> dict[str, Any]:
        """What a checkpoint's model card is written from: the config, progress, latest evaluation."""
        return training_card_data(to_dict(self.cfg), self.metrics_log.records, epochs_done=epochs_done,
                                  step=self.state.global_step)

    def _keep_if_best(self, epoch: int, value: float) -> None:
        """Keep the model of ``epoch`` (0-based) among the best ones if its finite ``value`` ranks there."""
        if not math.isfinite(value):
            return
        if not all(bool(torch.isfinite(t).all()) for t in self.model.state_dict().values() if t.is_floating_point()):
            log.warning("epoch %d: the weights hold NaN or infinite values; not kept as a best model", epoch + 1)
            return
        extra = {"metric": self.metric_key, "value": value, "epoch": epoch + 1, **self._card_data(epoch + 1)}
        self.keeper.offer(value, epoch=epoch + 1, global_step=self.state.global_step,
                          save=lambda folder: save_model(self.model, folder, extra=extra))

    def save_checkpoint(self, epoch: int, step_in_epoch: int) -> Path:
        """Write the training state at ``(epoch, step_in_epoch)`` (every process contributes its RNG
        states; rank 0 writes); returns its path."""
        rngs = all_gather_objects(capture_rng())
        self.state.epoch = epoch
        self.state.step_in_epoch = step_in_epoch
        self.state.log_records = self.metrics_log.count
        path = self.keeper.save_state(model=self.model, optimizer=self.optimizer, scaler=self.scaler,
                                      state=self.state, rng=rngs, loader_generator=self.loader_generator,
                                      model_extra=self._card_data(epoch))
        barrier()
        return path

    def _result(self, final: dict[str, EvalResult], *, seconds: float, clips: float, skipped: int) -> TrainResult:
        """What the run produced, also written to ``summary.json``."""
        best = self.keeper.best[0] if self.keeper.best else None
        result = TrainResult(
            output_dir=self.run.root,
            best_model=self.run.best if best else None,
            last_state=self.run.last_state,
            metric=self.metric_key if self.selection_split else None,
            selection_split=self.selection_split,
            best_value=best["value"] if best else None,
            best_epoch=best["epoch"] if best else None,
            final_metrics={k: v.metrics for k, v in final.items()},
            epochs=max(self.state.epoch, 0),
            steps=self.state.global_step,
            seconds=seconds,
            cache_seconds=self.cache_seconds,
            clips_per_second=clips / max(seconds, 1e-9),
            skipped=skipped,
            nonfinite_steps=self.state.nonfinite_steps,
            history=list(self.metrics_log.records),
        )
        if self.info.is_main:
            summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.__dict__.items() if k != "history"}
            atomic_write_text(self.run.summary_file, json_text(summary, indent=2) + "\n")
        return result

    def cleanup(self) -> None:
        """Close the metrics log and leave the global deterministic-algorithms switch as the caller had it."""
        self.metrics_log.close()
        self._restore_determinism()

    def _restore_determinism(self) -> None:
        if self.cfg.deterministic and not self._prev_deterministic:
            torch.use_deterministic_algorithms(False)

    def _say(self, msg: str) -> None:
        """A progress message from rank 0 (above the progress bars, or as a log line)."""
        if not self.info.is_main:
            return
        if self.progress:
            tqdm.write(msg, file=sys.stderr)
        else:
            log.info(msg)


def train(cfg: TrainConfig, *, resume: str | None = None, progress: bool = True) -> TrainResult:
    """Train ``cfg`` to the end (single process, or one rank of a ``torchrun`` job); see ``Trainer``."""
    started = not torch.distributed.is_initialized()
    info = init_distributed(cfg.device)
    try:
        return Trainer(cfg, resume=resume, progress=progress, dist=info).setup().train()
    finally:
        if started:
            shutdown_distributed()
