"""Torch ``Dataset`` of labelled clips: decoded, sampled and transformed, with skip-aware batching.

Reproducibility: a sample's randomness (frame offsets, crop, flip, jitter) is a pure function of
``(seed, epoch, index)``, so a run gives the same batches with 0, 2 or 16 workers, and a resumed run
continues exactly where it stopped. The epoch travels with each index from the sampler
(``msqnet.data.loader.ClipSampler``, in the main process), so persistent workers never see a stale epoch.

Bad files: with ``on_error='raise'`` the first unreadable clip stops the run with an error naming
the file; with ``on_error='skip'`` it is logged (uid, file, reason), dropped by the collate function,
and reported in the batch's ``skipped`` list so the training loop can count skips across workers and
print the total at the end of the epoch (``SkipTally``).
"""
from __future__ import annotations

import logging
import typing
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..utils import quote
from .decode import DecodeError, probe, read_frames, segment_frame_range
from .records import ClipRecord
from .config import OnError, SamplingConfig, TransformConfig
from .sampling import sample_indices
from .transforms import build_train_transform
from .views import TestView, read_test_clips

__all__ = ["ClipDataset", "SkipTally", "collate_clips", "sample_seeds", "clip_target"]

log = logging.getLogger(__name__)

# Failures that on_error='skip' turns into a logged skip: unreadable or missing media and segments
# that do not fit the video. Programming errors (TypeError, ...) always propagate.
_SKIPPABLE = (DecodeError, FileNotFoundError, ValueError, OSError)


def sample_seeds(seed: int, epoch: int, index: int) -> tuple[np.random.Generator, torch.Generator]:
    """Independent numpy and torch generators for one sample, derived from ``(seed, epoch, index)``."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint64)
    rng = np.random.default_rng(int(state[0]))
    g = torch.Generator()
    g.manual_seed(int(state[1]))
    return rng, g


class ClipDataset(Dataset):
    """Labelled clips decoded, sampled and transformed into uint8 tensors.

    Args:
        records: the clips (from a dataset adapter).
        num_classes: C, the size of the label space.
        sampling: which frames a clip uses (training and multi-view test).
        transform: spatial and colour augmentation.
        train: training mode (random sampling and augmentation) or test mode (the test view of
            ``sampling`` and ``transform``, built by ``msqnet.data.views.read_test_clips``:
            ``sampling.test_clips x sampling.test_crops`` views when either is above 1).
        multi_label: targets are float multi-hot ``(C,)``; otherwise int64 class ids and every
            record must carry exactly one label.
        on_error: ``raise`` on the first unreadable clip, or ``skip`` it (logged, counted per batch).
        seed: base seed; a sample's randomness is a function of ``(seed, epoch, index)``.
        decode_size: short side the decoder resizes training frames to; ``None`` decodes straight
            to the transform's ``resize_to`` short side (the cheapest size that loses nothing), 0 keeps
            the native size. Test mode always decodes to the test view's short side.

    Items are dicts: ``video`` uint8 ``(T, 3, S, S)`` (test with several views: ``(V, T, 3, S, S)``,
    clip-major: view ``k * N + n`` is temporal clip k, crop n), ``target``, ``index`` (int), ``uid``.
    """

    def __init__(
        self,
        records: Sequence[ClipRecord],
        num_classes: int,
        *,
        sampling: SamplingConfig,
        transform: TransformConfig,
        train: bool,
        multi_label: bool = True,
        on_error: OnError = "raise",
        seed: int = 0,
        decode_size: int | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if on_error not in typing.get_args(OnError):
            raise ValueError(f"on_error: expected one of {list(typing.get_args(OnError))}, got {quote(on_error)}")
        self.records = list(records)
        self.num_classes = num_classes
        self.sampling = sampling
        self.transform_cfg = transform
        self.train = train
        self.multi_label = multi_label
        self.on_error = on_error
        self.seed = seed
        self.decode_size = transform.resize_to if decode_size is None else (decode_size or None)
        self._check_labels()
        self._train_tf = build_train_transform(transform)
        self._view = TestView.from_configs(sampling, transform)

    def _check_labels(self) -> None:
        """Every label id fits the label space, and single-label sets have exactly one per clip."""
        for r in self.records:
            bad = [c for c in r.labels if not 0 <= c < self.num_classes]
            if bad:
                raise ValueError(f"clip {r.uid} ({r.source}): label id {bad[0]} outside [0, {self.num_classes})")
            if not self.multi_label and len(r.labels) != 1:
                raise ValueError(
                    f"clip {r.uid} ({r.source}): single-label dataset needs exactly one label, got {list(r.labels)}"
                )

    @property
    def num_views(self) -> int:
        """Views per item: 1 in training, K clips x N crops at test."""
        return 1 if self.train else self.sampling.num_views

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        record = self.records[index]
        try:
            video = self._load(record, epoch, index)
        except _SKIPPABLE as e:
            reason = str(e) if record.source in str(e) else f"{record.source}: {e}"
            if self.on_error == "raise":
                message = f"clip {record.uid}: {reason} (data.on_error: skip skips and counts unreadable clips)"
                try:
                    error = type(e)(message)
                except TypeError:  # an error type whose constructor takes more than a message
                    error = DecodeError(message)
                raise error from e
            log.warning("skipping clip %s: %s", record.uid, reason)
            return {"skipped": True, "uid": record.uid, "index": index, "error": reason}
        return {"video": video, "target": clip_target(record, self.num_classes, self.multi_label), "index": index,
                "uid": record.uid}

    def _load(self, record: ClipRecord, epoch: int, index: int) -> torch.Tensor:
        """Decode and transform the clip (train) or its views (test) of one record."""
        fps = record.fps
        info = probe(record.source, fps=fps)
        first, last = (0, info.num_frames)
        if record.start is not None or record.end is not None:
            first, last = segment_frame_range(info, record.start, record.end)
        length = last - first
        T = self.sampling.num_frames
        if self.train:
            rng, g = sample_seeds(self.seed, epoch, index)
            idx = [first + i for i in sample_indices(self.sampling, length, train=True, rng=rng)]
            frames = read_frames(record.source, idx, size=self.decode_size, fps=fps)
            return self._train_tf(frames, g)  # (T, 3, S, S)
        return read_test_clips(record.source, self._view, num_frames=T, size=self.transform_cfg.size, first=first,
                               last=last, fps=fps).squeeze(0)  # (V, T, 3, S, S); a single view: (T, 3, S, S)

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """``collate_clips`` that also shapes an all-skipped batch like this dataset's batches."""
        batch = collate_clips(samples)
        if not batch["uid"]:
            S, T, V = self.transform_cfg.size, self.sampling.num_frames, self.num_views
            shape = (0, T, 3, S, S) if V == 1 else (0, V, T, 3, S, S)
            batch["video"] = torch.empty(shape, dtype=torch.uint8)
            batch["target"] = (
                torch.empty(0, self.num_classes) if self.multi_label else torch.empty(0, dtype=torch.int64)
            )
        return batch


