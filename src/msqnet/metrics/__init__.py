"""Evaluation metrics, computed once over a whole evaluation set (numpy in, floats out).

- :func:`mean_average_precision`: macro mAP as PySlowFast / Animal Kingdom (sklearn AP per class).
- :func:`segment_map`: Animal Kingdom head / middle / tail means.
- :func:`charades_map`: the official ``Charades_v1_classify.m`` mAP and WAP.
- :func:`topk_accuracy`, :func:`example_based`, :func:`micro_macro_f1`.
- :func:`reference_batch_micro_ap`: the MSQNet reference's non-standard batch-averaged micro AP.
- :mod:`msqnet.metrics.registry`: every metric by name (:func:`compute_metrics`), the keys it
  produces (:func:`metric_keys`) and their chance levels (:func:`chance_levels`, from
  :mod:`msqnet.metrics.chance`).
"""
from .average_precision import (
    MAPResult,
    binary_average_precision,
    map_of_per_class_ap,
    mean_average_precision,
    per_class_average_precision,
    reference_batch_micro_ap,
    segment_map,
)
from .chance import chance_map, chance_topk, expected_random_ap
from .charades import CharadesMAPResult, charades_map
from .classification import example_based, micro_macro_f1, topk_accuracy
from .registry import (
    METRICS,
    Metric,
    chance_levels,
    compute_metrics,
    default_metric_names,
    get_metric,
    metric_descriptions,
    metric_keys,
    metric_title,
    parse_metric_names,
)

__all__ = [
    "MAPResult",
    "CharadesMAPResult",
    "METRICS",
    "Metric",
    "binary_average_precision",
    "per_class_average_precision",
    "map_of_per_class_ap",
    "mean_average_precision",
    "segment_map",
    "charades_map",
    "topk_accuracy",
    "example_based",
    "micro_macro_f1",
    "reference_batch_micro_ap",
    "expected_random_ap",
    "chance_map",
    "chance_topk",
    "compute_metrics",
    "chance_levels",
    "default_metric_names",
    "get_metric",
    "metric_descriptions",
    "metric_keys",
    "metric_title",
    "parse_metric_names",
]
