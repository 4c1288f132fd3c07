"""The frozen encoders' per-frame outputs of every clip of a split, computed once and reused every epoch.

A model whose encoders are partly frozen (the CNN of a ``frame_transformer`` video encoder, the
visual embedder) would recompute the same frozen outputs every epoch, and on a CPU that is most of
a training step. ``FrozenFrameCache`` runs them once per split (``MSQNet.frozen_frames``) and keeps
the result in memory and in ``<cache_dir>/<split>-<fingerprint>.safetensors`` (by default the run's
``cache/`` folder), where resumed runs and other runs on the same data and frozen encoders find it.
A saved cache records a checksum of its tensors' bytes, verified when it is read: a damaged file
(a bad disk, a copy cut short) is rebuilt with a warning, never read as numbers.


* **training** (``train=True``): ``frames`` frames per clip, at the middles of ``frames`` equal
  segments, after the test resize and centre crop. Each epoch a clip's T frames are drawn among the
  cached ones by the training sampling strategy (TSN: one random cached frame per segment) and, with
  ``transform.hflip``, the frame features are mirrored with probability 1/2 (by the video encoder's
  ``mirror_frozen()``: CNN maps flipped, grayscale pixel channels mirrored exactly). The draw is a function
  of ``(seed, epoch, index)``, as in ``ClipDataset``.
* **training with ``views: K > 1``** (``cache_views``): besides that test view, K - 1 views drawn by the
  training transform (random crop and scale, flip, colour jitter as ``transform`` sets them; a fixed
  seeded draw per view, the same for every run on the data), each with ``frames`` frames at random
  offsets within the segments. Each epoch a clip reads one of its K views, then draws its T frames
  and mirrors as above: spatial augmentation survives the cache, at K times the caching cost.
* **evaluation** (``train=False``): exactly the test views (K clips x N crops of T frames), so a
  score from the cache is the score from the video, up to the cache's float16 storage.

What the cache gives up in training: with one view, spatial augmentation other than the mirror (random
crops, colour jitter, grayscale); with K views, fresh augmentation every epoch (K fixed draws instead);
and exactness of the mirror (mirrored CNN features are close to, not
equal to, the features of a mirrored frame: the filters are not mirror-symmetric).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from safetensors import safe_open
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..config_loader import to_dict
from ..data.dataset import ClipDataset, clip_target, sample_seeds
from ..data.loader import ClipSampler, build_loader
from ..data.config import SamplingConfig, TransformConfig
from ..data.sampling import sample_indices
from ..models.msqnet import FrozenFrames, MSQNet
from ..utils import atomic_write_bytes
from ..precision import autocast
from .distributed import all_gather_objects, barrier, is_main_process, rank_and_world_size

__all__ = ["FrozenFrameCache", "CachedClipDataset", "cached_frozen_frames", "cached_clip_dataset", "collate_cached",
           "augmentations_lost"]

log = logging.getLogger(__name__)

# Feature maps are stored in float16 (half the memory; the trainable part reads them in float32).
_STORAGE_DTYPE = torch.float16


@dataclass
class FrozenFrameCache:
    """Frozen per-frame outputs of every record of a split.

    Args:
        features: (N, P, C, h, w) frame features of a ``frame_transformer`` encoder, or ``None``.
        visual: (N, P, V) per-frame visual embeddings, or ``None``.
        valid: (N,) whether the record could be read when the cache was built.
        frames: P, the cached frames per record (training: views x candidates; evaluation: views x T).
        train: whether this is a training cache (candidates) or an evaluation one (test views).
        views: training caches: the spatial views per record (view-major rows of ``frames // views``
            candidates each; view 0 is the test view).
        fingerprint: checksum of everything the outputs depend on.
    """

    features: torch.Tensor | None
    visual: torch.Tensor | None
    valid: torch.Tensor
    frames: int
    train: bool
    fingerprint: str
    views: int = 1

    def __len__(self) -> int:
        return self.valid.shape[0]

    @staticmethod
    def fingerprint_of(model: MSQNet, records: Sequence, sampling: SamplingConfig, transform: TransformConfig,
                       *, frames: int, train: bool, views: int = 1) -> str:
        """Checksum of the frozen encoders (their settings and weights), the records and the cached frames.

        Only what decides the cached frames counts: a training cache does not depend on T (runs
        with another T reuse it), an evaluation cache depends on the whole test view.
        """
        h = hashlib.sha256()
        encoder = model.video_encoder
        frozen_cfg = {"video_encoder": encoder.frozen_config() if hasattr(encoder, "frozen_features") else None,
                      "visual_embedder": to_dict(model.cfg.visual_embedder)}
        positions = {"strategy": sampling.strategy, "stride": sampling.stride}
        if not train:
            positions.update(num_frames=sampling.num_frames, clips=sampling.test_clips, crops=sampling.test_crops)
        spatial: dict[str, Any] = {"size": transform.size, "short_side": transform.resize_to}
        if train and views > 1:  # the augmented views depend on the whole training transform
            spatial = {"views": views, **to_dict(transform)}
        h.update(json.dumps({
            "frozen": frozen_cfg, "frames": frames, "train": train, "positions": positions, **spatial,
            "records": [[r.uid, r.source, r.start, r.end] for r in records],
        }, sort_keys=True).encode())
        for name, t in sorted(model.state_dict().items()):
            if name.startswith(("video_encoder.backbone.", "visual_embedder.")) and _is_frozen(model, name):
                h.update(name.encode())
                h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    @staticmethod
    def data_checksum(tensors: dict[str, torch.Tensor]) -> str:
        """SHA-256 of the tensors' names and bytes (what ``save`` records and ``load`` verifies)."""
        h = hashlib.sha256()
        for name in sorted(tensors):
            h.update(name.encode())
            h.update(tensors[name].detach().contiguous().view(-1).view(torch.uint8).numpy())
        return h.hexdigest()

    @classmethod
    def load(cls, path: Path, fingerprint: str) -> "FrozenFrameCache | None":
        """The cache saved at ``path`` if it matches ``fingerprint`` and its data checksum, else ``None``
        (rebuild it)."""
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("fingerprint") != fingerprint:
                    log.info("%s: cached frozen outputs are for other data, model or settings; rebuilding", path)
                    return None
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            if meta.get("data_sha256") != cls.data_checksum(tensors):
                log.warning("%s: cached frozen outputs fail their checksum (the file's data is damaged, or it was "
                            "written by an older msqnet); rebuilding it. If this recurs, check the disk, or set "
                            "cache_frozen: false to train without a cache", path)
                return None
            return cls(features=tensors.get("features"), visual=tensors.get("visual"), valid=tensors["valid"].bool(),
                       frames=int(meta["frames"]), train=meta["train"] == "1", fingerprint=fingerprint,
                       views=int(meta.get("views", 1)))
        except Exception as e:  # a corrupt cache is only a lost optimisation: rebuild it
            log.warning("%s: unreadable frozen-output cache (%s); rebuilding it", path, e)
            return None

    def save(self, path: Path) -> None:
        """Write the cache atomically."""
        tensors = {"valid": self.valid.to(torch.uint8)}
        if self.features is not None:
            tensors["features"] = self.features.contiguous()
        if self.visual is not None:
            tensors["visual"] = self.visual.contiguous()
        from safetensors.torch import save as to_bytes

        data = to_bytes(tensors, metadata={"fingerprint": self.fingerprint, "frames": str(self.frames),
                                           "train": "1" if self.train else "0", "views": str(self.views),
                                           "data_sha256": self.data_checksum(tensors)})
        atomic_write_bytes(path, data)

    @classmethod
    @torch.no_grad()
    def build(cls, model: MSQNet, records: Sequence, num_classes: int, *, sampling: SamplingConfig,
              transform: TransformConfig, frames: int, train: bool, batch_size: int, num_workers: int,
              on_error: str, seed: int, fingerprint: str, precision_ctx: Any, device: torch.device,
              progress: bool = True, desc: str = "caching frozen outputs", views: int = 1) -> "FrozenFrameCache":
        """Run the frozen encoders over every record's cached frames (sharded over processes, then gathered).

        ``precision_ctx`` is a callable returning the autocast context of the run's precision.
        """
        candidates = replace(sampling, num_frames=frames, test_clips=1, test_crops=1)
        datasets = [ClipDataset(records, num_classes, sampling=candidates if train else sampling, transform=transform,
                                train=False, multi_label=True, on_error=on_error, seed=seed)]
        if train:  # views 1..K-1: the training transform's draws of a fixed seed, epoch k for view k
            datasets += [ClipDataset(records, num_classes, sampling=candidates, transform=transform, train=True,
                                     multi_label=True, on_error=on_error, seed=_VIEW_SEED)] * (views - 1)
        runs = [_run_frozen(model, d, epoch=k, batch_size=batch_size, num_workers=num_workers,
                            precision_ctx=precision_ctx, device=device, progress=progress,
                            desc=desc if len(datasets) == 1 else f"{desc} (view {k + 1}/{len(datasets)})")
                for k, d in enumerate(datasets)]
        features, visual = (None if runs[0][i] is None else torch.cat([r[i] for r in runs], dim=1) for i in (0, 1))
        valid = torch.stack([r[2] for r in runs]).all(0)  # a record counts when every view could be read
        per_record = datasets[0].num_views * sampling.num_frames if not train else frames * len(datasets)
        return cls(features=features, visual=visual, valid=valid, frames=per_record, train=train,
                   fingerprint=fingerprint, views=len(datasets) if train else 1)


