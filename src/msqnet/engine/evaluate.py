"""Evaluation: score every clip of a split (multi-view), gather across processes, compute metrics once.

Scores are probabilities: sigmoid for multi-label models, softmax for single-label ones. A clip
with several test views (``sampling.test_clips`` x ``sampling.test_crops``) gets each view's
probabilities combined by ``sampling.aggregate`` (mean or max). Under DDP every process scores a
shard (``DistributedSampler``, which pads the last shard with repeated clips); the shards are
gathered with each clip's record index, the padding duplicates are dropped by index, and the rows
are put back in annotation order, so the metrics are exactly those of a single-process run.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.dataset import ClipDataset
from ..data.loader import ClipSampler, build_loader
from ..data.records import multi_hot
from ..data.sampling import SamplingConfig, aggregate_views
from ..data.transforms import TransformConfig
from ..data.views import TestView
from ..metrics import chance_levels, compute_metrics, default_metric_names, per_class_average_precision
from ..models.msqnet import FrozenFrames
from ..precision import autocast
from ..run_dir import RunDir
from .distributed import all_gather_objects, is_distributed, rank_and_world_size
from .metrics_log import read_metrics_log

__all__ = [
    "EvalResult",
    "autocast",
    "score_clips",
    "predict_dataset",
    "score_clips_label_sets",
    "predict_dataset_label_sets",
    "view_configs",
    "changed_view",
    "evaluate_split",
    "resolve_checkpoint",
    "read_eval_data_config",
    "evaluate_checkpoint",
    "write_scores_csv",
]

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


def _to_probabilities(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    logits = logits.float()
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


def score_clips(
    model: torch.nn.Module,
    clips: torch.Tensor | FrozenFrames,
    *,
    label_embed: torch.Tensor | None = None,
    aggregate: str = "mean",
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> torch.Tensor:
    """Probabilities ``(B, C)`` (float32, on ``device``) of a batch of clips ``(B, T, 3, S, S)`` or of
    multi-view clips ``(B, V, T, 3, S, S)``, whose V views' probabilities are combined by ``aggregate``.

    ``clips`` may also be the clips' cached frozen outputs (``FrozenFrames``, with or without the
    view axis). Sigmoid for multi-label models, softmax for single-label ones; ``label_embed``
    (C', E) scores another label set than the training classes.
    """
    return score_clips_label_sets(model, clips, [label_embed], aggregate=aggregate, device=device,
                                  precision=precision)[0]


@torch.inference_mode()
def score_clips_label_sets(
    model: torch.nn.Module,
    clips: torch.Tensor | FrozenFrames,
    label_sets: Sequence[torch.Tensor | None],
    *,
    aggregate: str = "mean",
    device: torch.device | str = "cpu",
    precision: str = "fp32",
) -> list[torch.Tensor]:
    """:func:`score_clips` for several label sets ((C_k, E) embeddings, or ``None`` for the training
    classes): the clips are encoded once and decoded per set, giving ``(B, C_k)`` per set."""
    device = torch.device(device)
    video, frozen = (None, clips.to(device)) if isinstance(clips, FrozenFrames) else (clips.to(device), None)
    views = 1
    # Stacked test views go through the model as clips of their own: (B, V, T, ...) -> (B*V, T, ...).
    if frozen is not None and frozen.num_views:
        views, frozen = frozen.num_views, frozen.flatten_views()
    elif video is not None and video.ndim == 6:
        views, video = video.shape[1], video.flatten(0, 1)
    with autocast(device, precision):
        # One label set from a clip: the public forward, which any model (ONNX Runtime's too) has.
        if len(label_sets) == 1 and frozen is None:
            logits = [model(video, label_embed=label_sets[0]).logits]  # (B*V, C)
        else:
            encoded = model.encode(video, frozen=frozen)
            logits = [model.decode(encoded, label_embed=e).logits for e in label_sets]  # (B*V, C_k) each
    multi_label = bool(getattr(model, "multi_label", True))
    probs = [_to_probabilities(x, multi_label) for x in logits]
    return [aggregate_views(p.view(-1, views, p.shape[-1]), aggregate) for p in probs]  # (B, C_k) each


def predict_dataset(
    model: torch.nn.Module,
    dataset: ClipDataset,
    *,
    batch_size: int,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    aggregate: str = "mean",
    seed: int = 0,
    progress: bool = True,
    desc: str = "eval",
    label_embed: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Probabilities of every clip of ``dataset`` (test mode), gathered over processes.

    Returns ``(scores (N, C), record indices (N,), skipped uids)`` with rows sorted by record
    index and DistributedSampler's padding duplicates removed. ``label_embed`` (C', E) scores
    another label set than the model's training classes (open-vocabulary models).
    """
    scores, index, skipped = predict_dataset_label_sets(
        model, dataset, [label_embed], batch_size=batch_size, num_workers=num_workers, device=device,
        precision=precision, aggregate=aggregate, seed=seed, progress=progress, desc=desc)
    return scores[0], index, skipped


@torch.inference_mode()
def predict_dataset_label_sets(
    model: torch.nn.Module,
    dataset: ClipDataset,
    label_sets: Sequence[torch.Tensor | None],
    *,
    batch_size: int,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    aggregate: str = "mean",
    seed: int = 0,
    progress: bool = True,
    desc: str = "eval",
) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """:func:`predict_dataset` for several label sets at once: each clip is encoded once and decoded per set.

    ``label_sets`` holds (C_k, E) label embeddings, or ``None`` for the training classes. Returns
    ``([scores (N, C_k) per set], record indices (N,), skipped uids)``.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    rank, world_size = rank_and_world_size()
    loader = build_loader(dataset, batch_size=batch_size, num_workers=num_workers,
                          sampler=ClipSampler(len(dataset), seed=seed, shuffle=False, rank=rank, world_size=world_size))
    rows: list[list[np.ndarray]] = [[] for _ in label_sets]
    indices: list[np.ndarray] = []
    skipped: list[str] = []
    show = progress and rank == 0
    try:
        for batch in tqdm(loader, desc=desc, disable=not show, leave=False, dynamic_ncols=True):
            skipped += batch["skipped"]
            if not batch["uid"]:
                continue
            clips = batch["frozen"] if "frozen" in batch else batch["video"]  # cached frozen outputs, or decoded clips
            sets = score_clips_label_sets(model, clips, label_sets, aggregate=aggregate, device=device,
                                          precision=precision)  # (B, C_k) each
            for out, probs in zip(rows, sets):
                out.append(probs.cpu().numpy().astype(np.float64))
            indices.append(batch["index"].numpy())
    finally:
        model.train(was_training)
    widths = [e.shape[0] if e is not None else len(getattr(model, "class_names", [])) for e in label_sets]
    local = (
        [np.concatenate(r) if r else np.zeros((0, w)) for r, w in zip(rows, widths)],
        np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
        skipped,
    )
    parts = all_gather_objects(local)
    index = np.concatenate([p[1] for p in parts])
    # Drop DistributedSampler's padding (a clip scored twice) and restore annotation order.
    index, first = np.unique(index, return_index=True)
    scores = [np.concatenate([p[0][k] for p in parts])[first] for k in range(len(label_sets))]
    all_skipped = sorted({u for p in parts for u in p[2]})
    return scores, index, all_skipped


def evaluate_split(
    model: torch.nn.Module,
    split: Any,
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
    dataset: Any = None,
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
    names = list(getattr(model, "class_names", split.class_names))
    if names != list(split.class_names):
        diff = next((i for i, (a, b) in enumerate(zip(names, split.class_names)) if a != b), min(len(names), len(split.class_names)))
        raise ValueError(
            f"split {split.name!r}: its {len(split.class_names)} classes differ from the model's {len(names)} "
            f"(first difference at class id {diff}); evaluate on data with the training label set"
        )
    if not split.records:
        raise ValueError(f"split {split.name!r} has no clips to evaluate")
    sampling, transform = view_configs(model, sampling, transform)
    if dataset is None:
        dataset = ClipDataset(split.records, split.num_classes, sampling=sampling, transform=transform, train=False,
                              multi_label=True, on_error=on_error, seed=seed)
    scores, index, skipped = predict_dataset(
        model, dataset, batch_size=batch_size, num_workers=num_workers, device=device, precision=precision,
        aggregate=sampling.aggregate, seed=seed, progress=progress, desc=f"eval {split.name}",
    )
    if skipped:
        log.warning("split %s: %d clip(s) could not be read and are left out of the metrics: %s",
                    split.name, len(skipped), ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    if len(index) == 0:
        raise ValueError(f"split {split.name!r}: no clip could be scored (all {len(skipped)} skipped)")
    records = [split.records[i] for i in index]
    bad = np.flatnonzero(~np.isfinite(scores).all(axis=1))
    if bad.size:
        raise ValueError(
            f"split {split.name!r}: the model scores {bad.size} of {len(records)} clip(s) NaN or infinite (first: "
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


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A model folder from a model folder, a training state, or a run folder (its ``best``, else ``last``)."""
    from ..checkpoint import CONFIG_NAME, model_folder_of

    path = model_folder_of(path)
    if (path / CONFIG_NAME).is_file():
        return path
    raise FileNotFoundError(f"{path}: not a model folder (config.json + model.safetensors) nor a run folder "
                            f"with best/ or checkpoints/last/")


def read_eval_data_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> tuple[Any, Any | None]:
    """``(DataConfig, TrainConfig or None)`` from a data config file or a whole training config file."""
    from ..config import ConfigError, apply_overrides, from_dict, read_config_file
    from ..data.config import DataConfig
    from .config import TrainConfig

    data = apply_overrides(read_config_file(path), list(overrides))
    try:
        if "data" in data:
            train_cfg = from_dict(TrainConfig, data)
            return train_cfg.data, train_cfg
        return from_dict(DataConfig, data), None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    data: Any,
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
    from ..checkpoint import load_model
    from ..data.datasets import load_split
    from .distributed import resolve_device

    ckpt = resolve_checkpoint(checkpoint)
    dev = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    model = load_model(ckpt, device=dev)
    model.test_view = changed_view(model.test_view, view_changes)
    sampling, transform = view_configs(model)
    log.info("test view: %s", model.test_view.describe(model.cfg.num_frames, model.cfg.image_size))
    ds = load_split(data, split)
    result = evaluate_split(model, ds, sampling=sampling, transform=transform, metrics=metrics, batch_size=batch_size,
                            num_workers=num_workers, device=dev, precision=precision, on_error=data.on_error,
                            data_format=data.format, progress=progress)
    main = not is_distributed() or torch.distributed.get_rank() == 0
    if out_dir is not None and main:
        from .report import write_report

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
        write_scores_csv(Path(out_dir) / "scores.csv", result.uids, result.scores, ds.class_names)
    return result


def view_configs(model, sampling: SamplingConfig | None = None,
                 transform: TransformConfig | None = None) -> tuple[SamplingConfig, TransformConfig]:
    """``(sampling, transform)`` of the model's test view (``model.test_view``) for its frame count and
    size, each unless given."""
    view = model.test_view
    return (sampling or view.sampling_config(model.cfg.num_frames),
            transform or view.transform_config(model.cfg.image_size))


def changed_view(view: TestView, changes: Mapping[str, Any] | None) -> TestView:
    """A copy of ``view`` with the given fields changed (``None`` values are left out: unset CLI flags)."""
    changes = {k: v for k, v in (changes or {}).items() if v is not None}
    return replace(view, **changes) if changes else view


def write_scores_csv(path: str | os.PathLike, ids: Sequence[str], scores: np.ndarray, class_names: Sequence[str]) -> None:
    """Write ``(N, C)`` scores as a wide CSV ``id,<class>,...`` (``msqnet score`` reads it), atomically."""
    from ..utils import atomic_write_text

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", *class_names])
    for uid, row in zip(ids, scores):
        writer.writerow([uid, *(repr(float(v)) for v in row)])
    atomic_write_text(path, buf.getvalue())
