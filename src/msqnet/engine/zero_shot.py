"""Zero-shot evaluation: mAP on the seen classes, on the unseen ones (from their names alone), and both.

Both are reported with their harmonic mean.

Two protocols:

- ``zsl`` (default): the model is queried with the seen class names and, separately, with the unseen
  class names; each set is ranked among itself. This is the usual zero-shot number.
- ``gzsl`` (generalised): one query set with every class; seen and unseen classes compete in the same
  decoder (MSQNet's class queries attend to each other, so this is a different experiment).

A closed-set model (group-wise linear head) cannot be queried with new names; it is scored with its own
training classes, which must then include the unseen ones (trained as always-absent): the baseline an
open-vocabulary head has to beat.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ..data.dataset import ClipDataset
from ..data.records import multi_hot
from ..data.config import SamplingConfig, TransformConfig
from ..metrics import chance_map, mean_average_precision
from ..data.class_splits import ZeroShotSplit, harmonic_mean
from ..utils import quote
from .inference import predict_dataset, view_configs

__all__ = ["Protocol", "ZeroShotResult", "evaluate_zero_shot"]

# ``zsl``: seen and unseen classes queried and ranked apart; ``gzsl``: all classes queried together.
Protocol = Literal["zsl", "gzsl"]


@dataclass
class ZeroShotResult:
    """Seen / unseen / harmonic-mean mAP of one split, with chance levels."""

    split: str
    protocol: str
    num_clips: int
    map_seen: float
    map_unseen: float
    harmonic: float
    chance_seen: float | None
    chance_unseen: float | None
    per_class_ap: dict[str, float] = field(default_factory=dict)
    closed_set: bool = False
    scores: np.ndarray | None = field(default=None, repr=False)  # (N, C) probabilities, all classes

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (without the score matrix)."""
        return {k: v for k, v in self.__dict__.items() if k != "scores"}


def _map(scores: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """mAP over classes with positives, and per-class AP (NaN where a class has no positives)."""
    if not targets.any():
        return float("nan"), np.full(targets.shape[1], np.nan)
    result = mean_average_precision(scores, targets)
    return float(result.map), result.per_class_ap


def evaluate_zero_shot(
    model,
    split,
    zs: ZeroShotSplit,
    *,
    sampling: SamplingConfig | None = None,
    transform: TransformConfig | None = None,
    protocol: Protocol = "zsl",
    batch_size: int = 8,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    seed: int = 0,
    progress: bool = True,
    dataset: Any = None,
) -> ZeroShotResult:
    """Score ``split`` (with every class, seen and unseen) for the zero-shot split ``zs``.

    ``sampling`` / ``transform`` default to the model's recorded test view (``model.test_view``).
    ``dataset``: the split's clips as a ready dataset (e.g. ``CachedClipDataset`` of cached frozen
    outputs of that view); ``None`` = decode them.
    """
    if protocol not in typing.get_args(Protocol):
        raise ValueError(f"protocol: expected one of {list(typing.get_args(Protocol))}, got {quote(protocol)}")
    sampling, transform = view_configs(model, sampling, transform)
    names = list(split.class_names)
    seen_names, unseen_names = zs.names(names)
    if dataset is None:
        dataset = ClipDataset(split.records, split.num_classes, sampling=sampling, transform=transform, train=False,
                              multi_label=True, seed=seed)
    run = dict(batch_size=batch_size, num_workers=num_workers, device=device, precision=precision,
               aggregate=sampling.aggregate, seed=seed, progress=progress)
    closed = model.cfg.head == "group_linear"
    scores = np.zeros((len(split.records), len(names)))
    if closed:
        if list(model.class_names) != names:
            raise ValueError(
                f"a closed-set model (head: group_linear) scores only its {len(model.class_names)} training classes; "
                f"zero-shot evaluation on {len(names)} classes needs head: text (or a closed-set model trained on "
                "all of them as the baseline)")
        [part], index, _ = predict_dataset(model, dataset, desc=f"{split.name} (closed set)", **run)
        scores[index] = part
    else:
        groups = [zs.seen, zs.unseen] if protocol == "zsl" else [tuple(range(len(names)))]
        label_sets = [model.embed_labels([names[i] for i in group]).to(device) for group in groups]
        # Each clip is encoded once; only the decoder runs once per label set.
        parts, index, _ = predict_dataset(model, dataset, label_sets=label_sets,
                                          desc=f"{split.name} ({len(groups)} label sets)", **run)
        for group, part in zip(groups, parts):
            scores[np.ix_(index, list(group))] = part
    targets = multi_hot(split.records, len(names))
    seen_cols, unseen_cols = list(zs.seen), list(zs.unseen)
    map_seen, ap_seen = _map(scores[:, seen_cols], targets[:, seen_cols])
    map_unseen, ap_unseen = _map(scores[:, unseen_cols], targets[:, unseen_cols])
    per_class = {**dict(zip(seen_names, ap_seen.tolist())), **dict(zip(unseen_names, ap_unseen.tolist()))}
    return ZeroShotResult(
        split=split.name, protocol=protocol, num_clips=len(split.records), map_seen=map_seen, map_unseen=map_unseen,
        harmonic=harmonic_mean(map_seen, map_unseen),
        chance_seen=chance_map(targets[:, seen_cols]), chance_unseen=chance_map(targets[:, unseen_cols]),
        per_class_ap=per_class, closed_set=closed, scores=scores,
    )