# The seed of the augmented training views of a cache (``views > 1``): fixed, so that runs of any
# training seed on the same data share the cache.
_VIEW_SEED = 0


def _run_frozen(model: MSQNet, dataset: ClipDataset, *, epoch: int, batch_size: int, num_workers: int,
                precision_ctx: Any, device: torch.device, progress: bool, desc: str):
    """The frozen outputs of every record of ``dataset`` (its ``epoch`` draw): features (N, P, C, h, w) or
    ``None``, visual (N, P, V) or ``None``, valid (N,); sharded over processes, then gathered."""
    n = len(dataset)
    rank, world_size = rank_and_world_size()
    sampler = ClipSampler(n, seed=dataset.seed, shuffle=False, rank=rank, world_size=world_size)
    sampler.set_epoch(epoch)
    loader = build_loader(dataset, batch_size=batch_size, num_workers=num_workers, sampler=sampler)
    feats, vis, idx = [], [], []
    for batch in tqdm(loader, desc=desc, disable=not (progress and rank == 0), leave=False, dynamic_ncols=True):
        if not batch["uid"]:
            continue
        video = batch["video"].to(device)
        if video.ndim == 6:  # (B, V, T, 3, S, S): the test views, each T frames
            video = video.flatten(1, 2)  # (B, V*T, 3, S, S): per-frame encoders see frames only
        with precision_ctx():
            out = model.frozen_frames(video)
        if out.features is not None:
            feats.append(out.features.to(_STORAGE_DTYPE).cpu())
        if out.visual is not None:
            vis.append(out.visual.float().cpu())
        idx.append(batch["index"])
    local = (torch.cat(feats) if feats else None, torch.cat(vis) if vis else None,
             torch.cat(idx) if idx else torch.zeros(0, dtype=torch.int64))
    valid = torch.zeros(n, dtype=torch.bool)
    features = visual = None
    for f, v, i in all_gather_objects(local):
        if f is not None:
            if features is None:
                features = torch.zeros((n, *f.shape[1:]), dtype=_STORAGE_DTYPE)
            features[i] = f
        if v is not None:
            if visual is None:
                visual = torch.zeros((n, *v.shape[1:]), dtype=torch.float32)
            visual[i] = v
        valid[i] = True
    return features, visual, valid


