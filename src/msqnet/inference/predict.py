"""Run a trained model on videos: per-label probabilities, optionally per sliding window (a timeline).

``predict(model, "clip.mp4", labels=["walking", "eating"])`` scores a video file, a folder of frames
or a clip tensor for any label set the model can score (its training classes, or any class names
with the open-vocabulary ``head: text``).

The pipeline has two sides, so decoding overlaps the model:

* **clips** (``VideoClips``, in DataLoader workers with ``num_workers > 0``): each video's test views
  built with the model's recorded test view (``model.test_view``, ``msqnet.data.views``), or with
  ``window`` its timeline windows, streamed from one front-to-back decode (``msqnet.data.timeline``)
  in chunks of at most ``batch_size`` clips, so a long video never sits in memory whole;
* **scores** (``iter_predictions``, in the main process): clips from any videos are batched through
  one scoring function, a ``Scorer`` (``model_scorer``: the PyTorch model), and a video's
  :class:`Prediction` is yielded as soon as its last clip is scored.

A video much longer than the model's training clips (``model.clip_seconds``) is scored in windows
of that length and its whole-video scores aggregate the windows (``msqnet.inference.whole_video``:
max for multi-label models, mean for single-label ones); a short one is one clip. Every prediction
says which (``view``) and which labels it detects (``msqnet.inference.decisions``).

A video that cannot be read, or whose scores are not finite, gets ``error`` set (a message naming
the file) and the others are still scored; a prediction never holds NaN.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..data.decode import DecodeError, probe
from ..data.loader import seed_worker
from ..data.timeline import WindowClips
from ..data.views import TestView, read_test_clips
from ..engine.inference import score_clips
from ..models.msqnet import check_class_names, check_clips
from ..precision import resolve_precision
from .decisions import UNCALIBRATED, LabelDecisions, label_decisions
from .whole_video import ViewMode, aggregate_name, aggregate_windows, choose_view

__all__ = ["WindowScores", "Prediction", "Scorer", "ModelScorer", "model_scorer", "VideoClips", "iter_predictions",
           "predict"]

log = logging.getLogger(__name__)

# A batch of multi-view clips (B, V, T, 3, S, S) uint8 -> per-label probabilities (B, C).
Scorer = Callable[[torch.Tensor], np.ndarray]

# What makes one input fail without stopping the others: unreadable or missing media, bad segments.
_INPUT_ERRORS = (FileNotFoundError, DecodeError, ValueError, OSError)


@dataclass
class WindowScores:
    """Scores of one temporal window: ``start``/``end`` in seconds, ``probabilities`` (C,)."""

    start: float
    end: float
    probabilities: np.ndarray


@dataclass
class Prediction:
    """Per-label probabilities of one input (whole video; plus per-window scores with windows).

    ``view`` says where ``probabilities`` come from: ``whole`` (one clip over the input) or
    ``windows`` (the ``aggregate`` over ``windows``: max for multi-label models, mean for
    single-label ones; ``window_seconds`` long each). ``decisions`` holds the thresholds that mark
    labels detected.
    """

    source: str
    labels: list[str]
    probabilities: np.ndarray | None
    windows: list[WindowScores] = field(default_factory=list)
    error: str | None = None
    view: str = "whole"
    window_seconds: float | None = None
    aggregate: str | None = None
    decisions: LabelDecisions | None = None

    @property
    def calibrated(self) -> bool:
        """Whether labels are decided with thresholds (else the scores are uncalibrated)."""
        return self.decisions is not None and self.decisions.calibrated

    @property
    def detected(self) -> list[str] | None:
        """The labels whose whole-video score is above their threshold, by score; ``None`` when uncalibrated."""
        if not self.calibrated or self.probabilities is None:
            return None
        hit = self.decisions.detected(self.probabilities)
        order = np.argsort(-self.probabilities, kind="stable")
        return [self.labels[i] for i in order if hit[i]]

    def top(self, k: int = 5, threshold: float | None = None) -> list[tuple[str, float]]:
        """The ``k`` most probable labels (only those at or above ``threshold`` when given)."""
        if self.probabilities is None:
            return []
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        pairs = [(self.labels[i], float(self.probabilities[i])) for i in order]
        return [p for p in pairs if threshold is None or p[1] >= threshold]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view: source, error, view, label -> probability, decisions, and windows."""
        probs = None if self.probabilities is None else {l: float(p) for l, p in zip(self.labels, self.probabilities)}
        thresholds = {} if self.decisions is None else {
            l: float(t) for l, t in zip(self.labels, self.decisions.thresholds) if np.isfinite(t)}
        return {
            "source": self.source,
            "error": self.error,
            "view": self.view,
            "window_seconds": self.window_seconds,
            "aggregate": self.aggregate,
            "probabilities": probs,
            "calibration": self.decisions.source if self.calibrated else UNCALIBRATED,
            "thresholds": thresholds,
            "detected": self.detected,
            "windows": [
                {"start": w.start, "end": w.end, "probabilities": {l: float(p) for l, p in zip(self.labels, w.probabilities)}}
                for w in self.windows
            ],
        }


