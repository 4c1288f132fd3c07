"""The metrics registry: every metric by name, the keys it produces, how to compute them and their chance levels.

``compute_metrics(names, scores, targets)`` is the one entry point of evaluation, the trainer and
``msqnet score``; ``metric_keys`` says which keys a list of names produces without computing anything
(the trainer checks its best-checkpoint key at start), and ``chance_levels`` gives the expected value
of each key for random scores (``msqnet.metrics.chance``), where it has a closed form.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..utils import quote
from .average_precision import (
    map_of_per_class_ap,
    per_class_average_precision,
    reference_batch_micro_ap,
    segment_map,
)
from .chance import chance_map, chance_topk
from .charades import charades_map
from .classification import example_based, micro_macro_f1, topk_accuracy

__all__ = [
    "Metric",
    "MetricInputs",
    "METRICS",
    "get_metric",
    "parse_metric_names",
    "metric_keys",
    "compute_metrics",
    "chance_levels",
    "default_metric_names",
    "metric_title",
    "metric_descriptions",
    "single_labels",
]

Segments = Mapping[str, Sequence[int]]


@dataclass
class MetricInputs:
    """What a metric is computed from: the whole split's scores and targets, and the per-class AP
    computed once for every metric that needs it.

    Args:
        scores: ``(N, C)`` scores.
        targets: ``(N, C)`` {0,1}; for ``top<k>`` alone also ``(N,)`` class ids.
        threshold: decision threshold of ``f1`` (``score > threshold``).
        batch_size: the reference's test batch size, for ``reference_micro_ap``.
        segments: segment name -> class ids, for ``ak_segments``.
        per_class_ap: ``(C,)`` AP of every class (NaN without positives), when already computed.
    """

    scores: np.ndarray
    targets: np.ndarray
    threshold: float = 0.5
    batch_size: int | None = None
    segments: Segments | None = None
    per_class_ap: np.ndarray | None = field(default=None, repr=False)

    def class_ap(self) -> np.ndarray:
        """The per-class AP, computed on first use and kept."""
        if self.per_class_ap is None:
            self.per_class_ap = per_class_average_precision(self.scores, self.targets)
        return self.per_class_ap


@dataclass(frozen=True)
class Metric:
    """One named metric.

    Args:
        name: its name in configs and on the command line (``map``, ``top5``, ...).
        description: one line for ``msqnet score --help``.
        keys: the result keys it produces, given the split's class segments.
        compute: the values of those keys.
        chance: the chance level of the keys that have a closed form, from ``(N, C)`` targets.
        titles: key -> a readable title (model cards); keys without one show as they are.
    """

    name: str
    description: str
    keys: Callable[[Segments | None], tuple[str, ...]]
    compute: Callable[[MetricInputs], dict[str, float]]
    chance: Callable[[np.ndarray], dict[str, float]] = lambda targets: {}
    titles: Mapping[str, str] = field(default_factory=dict)


_SEGMENTS_NEEDED = "metric 'ak_segments' needs segments (segment name -> class ids)"


def _needs(value, message: str):
    """``value``, or a ValueError saying what the metric needs."""
    if value is None:
        raise ValueError(message)
    return value


def _map(x: MetricInputs) -> dict[str, float]:
    return {"map": map_of_per_class_ap(x.class_ap(), num_rows=x.targets.shape[0])}


def _segments(x: MetricInputs) -> dict[str, float]:
    segments = _needs(x.segments, _SEGMENTS_NEEDED)
    return {f"map_{k}": v for k, v in segment_map(x.class_ap(), segments).items()}


def _charades(x: MetricInputs) -> dict[str, float]:
    result = charades_map(x.scores, x.targets)
    return {"charades_map": result.map, "charades_wap": result.wap}


def _f1(x: MetricInputs) -> dict[str, float]:
    eb = example_based(x.scores, x.targets, x.threshold)
    return {"f1": eb["f1"], **{f"example_{k}": eb[k] for k in ("precision", "recall", "accuracy")},
            "subset_accuracy": eb["subset_accuracy"], **micro_macro_f1(x.scores, x.targets, x.threshold)}


def _reference_ap(x: MetricInputs) -> dict[str, float]:
    batch = _needs(x.batch_size, "metric 'reference_micro_ap' needs batch_size (the reference's test batch size)")
    return {"reference_micro_ap": reference_batch_micro_ap(x.scores, x.targets, batch)}


def _chance_of(key: str) -> Callable[[np.ndarray], dict[str, float]]:
    """Chance of a mAP-valued key: the expected mAP of random scores (left out without positives)."""
    def chance(targets: np.ndarray) -> dict[str, float]:
        value = chance_map(targets)
        return {} if value is None else {key: value}

    return chance


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("map", "map: macro mAP, classes without positives dropped (PySlowFast / Animal Kingdom)",
           keys=lambda segments: ("map",), compute=_map, chance=_chance_of("map"), titles={"map": "macro mAP"}),
    Metric("charades_map", "charades_map, charades_wap: the official Charades_v1_classify.m mAP and weighted AP",
           keys=lambda segments: ("charades_map", "charades_wap"), compute=_charades, chance=_chance_of("charades_map"),
           titles={"charades_map": "Charades mAP (official)", "charades_wap": "Charades WAP (official)"}),
    Metric("f1", "f1, example_precision, example_recall, example_accuracy, subset_accuracy, micro_f1, macro_f1 "
                 "at --threshold",
           keys=lambda segments: ("f1", "example_precision", "example_recall", "example_accuracy", "subset_accuracy",
                                  "micro_f1", "macro_f1"), compute=_f1),
    Metric("reference_micro_ap", "reference_micro_ap: the MSQNet reference's batch-averaged micro AP (needs batch_size)",
           keys=lambda segments: ("reference_micro_ap",), compute=_reference_ap),
    Metric("ak_segments", "map_<segment>: mAP within each segment, e.g. map_head/map_middle/map_tail (needs segments)",
           keys=lambda segments: tuple(f"map_{k}" for k in _needs(segments, _SEGMENTS_NEEDED)), compute=_segments),
)}
_TOPK = re.compile(r"top([1-9][0-9]*)")
_TOPK_HELP = "top<k>: top-k accuracy, e.g. top1, top5 (single-label data)"


def _topk(k: int) -> Metric:
    """The ``top<k>`` metric (a family: any k)."""
    key = f"top{k}"

    def compute(x: MetricInputs) -> dict[str, float]:
        return topk_accuracy(x.scores, single_labels(x.targets), ks=(k,))

    return Metric(key, _TOPK_HELP, keys=lambda segments: (key,), compute=compute,
                  chance=lambda targets: {key: chance_topk(k, targets.shape[1])}, titles={key: f"top-{k} accuracy"})


def get_metric(name: str) -> Metric:
    """The metric called ``name`` (``map``, ``top5``, ...)."""
    if name in METRICS:
        return METRICS[name]
    match = _TOPK.fullmatch(name)
    if match:
        return _topk(int(match.group(1)))
    raise ValueError(f"unknown metric {quote(name)}; expected one of {', '.join(METRICS)} or top<k>")


def metric_descriptions() -> dict[str, str]:
    """Name -> one-line description of every metric (``top<k>`` as one family)."""
    return {**{name: m.description for name, m in METRICS.items()}, "top<k>": _TOPK_HELP}


def parse_metric_names(names: str | Sequence[str]) -> list[str]:
    """Split ``"map,top1"`` or ``["map", "top1"]`` into validated names, in order, without duplicates."""
    items = [names] if isinstance(names, str) else list(names)
    out: list[str] = []
    for item in items:
        for given in (n.strip() for n in item.split(",")):
            name = given.lower()
            if not name:
                continue
            try:
                get_metric(name)
            except ValueError:
                raise ValueError(f"unknown metric {quote(given)}; expected one of {', '.join(METRICS)} or top<k>") from None
            if name not in out:
                out.append(name)
    if not out:
        raise ValueError("no metric name given")
    return out


def metric_keys(names: str | Sequence[str], segments: Segments | None = None) -> list[str]:
    """The result keys ``compute_metrics(names, ...)`` produces for a split with ``segments``."""
    return [key for name in parse_metric_names(names) for key in get_metric(name).keys(segments)]


def metric_title(key: str) -> str:
    """A readable title of a result key (``map`` -> ``macro mAP``); the key itself when it has none."""
    for metric in METRICS.values():
        if key in metric.titles:
            return metric.titles[key]
    match = re.fullmatch(r"map_(.+)", key)
    if match:
        return f"mAP, {match.group(1)} classes"
    match = _TOPK.fullmatch(key)
    return f"top-{match.group(1)} accuracy" if match else key


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
    segments: Segments | None = None,
    per_class_ap: np.ndarray | None = None,
) -> dict[str, float]:
    """Compute the named metrics over a whole evaluation set.

    Args:
        names: metric names, a list or a comma-separated string.
        scores: ``(N, C)`` scores.
        targets: ``(N, C)`` {0,1}; for ``top<k>`` alone also ``(N,)`` class ids.
        threshold: decision threshold of ``f1`` (``score > threshold``).
        batch_size: the reference's test batch size, for ``reference_micro_ap``.
        segments: segment name -> class ids, for ``ak_segments``.
        per_class_ap: ``(C,)`` per-class AP already computed from these scores (it is computed
            once otherwise, for every AP-based metric).

    Returns:
        flat ``{key: value}`` (see ``metric_keys``); values are fractions in [0, 1].
    """
    inputs = MetricInputs(scores, targets, threshold=threshold, batch_size=batch_size, segments=segments,
                          per_class_ap=per_class_ap)
    out: dict[str, float] = {}
    for name in parse_metric_names(names):
        out.update(get_metric(name).compute(inputs))
    return out


def chance_levels(names: str | Sequence[str], targets: np.ndarray) -> dict[str, float]:
    """The expected value for random scores of every key of ``names`` that has a closed form
    (mAP-valued keys: the exact expected mAP; ``top<k>``: ``k / C``), from ``(N, C)`` targets."""
    t = np.asarray(targets)
    out: dict[str, float] = {}
    for name in parse_metric_names(names):
        out.update(get_metric(name).chance(t))
    return out


def default_metric_names(multi_label: bool, num_classes: int, *, segments: Segments | None = None,
                         data_format: str | None = None) -> list[str]:
    """The metrics a split is reported with when the config names none.

    Multi-label: macro ``map`` (+ ``ak_segments`` where the dataset defines segments, +
    ``charades_map`` for Charades). Single-label: ``top1`` (+ ``top5`` with 5 or more classes).
    """
    if not multi_label:
        return ["top1"] + (["top5"] if num_classes >= 5 else [])
    names = ["map"]
    if segments:
        names.append("ak_segments")
    if data_format == "charades":
        names.append("charades_map")
    return names
