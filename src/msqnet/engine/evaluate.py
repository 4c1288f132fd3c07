"""Evaluation: score every clip of a split and compute its metrics once over all of them; ``msqnet evaluate``.

``evaluate_split`` scores a split with a model (``msqnet.engine.inference``: multi-view, gathered
across processes in annotation order, so the metrics equal a single-process run's) and computes the
metrics, their chance levels and the per-class AP once. ``evaluate_checkpoint`` loads a checkpoint
with its recorded test view, evaluates a split and writes the report folder and ``scores.csv``.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checkpoint import load_model, require_model_folder
from ..checkpoint.run_dir import RunDir
from ..data.config import DataConfig, SamplingConfig, TransformConfig
from ..data.dataset import ClipDataset
from ..data.datasets import DatasetSplit, load_split
from ..data.records import multi_hot
from ..metrics import chance_levels, compute_metrics, default_metric_names, per_class_average_precision
from ..metrics.prediction_files import write_wide_csv
from ..utils import quote
from .distributed import is_main_process, resolve_device
from .inference import predict_dataset, view_configs
from .metrics_log import read_metrics_log
from .report import write_report

__all__ = ["EvalResult", "evaluate_split", "evaluate_checkpoint"]

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """One split's evaluation.

    Args:
        split: split name.
        scores: ``(N, C)`` probabilities, rows in annotation order (skipped clips left out).
        targets: ``(N, C)`` multi-hot (single-label sets: one-hot).
        uids: the N clips' uids.
        indices: the N clips' record indices in the split.
        metrics: metric key -> value, computed once over all N clips.
        chance: metric key -> its value for random scores on the same clips (keys with a closed form).
        per_class_ap: ``(C,)`` AP of every class (NaN without positives), computed once for the
            metrics and the report.
        skipped: uids of clips that could not be read (``on_error: skip``).
        seconds: wall time.
    """

    split: str
    scores: np.ndarray
    targets: np.ndarray
    uids: list[str]
    indices: np.ndarray
    metrics: dict[str, float]
    chance: dict[str, float] = field(default_factory=dict)
    per_class_ap: np.ndarray | None = field(default=None, repr=False)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def num_clips(self) -> int:
        """Clips scored."""
        return len(self.uids)


def evaluate_split(
    model: torch.nn.Module,
    split: DatasetSplit,
    *,
    sampling: SamplingConfig | None = None,
    transform: TransformConfig | None = None,
    metrics: Sequence[str] | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    on_error: str = "raise",
    data_format: str | None = None,
    seed: int = 0,
    progress: bool = True,
    dataset: Dataset | None = None,
) -> EvalResult:
    """Score a whole ``DatasetSplit`` with ``model`` and compute its metrics once over every clip.

    Args:
        model: an MSQNet (unwrapped, not the DDP wrapper) trained on ``split.class_names``.
        split: the split (``msqnet.data.datasets.load_split``).
        sampling: frames and test views (K clips x N crops, ``aggregate``); ``None`` = the model's
            recorded test view (``model.test_view``).
        transform: test resize / crop; ``None`` = the model's test view.
        metrics: metric names (``msqnet.metrics.compute_metrics``); ``None`` = ``default_metric_names``.
        batch_size: clips per batch (each with all its views).
        on_error: ``raise`` on an unreadable clip, or ``skip`` it (listed in ``EvalResult.skipped``).
        data_format: the dataset format, to pick Charades' official metric by default.
        dataset: the split's clips as a ready dataset (e.g. ``CachedClipDataset`` of cached frozen
            outputs); ``None`` = decode them (``ClipDataset``).
    """
    start = time.perf_counter()
    names = list(model.class_names)
    if names != list(split.class_names):
        diff = next((i for i, (a, b) in enumerate(zip(names, split.class_names)) if a != b), min(len(names), len(split.class_names)))
        raise ValueError(
            f"split {quote(split.name)}: its {len(split.class_names)} classes differ from the model's {len(names)} "
            f"(first difference at class id {diff}); evaluate on data with the training label set"
        )
    if not split.records:
        raise ValueError(f"split {quote(split.name)} has no clips to evaluate")
    sampling, transform = view_configs(model, sampling, transform)
    if dataset is None:
        dataset = ClipDataset(split.records, split.num_classes, sampling=sampling, transform=transform, train=False,
                              multi_label=True, on_error=on_error, seed=seed)
    [scores], index, skipped = predict_dataset(
        model, dataset, batch_size=batch_size, num_workers=num_workers, device=device, precision=precision,
        aggregate=sampling.aggregate, seed=seed, progress=progress, desc=f"eval {split.name}",
    )
    if skipped:
        log.warning("split %s: %d clip(s) could not be read and are left out of the metrics: %s",
                    split.name, len(skipped), ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    if len(index) == 0:
        raise ValueError(f"split {quote(split.name)}: no clip could be scored (all {len(skipped)} skipped)")
    records = [split.records[i] for i in index]
    bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
    if bad.size:
        raise ValueError(
            f"split {quote(split.name)}: the model scores {bad.size} of {len(records)} clip(s) NaN or infinite (first: "
            f"{records[bad[0]].uid}); its weights have diverged or are corrupt (train with a lower optim.lr or "
            f"clip_grad_norm)")
    targets = multi_hot(records, split.num_classes)
    names_ = list(metrics) if metrics else default_metric_names(
        split.multi_label, split.num_classes, segments=split.segments, data_format=data_format)
    per_class_ap = per_class_average_precision(scores, targets)
    values = compute_metrics(names_, scores, targets, segments=split.segments, per_class_ap=per_class_ap)
    return EvalResult(
        split=split.name, scores=scores, targets=targets, uids=[r.uid for r in records], indices=index,
        metrics={k: float(v) for k, v in values.items()}, chance=chance_levels(names_, targets),
        per_class_ap=per_class_ap, skipped=skipped, seconds=time.perf_counter() - start,
    )


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    data: DataConfig,
    split: str,
    *,
    view_changes: Mapping[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    device: str = "auto",
    precision: str = "fp32",
    progress: bool = True,
) -> EvalResult:
    """Load a checkpoint, evaluate one split of ``data`` and (with ``out_dir``) write the report folder.

    Clips are built with the checkpoint's recorded test view (``TestView``), with ``view_changes``
    (e.g. ``{"clips": 3, "crops": 3}``) applied. The report
    (``msqnet.engine.report.write_report``) gets the run's training history when the checkpoint
    sits in a run folder, chance levels, and ``scores.csv`` (``id,<class>,...``: ``msqnet score`` reads it).
    """
    ckpt = require_model_folder(checkpoint)
    dev = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    model = load_model(ckpt, device=dev)
    model.test_view = model.test_view.changed(view_changes)
    sampling, transform = view_configs(model)
    log.info("test view: %s", model.test_view.describe(model.cfg.num_frames, model.cfg.image_size))
    ds = load_split(data, split)
    result = evaluate_split(model, ds, sampling=sampling, transform=transform, metrics=metrics, batch_size=batch_size,
                            num_workers=num_workers, device=dev, precision=precision, on_error=data.on_error,
                            data_format=data.format, progress=progress)
    if out_dir is not None and is_main_process():
        run = RunDir.containing(ckpt)
        history = read_metrics_log(run.metrics_log) if run is not None else None
        write_report(
            out_dir, metrics=result.metrics, scores=result.scores, targets=result.targets,
            class_names=ds.class_names, history=history, split_name=split, segments=ds.segments,
            chance=result.chance, per_class_ap=result.per_class_ap,
            extra={"checkpoint": str(ckpt), "data": str(data.annotations), "format": data.format,
                   "num_clips": result.num_clips, "skipped": result.skipped, "seconds": result.seconds,
                   "test_clips": sampling.test_clips, "test_crops": sampling.test_crops,
                   "aggregate": sampling.aggregate},
        )
        write_wide_csv(Path(out_dir) / "scores.csv", result.uids, result.scores, ds.class_names)
    return result