def _device_and_precision(model, precision: str, device: torch.device | str | None) -> tuple[torch.device, str]:
    """Where ``model`` runs and what ``precision`` means there (an ONNX Runtime graph runs in fp32)."""
    if isinstance(model, torch.nn.Module):
        device = next(model.parameters()).device if device is None else torch.device(device)
        return device, resolve_precision(precision, device)
    resolve_precision(precision, model.device)  # rejects unknown names
    if precision == "bf16":
        raise ValueError("the onnxruntime backend runs the exported fp32 graph: use precision auto or fp32")
    return model.device, "fp32"


@dataclass
class ModelScorer:
    """The ``Scorer`` of a model: scores clip batches for ``label_embed`` (``None``: its training
    classes) on ``device`` computing in ``precision`` (resolved: ``bf16`` or ``fp32``, which a
    predictions file records), views combined by ``aggregate``."""

    model: Any
    label_embed: torch.Tensor | None
    device: torch.device
    precision: str
    aggregate: str

    def __call__(self, clips: torch.Tensor) -> np.ndarray:
        return score_clips(self.model, clips, label_embed=self.label_embed, aggregate=self.aggregate,
                           device=self.device, precision=self.precision).cpu().numpy()


def model_scorer(model, labels: Sequence[str] | None = None, *, device: torch.device | str | None = None,
                 precision: str = "auto") -> ModelScorer:
    """The ``Scorer`` of ``model`` (an MSQNet, or an :class:`~msqnet.inference.export.OnnxRuntimeModel`) for
    ``labels`` (default: its training classes), in eval mode and ``precision`` (``auto``: bf16 where
    the hardware multiplies it natively, else fp32; ``bf16``; ``fp32``)."""
    model.eval()
    device, precision = _device_and_precision(model, precision, device)
    label_embed = None if labels is None else model.embed_labels(check_class_names(list(labels), "labels"))
    return ModelScorer(model, label_embed, device, precision, model.test_view.aggregate)


# --- the clip side ------------------------------------------------------------------------------


@dataclass
class ClipChunk:
    """Up to a batch of one video's clips, as the clip side hands them over.

    Args:
        index: the video's position in the input list.
        source: the video.
        clips: ``(N, V, T, 3, S, S)`` uint8 test views of N clips (whole video: N = 1), or ``None``.
        spans: the N clips' ``(start, end)`` seconds.
        last: no more chunks of this video follow.
        error: why the video could not be read (then ``last`` is set).
        whole: the chunk holds the one clip over the whole video (else timeline windows).
        view: the video's view (``whole`` or ``windows``, see ``inference.whole_video``).
        window: seconds per timeline window (``None``: no timeline).
    """

    index: int
    source: str
    clips: torch.Tensor | None
    spans: list[tuple[float, float]]
    last: bool
    error: str | None = None
    whole: bool = False
    view: str = "whole"
    window: float | None = None


