"""Run a trained model on videos: per-label probabilities, optionally per sliding window (a timeline).

``predict(model, "clip.mp4", labels=["walking", "eating"])`` scores a video file, a folder of frames
or a clip tensor for any label set the model can score (its training classes, or any class names
with the open-vocabulary ``head: text``).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .data.decode import DecodeError, probe, read_frames
from .data.sampling import sliding_windows, tsn_indices
from .data.transforms import center_crop
from .precision import autocast, resolve_precision

__all__ = ["WindowScores", "Prediction", "predict", "prepare_clip"]

log = logging.getLogger(__name__)


@dataclass
class WindowScores:
    """Scores of one temporal window: ``start``/``end`` in seconds, ``probabilities`` (C,)."""

    start: float
    end: float
    probabilities: np.ndarray


@dataclass
class Prediction:
    """Per-label probabilities of one input (whole video; plus per-window scores with windows).

    With windows, ``probabilities`` is the per-label maximum over windows (an action that happens
    anywhere in the video is in the video).
    """

    source: str
    labels: list[str]
    probabilities: np.ndarray | None
    windows: list[WindowScores] = field(default_factory=list)
    error: str | None = None

    def top(self, k: int = 5, threshold: float | None = None) -> list[tuple[str, float]]:
        """The ``k`` most probable labels (only those at or above ``threshold`` when given)."""
        if self.probabilities is None:
            return []
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        pairs = [(self.labels[i], float(self.probabilities[i])) for i in order]
        return [p for p in pairs if threshold is None or p[1] >= threshold]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view: source, error, label -> probability, and windows."""
        probs = None if self.probabilities is None else {l: float(p) for l, p in zip(self.labels, self.probabilities)}
        return {
            "source": self.source,
            "error": self.error,
            "probabilities": probs,
            "windows": [
                {"start": w.start, "end": w.end, "probabilities": {l: float(p) for l, p in zip(self.labels, w.probabilities)}}
                for w in self.windows
            ],
        }


def _short_side(image_size: int) -> int:
    return round(image_size * 8 / 7)


def prepare_clip(source: str | os.PathLike, indices: Sequence[int], image_size: int) -> torch.Tensor:
    """Decode ``indices`` of a video or frame folder as the test view: uint8 (T, 3, S, S)."""
    frames = read_frames(source, indices, size=_short_side(image_size))  # (T, 3, h, w), short side resized
    return center_crop(frames, image_size)


def _clips_for(source: str, model, window: float | None, stride: float | None) -> list[tuple[float, float, torch.Tensor]]:
    """The test clips of one input: one over the whole video, or one per sliding window."""
    T, size = model.cfg.num_frames, model.cfg.image_size
    info = probe(source)
    if info.num_frames < 1:
        raise DecodeError(f"{source}: no decodable frames")
    if window is None:
        idx = tsn_indices(info.num_frames, T, train=False)
        return [(0.0, info.duration, prepare_clip(source, idx, size))]
    wins = sliding_windows(info.num_frames, info.fps, window, stride or window, T)
    return [(w.start_s, w.end_s, prepare_clip(source, w.indices, size)) for w in wins]


def _probabilities(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


def _device_and_precision(model, precision: str) -> tuple[torch.device, str]:
    """Where ``model`` runs and what ``precision`` means there (an ONNX Runtime graph runs in fp32)."""
    if isinstance(model, torch.nn.Module):
        device = next(model.parameters()).device
        return device, resolve_precision(precision, device)
    resolve_precision(precision, model.device)  # rejects unknown names
    if precision == "bf16":
        raise ValueError("the onnxruntime backend runs the exported fp32 graph: use precision auto or fp32")
    return model.device, "fp32"


@torch.inference_mode()
def predict(
    model,
    inputs: str | os.PathLike | torch.Tensor | Iterable[str | os.PathLike],
    labels: Sequence[str] | None = None,
    *,
    window: float | None = None,
    stride: float | None = None,
    batch_size: int = 8,
    progress: bool = False,
    precision: str = "auto",
) -> Prediction | list[Prediction]:
    """Score videos (paths or frame folders) or a clip tensor (T, 3, H, W) / (B, T, 3, H, W).

    A single path or tensor gives one :class:`Prediction` (a batch tensor gives a list); a list of
    paths gives a list in the same order, where an unreadable file gets ``error`` set and the others
    are still scored. ``window``/``stride`` (seconds) add a per-window timeline. ``precision``:
    ``auto`` (bf16 where the hardware multiplies it natively, else fp32), ``bf16`` or ``fp32``.
    ``model`` is an MSQNet or an :class:`~msqnet.export.OnnxRuntimeModel`.
    """
    model.eval()
    names = list(labels) if labels is not None else list(model.class_names)
    if not names:
        raise ValueError("no labels to score")
    device, precision = _device_and_precision(model, precision)
    label_embed = None if labels is None else model.embed_labels(names)
    multi_label = getattr(model, "multi_label", True)

    def score(clips: torch.Tensor) -> np.ndarray:
        out = []
        for i in range(0, clips.shape[0], batch_size):
            with autocast(device, precision):
                logits = model(clips[i : i + batch_size].to(device), label_embed=label_embed).logits
            out.append(_probabilities(logits.float(), multi_label).cpu())
        probs = torch.cat(out).numpy()
        if not np.isfinite(probs).all():  # never hand NaN to a caller or into a JSON file
            raise ValueError("the model's scores are NaN or infinite: its weights have diverged or are corrupt")
        return probs

    if isinstance(inputs, torch.Tensor):
        clips = inputs.unsqueeze(0) if inputs.ndim == 4 else inputs  # (B, T, 3, H, W)
        probs = score(clips)
        preds = [Prediction("<tensor>", names, p) for p in probs]
        return preds[0] if inputs.ndim == 4 else preds

    single = isinstance(inputs, (str, os.PathLike))
    sources = [str(inputs)] if single else [str(s) for s in inputs]
    results: list[Prediction] = []
    bar = None
    if progress and len(sources) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(sources), desc="predict", unit="video")
    for source in sources:
        try:
            if not Path(source).exists():
                raise FileNotFoundError(f"{source}: no such file or folder")
            spans = _clips_for(source, model, window, stride)
            probs = score(torch.stack([c for _, _, c in spans]))  # (W, C)
            windows = [WindowScores(s, e, p) for (s, e, _), p in zip(spans, probs)] if window is not None else []
            results.append(Prediction(source, names, probs.max(axis=0), windows))
        except (FileNotFoundError, DecodeError, ValueError, OSError) as e:
            error = str(e) if source in str(e) else f"{source}: {e}"
            log.error("%s", error)
            results.append(Prediction(source, names, None, error=error))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return results[0] if single else results
