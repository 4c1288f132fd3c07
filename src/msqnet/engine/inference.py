"""Scoring with a model: probabilities of clips and of whole datasets, multi-view, gathered across processes.

Scores are probabilities: sigmoid for multi-label models, softmax for single-label ones. A clip
with several test views (``sampling.test_clips`` x ``sampling.test_crops``) gets each view's
probabilities combined by ``sampling.aggregate`` (mean or max). Under DDP every process scores a
shard (``ClipSampler``, which pads the last shard with repeated clips, as ``DistributedSampler``
does); the shards are gathered with each clip's record index, the padding duplicates are dropped by
index, and the rows are put back in annotation order, so the scores are exactly those of a
single-process run. Evaluation (``msqnet.engine.evaluate``), zero-shot evaluation and ``predict``
score through here.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.loader import ClipSampler, build_loader
from ..data.config import SamplingConfig, TransformConfig
from ..data.sampling import aggregate_views
from ..models.msqnet import FrozenFrames
from ..precision import autocast
from .distributed import all_gather_objects, rank_and_world_size

__all__ = [
    "to_probabilities",
    "score_clips",
    "score_clips_label_sets",
    "predict_dataset",
    "view_configs",
]


def to_probabilities(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Scores from logits: sigmoid for multi-label models, softmax over the classes for single-label ones."""
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
    probs = [to_probabilities(x, model.multi_label) for x in logits]
    return [aggregate_views(p.view(-1, views, p.shape[-1]), aggregate) for p in probs]  # (B, C_k) each


@torch.inference_mode()
def predict_dataset(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    label_sets: Sequence[torch.Tensor | None] = (None,),
    batch_size: int,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    aggregate: str = "mean",
    seed: int = 0,
    progress: bool = True,
    desc: str = "eval",
) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Probabilities of every clip of ``dataset`` (test mode) for each label set, gathered over processes.

    ``label_sets`` holds (C_k, E) label embeddings of other label sets than the training classes
    (open-vocabulary models), or ``None`` for the training classes; each clip is encoded once and
    decoded per set. Returns ``([scores (N, C_k) per set], record indices (N,), skipped uids)`` with
    rows sorted by record index and the sampler's padding duplicates removed.
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
    widths = [e.shape[0] if e is not None else len(model.class_names) for e in label_sets]
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


def view_configs(model, sampling: SamplingConfig | None = None,
                 transform: TransformConfig | None = None) -> tuple[SamplingConfig, TransformConfig]:
    """``(sampling, transform)`` of the model's test view (``model.test_view``) for its frame count and
    size, each unless given."""
    view = model.test_view
    return (sampling or view.sampling_config(model.cfg.num_frames),
            transform or view.transform_config(model.cfg.image_size))