class VideoClips(IterableDataset):
    """The test clips of a list of videos as :class:`ClipChunk` items; DataLoader worker k of n builds
    the clips of every n-th video.

    Args:
        items: ``(index, source)`` of each video (index: its position in the caller's list).
        view: the model's test view; ``num_frames`` / ``size``: its T and S.
        window: seconds per timeline window (``None``: no timeline, unless the video is long).
        stride: seconds between window starts (default the window).
        chunk_size: most clips per chunk.
        mode: the whole-video view (``inference.whole_video.choose_view``): ``auto`` scores a video
            longer than ``LONG_VIDEO_FACTOR`` x ``clip_seconds`` in windows (of ``window``, else
            ``clip_seconds``), ``whole`` always as one clip (plus the timeline with ``window``),
            ``windows`` always in windows.
        clip_seconds: the model's training-clip duration (``None``: unknown).
    """

    def __init__(self, items: Sequence[tuple[int, str]], view: TestView, *, num_frames: int, size: int,
                 window: float | None = None, stride: float | None = None, chunk_size: int = 8,
                 mode: ViewMode = "auto", clip_seconds: float | None = None):
        if window is not None and window <= 0 or stride is not None and stride <= 0:
            raise ValueError(f"window and stride must be positive seconds, got {window} and {stride}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        choose_view(mode, 0.0, clip_seconds, window)  # rejects an unknown mode now
        if mode == "windows" and window is None and clip_seconds is None:
            raise ValueError("view windows needs a window length: give window= (--window) or a checkpoint that "
                             "records its training-clip duration")
        self.items = list(items)
        self.view = view
        self.num_frames = num_frames
        self.size = size
        self.window = window
        self.stride = stride
        self.chunk_size = chunk_size
        self.mode = mode
        self.clip_seconds = clip_seconds

    def __iter__(self) -> Iterator[ClipChunk]:
        worker = get_worker_info()
        mine = self.items if worker is None else self.items[worker.id :: worker.num_workers]
        for index, source in mine:
            yield from self.chunks(index, source)

    def chunks(self, index: int, source: str) -> Iterator[ClipChunk]:
        """The chunks of one video; a failure ends them with a chunk that carries the error."""
        try:
            duration = probe(source).duration
            view = choose_view(self.mode, duration, self.clip_seconds, self.window)
            window = self.window if self.window is not None else (self.clip_seconds if view == "windows" else None)
            said = dict(view=view, window=window)
            if view == "whole":
                clips = read_test_clips(source, self.view, num_frames=self.num_frames, size=self.size)
                yield ClipChunk(index, source, clips.unsqueeze(0), [(0.0, duration)], last=window is None,
                                whole=True, **said)
                if window is None:
                    return
            batch: list[torch.Tensor] = []
            spans: list[tuple[float, float]] = []
            stride = self.stride if self.stride is not None else window
            for w, clip in WindowClips(source, self.view, num_frames=self.num_frames, size=self.size,
                                       window=window, stride=stride):
                batch.append(clip)
                spans.append((w.start_s, w.end_s))
                if len(batch) == self.chunk_size:
                    yield ClipChunk(index, source, torch.stack(batch), spans, last=False, **said)
                    batch, spans = [], []
            yield ClipChunk(index, source, torch.stack(batch) if batch else None, spans, last=True, **said)
        except _INPUT_ERRORS as e:
            message = str(e) if source in str(e) else f"{source}: {e}"
            yield ClipChunk(index, source, None, [], last=True, error=message)
        except Exception as e:  # noqa: BLE001
            # One odd file must not end a run over many: a failure nobody foresaw while reading this
            # video is its error line too (marked internal, so it gets reported), and the rest go on.
            yield ClipChunk(index, source, None, [], last=True,
                            error=f"{source}: internal error reading it ({type(e).__name__}: {e}); please report it")


def _as_is(item: ClipChunk) -> ClipChunk:
    """The DataLoader's collate function: chunks are batched by the score side, not by the loader."""
    return item


def _loader(clips: VideoClips, num_workers: int) -> Iterable[ClipChunk]:
    """Chunks in the main process (0 workers) or from ``num_workers`` decoding processes."""
    if num_workers == 0:
        return clips
    return DataLoader(clips, batch_size=None, num_workers=num_workers, collate_fn=_as_is, worker_init_fn=seed_worker)


# --- the score side -----------------------------------------------------------------------------


@dataclass
class _Pending:
    """A video whose clips are still being scored."""

    source: str
    spans: list[tuple[float, float]] = field(default_factory=list)
    probs: list[np.ndarray | None] = field(default_factory=list)
    scored: int = 0
    last_seen: bool = False
    error: str | None = None
    whole_slot: int | None = None  # the slot of the one clip over the whole video, if scored
    view: str = "whole"
    window: float | None = None

    @property
    def complete(self) -> bool:
        """All chunks arrived and every clip is scored (or the video failed)."""
        return self.last_seen and (self.error is not None or self.scored == len(self.probs))

    def prediction(self, labels: list[str], multi_label: bool, decisions: LabelDecisions | None) -> Prediction:
        """The finished prediction, or an error naming the file (unreadable, or non-finite scores)."""
        if self.error is None and not self.probs:
            self.error = f"{self.source}: no clips to score"
        if self.error is not None:
            return Prediction(self.source, labels, None, error=self.error)
        probs = np.stack(self.probs)  # (N clips, C)
        bad = int((~np.isfinite(probs)).any(axis=1).sum())
        if bad:
            return Prediction(self.source, labels, None, error=(
                f"{self.source}: the model's scores are NaN or infinite for {bad} of {len(probs)} clip(s): "
                "its weights have diverged or are corrupt"))
        slots = [i for i in range(len(probs)) if i != self.whole_slot]
        windows = [WindowScores(*self.spans[i], probs[i]) for i in slots]
        whole = probs[self.whole_slot] if self.view == "whole" else aggregate_windows(probs[slots], multi_label)
        return Prediction(self.source, labels, whole, windows, view=self.view, window_seconds=self.window,
                          aggregate=None if self.view == "whole" else aggregate_name(multi_label), decisions=decisions)


def iter_predictions(
    items: Sequence[tuple[int, str]],
    score: Scorer,
    labels: Sequence[str],
    *,
    view: TestView,
    num_frames: int,
    size: int,
    window: float | None = None,
    stride: float | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    mode: ViewMode = "auto",
    clip_seconds: float | None = None,
    multi_label: bool = True,
    decisions: LabelDecisions | None = None,
) -> Iterator[tuple[int, Prediction]]:
    """Yield ``(index, Prediction)`` for every ``(index, source)`` of ``items``, each as soon as it is complete.

    Clips of several videos share a batch of ``batch_size``; decoding runs in ``num_workers``
    DataLoader processes (0: in this one). ``mode`` and ``clip_seconds`` choose each video's view
    (``VideoClips``); ``multi_label`` how windows aggregate; ``decisions`` the thresholds the
    predictions detect labels with. Failures are logged and yielded as predictions with ``error`` set.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    labels = list(labels)
    clips = VideoClips(items, view, num_frames=num_frames, size=size, window=window, stride=stride,
                       chunk_size=batch_size, mode=mode, clip_seconds=clip_seconds)
    pending: dict[int, _Pending] = {}
    queue: list[tuple[int, int, torch.Tensor]] = []  # (video index, clip slot, (V, T, 3, S, S))

    def flush(n: int) -> None:
        batch = queue[:n]
        del queue[:n]
        probs = score(torch.stack([clip for _, _, clip in batch]))  # (n, C)
        for (index, slot, _), p in zip(batch, probs):
            video = pending.get(index)
            if video is not None:  # None: already reported as failed
                video.probs[slot] = p
                video.scored += 1

    def finished() -> Iterator[tuple[int, Prediction]]:
        for index in [i for i, v in pending.items() if v.complete]:
            pred = pending.pop(index).prediction(labels, multi_label, decisions)
            if pred.error:
                log.error("%s", pred.error)
            yield index, pred

    for chunk in _loader(clips, num_workers):
        video = pending.setdefault(chunk.index, _Pending(chunk.source))
        if chunk.error is not None:
            video.error = chunk.error
        elif chunk.clips is not None:
            video.view, video.window = chunk.view, chunk.window
            if chunk.whole:
                video.whole_slot = len(video.probs)
            for span, clip in zip(chunk.spans, chunk.clips):
                queue.append((chunk.index, len(video.probs), clip))
                video.spans.append(span)
                video.probs.append(None)
        video.last_seen = chunk.last
        while len(queue) >= batch_size:
            flush(batch_size)
        yield from finished()
    while queue:
        flush(batch_size)
    yield from finished()


@torch.inference_mode()
def predict(
    model,
    inputs: str | os.PathLike | torch.Tensor | Iterable[str | os.PathLike],
    labels: Sequence[str] | None = None,
    *,
    window: float | None = None,
    stride: float | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = False,
    precision: str = "auto",
    view: ViewMode = "auto",
    threshold: float | None = None,
) -> Prediction | list[Prediction]:
    """Score videos (paths or frame folders) or a clip tensor (T, 3, H, W) / (B, T, 3, H, W).

    A single path or tensor gives one :class:`Prediction` (a batch tensor gives a list); a list of
    paths gives a list in the same order, where an unreadable file gets ``error`` set and the others
    are still scored. ``window``/``stride`` (seconds) add a per-window timeline. ``view``: ``auto``
    scores a video much longer than the model's training clips in windows of their length and
    aggregates them (``msqnet.inference.whole_video``), a short one as one clip; ``whole`` /
    ``windows`` force either. Labels are detected with the model's thresholds, or ``threshold`` for
    every label (``msqnet.inference.decisions``). Videos are decoded
    in ``num_workers`` DataLoader processes (0: in this one). A tensor whose scores are not finite
    is a ValueError. ``precision``: ``auto`` (bf16 where the hardware multiplies it natively, else
    fp32), ``bf16`` or ``fp32``. ``model`` is an MSQNet or an :class:`~msqnet.inference.export.OnnxRuntimeModel`.
    """
    score = model_scorer(model, labels, precision=precision)  # checks the labels (check_class_names)
    names = list(labels) if labels is not None else list(model.class_names)
    decisions = label_decisions(model, names, threshold)

    if isinstance(inputs, torch.Tensor):
        clips = check_clips(inputs, model.cfg.num_frames, model.cfg.image_size)  # (B, T, 3, H, W)
        probs = np.concatenate([score(clips[i : i + batch_size]) for i in range(0, clips.shape[0], batch_size)])
        bad = [i for i, p in enumerate(probs) if not np.isfinite(p).all()]
        if bad:
            raise ValueError(f"<tensor>: the model's scores are NaN or infinite for clip(s) {bad[:10]}: its weights "
                             "have diverged or are corrupt")
        preds = [Prediction("<tensor>", names, p, decisions=decisions) for p in probs]
        return preds[0] if inputs.ndim == 4 else preds

    single = isinstance(inputs, (str, os.PathLike))
    sources = [str(inputs)] if single else [str(s) for s in inputs]
    results: list[Prediction | None] = [None] * len(sources)
    stream = iter_predictions(list(enumerate(sources)), score, names, view=model.test_view,
                              num_frames=model.cfg.num_frames, size=model.cfg.image_size, window=window,
                              stride=stride, batch_size=batch_size, num_workers=num_workers, mode=view,
                              clip_seconds=getattr(model, "clip_seconds", None), multi_label=model.multi_label,
                              decisions=decisions)
    for index, pred in tqdm(stream, total=len(sources), desc="predict", unit="video",
                            disable=not progress or len(sources) < 2):
        results[index] = pred
    return results[0] if single else results