def cached_frozen_frames(model: MSQNet, split: Any, folder: str | Path, *, sampling: SamplingConfig,
                         transform: TransformConfig, train: bool, frames: int | None = None, batch_size: int = 32,
                         num_workers: int = 0, on_error: str = "raise", seed: int = 0, precision: str = "fp32",
                         device: torch.device | str = "cpu", progress: bool = True, views: int = 1,
                         say: Callable[[str], None] = log.info) -> FrozenFrameCache:
    """The frozen outputs of ``split`` (a ``DatasetSplit``) from ``folder``, built and saved there first
    when missing or stale. ``frames``: cached frames per training clip (default T); ``views``: spatial
    views per training clip (1 = the test view only). Under DDP every process builds its shard, rank 0
    saves, and all wait for it."""
    frames = (frames or sampling.num_frames) if train else sampling.num_frames
    views = views if train else 1
    fp = FrozenFrameCache.fingerprint_of(model, split.records, sampling, transform, frames=frames, train=train,
                                         views=views)
    path = Path(folder) / f"{split.name}-{fp[:16]}.safetensors"
    cache = FrozenFrameCache.load(path, fp)
    if cache is not None:
        return cache
    start = time.perf_counter()
    device = torch.device(device)
    cache = FrozenFrameCache.build(
        model, split.records, split.num_classes, sampling=sampling, transform=transform, frames=frames, train=train,
        batch_size=batch_size, num_workers=num_workers, on_error=on_error, seed=seed, fingerprint=fp, device=device,
        precision_ctx=lambda: autocast(device, precision), progress=progress, views=views,
        desc=f"caching frozen outputs of {split.name}")
    if is_main_process():
        cache.save(path)
        unread = len(cache) - int(cache.valid.sum())
        shown = f"{cache.views} views x {cache.frames // cache.views}" if cache.views > 1 else f"{cache.frames}"
        say(f"cached the frozen encoders' outputs of {split.name}: {len(cache)} clips x {shown} frames in "
            f"{time.perf_counter() - start:.1f} s" + (f"; {unread} unreadable clip(s) left out" if unread else ""))
    barrier()
    return cache


