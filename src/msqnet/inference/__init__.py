"""Inference on users' videos: clips and timelines, archives, decisions, events, explanations, export, outputs.

- :mod:`msqnet.inference.predict`: :func:`predict`, per-label probabilities for videos, folders or clips.
- :mod:`msqnet.inference.whole_video` / :mod:`~msqnet.inference.decisions`: one clip or windows; yes/no per label.
- :mod:`msqnet.inference.archive`: a whole archive of videos into a resumable JSONL file.
- :mod:`msqnet.inference.events`: timelines as behaviour events (BORIS, ethograms).
- :mod:`msqnet.inference.explain` / :mod:`~msqnet.inference.overlay`: where and when the model looked.
- :mod:`msqnet.inference.export`: ONNX export and the ONNX Runtime model.
- :mod:`msqnet.inference.outputs`: predictions as tables, CSV and timeline plots (the CLI's and the page's).

Importing this package installs ``MSQNet.predict`` and ``MSQNet.explain`` (the network itself does not
import the layers above it).
"""
from __future__ import annotations

from typing import Sequence

from ..models.msqnet import MSQNet
from .explain import Explanation, explain
from .predict import Prediction, predict

__all__ = ["predict", "Prediction", "explain", "Explanation"]


def _predict(self: MSQNet, inputs, labels: Sequence[str] | None = None, **kwargs):
    """Per-label probabilities for videos, frame folders or clip tensors (see :func:`msqnet.predict`)."""
    return predict(self, inputs, labels, **kwargs)


def _explain(self: MSQNet, video, labels: Sequence[str] | None = None, **kwargs):
    """Where and when the model looked for each label (see :func:`msqnet.explain`)."""
    return explain(self, video, labels, **kwargs)


MSQNet.predict = _predict
MSQNet.explain = _explain
