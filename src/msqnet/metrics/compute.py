"""``compute_metrics``: metrics by name, the one entry point of the engine and ``msqnet score``."""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

from .average_precision import mean_average_precision, reference_batch_micro_ap, segment_map
from .charades import charades_map
from .classification import example_based, micro_macro_f1, topk_accuracy

__all__ = ["METRIC_NAMES", "compute_metrics", "parse_metric_names", "single_labels"]

# name -> the keys it produces (documented here so a reader finds every output key in one place)
METRIC_NAMES: dict[str, str] = {
    "map": "map: macro mAP, classes without positives dropped (PySlowFast / Animal Kingdom)",
    "charades_map": "charades_map, charades_wap: the official Charades_v1_classify.m mAP and weighted AP",
    "top1": "top1: top-1 accuracy (any 'top<k>' works, e.g. top5)",
    "top5": "top5: top-5 accuracy",
    "f1": "f1, example_precision, example_recall, example_accuracy, subset_accuracy, micro_f1, macro_f1 at --threshold",
    "reference_micro_ap": "reference_micro_ap: the MSQNet reference's batch-averaged micro AP (needs batch_size)",
    "ak_segments": "map_<segment>: mAP within each segment, e.g. map_head/map_middle/map_tail (needs segments)",
}

_TOPK = re.compile(r"top([1-9][0-9]*)")


def parse_metric_names(names: str | Sequence[str]) -> list[str]:
    """Split ``"map,top1"`` or ``["map", "top1"]`` into validated names, in order, without duplicates."""
    items = [names] if isinstance(names, str) else list(names)
    out: list[str] = []
    for item in items:
        for given in (n.strip() for n in item.split(",")):
            name = given.lower()
            if not name:
                continue
            if name not in METRIC_NAMES and not _TOPK.fullmatch(name):
                raise ValueError(f"unknown metric {given!r}; expected one of {', '.join(METRIC_NAMES)} or top<k>")
            if name not in out:
                out.append(name)
    if not out:
        raise ValueError("no metric name given")
    return out


def single_labels(targets: np.ndarray) -> np.ndarray:
    """``(N,)`` class ids from ``(N,)`` ids or an ``(N, C)`` one-hot matrix with exactly one 1 per row."""
    t = np.asarray(targets)
    if t.ndim == 1:
        return t
    if t.ndim != 2:
        raise ValueError(f"targets: expected (N,) class ids or (N, C) one-hot, got shape {t.shape}")
    per_row = (t != 0).sum(axis=1)
    bad = np.flatnonzero(per_row != 1)
    if bad.size:
        raise ValueError(
            f"top-k accuracy needs exactly one label per row; row {bad[0]} has {per_row[bad[0]]} "
            f"({bad.size} such row(s))"
        )
    return np.argmax(t != 0, axis=1)


def compute_metrics(
    names: str | Sequence[str],
    scores: np.ndarray,
    targets: np.ndarray,
    *,
    threshold: float = 0.5,
    batch_size: int | None = None,
    segments: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, float]:
    """Compute the named metrics over a whole evaluation set; see ``METRIC_NAMES`` for names and keys.

    Args:
        names: metric names, a list or a comma-separated string.
        scores: ``(N, C)`` scores.
        targets: ``(N, C)`` {0,1}; for ``top<k>`` alone also ``(N,)`` class ids.
        threshold: decision threshold of ``f1`` (``score > threshold``).
        batch_size: the reference's test batch size, for ``reference_micro_ap``.
        segments: segment name -> class ids, for ``ak_segments``.

    Returns:
        flat ``{key: value}``; values are fractions in [0, 1].
    """
    out: dict[str, float] = {}
    map_result = None
    for name in parse_metric_names(names):
        if name in ("map", "ak_segments") and map_result is None:
            map_result = mean_average_precision(scores, targets)
        if name == "map":
            out["map"] = map_result.map
        elif name == "ak_segments":
            if segments is None:
                raise ValueError("metric 'ak_segments' needs segments (segment name -> class ids)")
            out.update({f"map_{k}": v for k, v in segment_map(map_result.per_class_ap, segments).items()})
        elif name == "charades_map":
            result = charades_map(scores, targets)
            out.update(charades_map=result.map, charades_wap=result.wap)
        elif name == "f1":
            eb = example_based(scores, targets, threshold)
            out["f1"] = eb["f1"]
            out.update({f"example_{k}": eb[k] for k in ("precision", "recall", "accuracy")})
            out["subset_accuracy"] = eb["subset_accuracy"]
            out.update(micro_macro_f1(scores, targets, threshold))
        elif name == "reference_micro_ap":
            if batch_size is None:
                raise ValueError("metric 'reference_micro_ap' needs batch_size (the reference's test batch size)")
            out["reference_micro_ap"] = reference_batch_micro_ap(scores, targets, batch_size)
        else:  # top<k>, validated by parse_metric_names
            k = int(name[3:])
            out.update(topk_accuracy(scores, single_labels(targets), ks=(k,)))
    return out