def cached_clip_dataset(model: MSQNet, split: Any, folder: str | Path, *, sampling: SamplingConfig,
                        transform: TransformConfig, train: bool, multi_label: bool = True, seed: int = 0,
                        **build: Any) -> CachedClipDataset:
    """The clips of ``split`` as the frozen encoders' outputs, loaded from ``folder`` or built there
    first (``cached_frozen_frames``, which takes ``build``'s settings). Training clips are mirrored
    with ``transform.hflip``; test views never are."""
    cache = cached_frozen_frames(model, split, folder, sampling=sampling, transform=transform, train=train,
                                 seed=seed, **build)
    mirror = getattr(model.video_encoder, "mirror_frozen", None)
    return CachedClipDataset(cache, split.records, split.num_classes, sampling=sampling,
                             hflip=train and transform.hflip, multi_label=multi_label, seed=seed,
                             mirror=mirror() if mirror else None)


def augmentations_lost(transform: TransformConfig, views: int = 1) -> list[str]:
    """The ``transform`` settings a cached training run cannot apply: with one view it reads cached test
    views; with several, each view applies them once (none is lost)."""
    if views > 1:
        return []
    return [name for name, on in (("train_crop", transform.train_crop != "center"),
                                  ("color_jitter_prob", transform.color_jitter_prob > 0),
                                  ("grayscale_prob", transform.grayscale_prob > 0)) if on]


def _is_frozen(model: MSQNet, name: str) -> bool:
    """Whether state-dict entry ``name`` belongs to a frozen module (buffers of frozen modules count)."""
    module_name = name.rsplit(".", 1)[0]
    try:
        module = model.get_submodule(module_name)
    except AttributeError:
        return False
    params = list(module.parameters(recurse=False))
    return all(not p.requires_grad for p in params)