def collate_clips(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack the good samples of a batch; skipped ones are dropped and listed by uid in ``skipped``."""
    good = [s for s in samples if not s.get("skipped")]
    skipped = [s["uid"] for s in samples if s.get("skipped")]
    if not good:
        empty = torch.empty(0, dtype=torch.uint8)
        return {"video": empty, "target": torch.empty(0), "index": torch.empty(0, dtype=torch.int64), "uid": [], "skipped": skipped}
    return {
        "video": torch.stack([s["video"] for s in good]),  # (B, T, 3, S, S) or (B, V, T, 3, S, S)
        "target": torch.stack([s["target"] for s in good]),  # (B, C) float or (B,) int64
        "index": torch.tensor([s["index"] for s in good], dtype=torch.int64),
        "uid": [s["uid"] for s in good],
        "skipped": skipped,
    }


@dataclass
class SkipTally:
    """Counts skipped clips over an epoch from the batches' ``skipped`` lists (works across workers)."""

    uids: list[str] = field(default_factory=list)

    def update(self, batch: dict[str, Any]) -> None:
        """Record the skips of one batch."""
        self.uids.extend(batch.get("skipped", ()))


def clip_target(record: ClipRecord, num_classes: int, multi_label: bool) -> torch.Tensor:
    """A clip's training target: float multi-hot ``(C,)``, or its one class id (int64 scalar) for single-label data."""
    if multi_label:
        target = torch.zeros(num_classes, dtype=torch.float32)
        target[list(record.labels)] = 1.0
        return target
    return torch.tensor(record.labels[0], dtype=torch.int64)
