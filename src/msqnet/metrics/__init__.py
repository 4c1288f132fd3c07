"""Evaluation metrics, computed once over a whole evaluation set (numpy in, floats out).

- :func:`mean_average_precision`: macro mAP as PySlowFast / Animal Kingdom (sklearn AP per class).
- :func:`segment_map`: Animal Kingdom head / middle / tail means.
- :func:`charades_map`: the official ``Charades_v1_classify.m`` mAP and WAP.
- :func:`topk_accuracy`, :func:`example_based`, :func:`micro_macro_f1`.
- :func:`reference_batch_micro_ap`: the MSQNet reference's non-standard batch-averaged micro AP.
- :func:`compute_metrics`: any of the above by name.
"""
from .average_precision import (
    MAPResult,
    binary_average_precision,
    mean_average_precision,
    reference_batch_micro_ap,
    segment_map,
)
from .charades import CharadesMAPResult, charades_map
from .classification import example_based, micro_macro_f1, topk_accuracy
from .compute import METRIC_NAMES, compute_metrics, parse_metric_names

__all__ = [
    "MAPResult",
    "CharadesMAPResult",
    "METRIC_NAMES",
    "binary_average_precision",
    "mean_average_precision",
    "segment_map",
    "charades_map",
    "topk_accuracy",
    "example_based",
    "micro_macro_f1",
    "reference_batch_micro_ap",
    "compute_metrics",
    "parse_metric_names",
]