class CachedClipDataset(Dataset):
    """Clips of a split as the frozen encoders' cached outputs: what ``ClipDataset`` gives, minus decoding.

    Items: ``frozen`` (``features`` (T, C, h, w) and/or ``visual`` (T, V); at test with several views
    (V', T, ...)), ``target``, ``index``, ``uid``. Records the cache could not read are skipped, as
    ``ClipDataset`` skips unreadable clips.

    Args:
        cache: the split's cache.
        records: the split's records (the cache's rows).
        num_classes: C.
        sampling: the run's sampling (T and the training strategy).
        hflip: mirror the frame features with probability 1/2 in training.
        multi_label: float multi-hot targets, else class ids.
        seed: base seed; an item's randomness is a function of ``(seed, epoch, index)``.
        mirror: mirrors frame features (the video encoder's ``mirror_frozen()``); ``None`` = flip the last axis.
    """

    def __init__(self, cache: FrozenFrameCache, records: Sequence, num_classes: int, *, sampling: SamplingConfig,
                 hflip: bool, multi_label: bool = True, seed: int = 0,
                 mirror: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if len(cache) != len(records):
            raise ValueError(f"the cache has {len(cache)} rows for {len(records)} records")
        self.cache = cache
        self.records = list(records)
        self.num_classes = num_classes
        self.sampling = sampling
        self.hflip = hflip
        self.multi_label = multi_label
        self.seed = seed
        self.mirror = mirror or _flip_width

    def __len__(self) -> int:
        return len(self.records)

    def _frames(self, index: int, epoch: int) -> dict[str, torch.Tensor]:
        """The cached outputs of the frames this item uses."""
        c, T = self.cache, self.sampling.num_frames
        rows = {k: t[index] for k, t in (("features", c.features), ("visual", c.visual)) if t is not None}
        if not c.train:  # the test views, in order: (V*T, ...) -> (V, T, ...), or (T, ...) for one view
            views = c.frames // T
            return {k: (t.unflatten(0, (views, T)) if views > 1 else t) for k, t in rows.items()}
        rng, g = sample_seeds(self.seed, epoch, index)
        per_view = c.frames // c.views
        pick = torch.tensor(sample_indices(self.sampling, per_view, train=True, rng=rng))
        if c.views > 1:  # one of the cached spatial views, then the frames within it
            pick = pick + per_view * int(rng.integers(c.views))
        out = {k: t[pick] for k, t in rows.items()}
        if self.hflip and "features" in out and bool(torch.rand((), generator=g) < 0.5):
            out["features"] = self.mirror(out["features"])
        return out

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        record = self.records[index]
        if not bool(self.cache.valid[index]):
            return {"skipped": True, "uid": record.uid, "index": index, "error": "unreadable when the cache was built"}
        return {"frozen": self._frames(index, epoch), "target": clip_target(record, self.num_classes, self.multi_label),
                "index": index, "uid": record.uid}

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Stack the readable items of a batch (see ``collate_cached``)."""
        return collate_cached(samples)


def _flip_width(t: torch.Tensor) -> torch.Tensor:
    """Mirror feature maps (..., h, w) left-right."""
    return t.flip(-1)


def collate_cached(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack items into ``frozen`` (a :class:`FrozenFrames` batch), ``target``, ``index``, ``uid``, ``skipped``."""
    good = [s for s in samples if not s.get("skipped")]
    skipped = [s["uid"] for s in samples if s.get("skipped")]
    frozen = None
    if good:
        keys = good[0]["frozen"].keys()
        frozen = FrozenFrames(**{k: torch.stack([s["frozen"][k] for s in good]) for k in keys})
    return {
        "frozen": frozen,
        "target": torch.stack([s["target"] for s in good]) if good else torch.empty(0),
        "index": torch.tensor([s["index"] for s in good], dtype=torch.int64),
        "uid": [s["uid"] for s in good],
        "skipped": skipped,
    }
