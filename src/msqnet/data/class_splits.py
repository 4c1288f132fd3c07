"""Zero-shot class splits: which classes a model trains on (seen) and which it recognises from names alone.

Split files are JSON: ``{"name", "dataset", "num_classes", "seen": [...], "unseen": [...]}`` with class
ids (ints, the dataset's class order) or class names. The package ships the reference's deterministic
Charades splits (50:50 = classes 0-77 seen / 78-156 unseen; 75:25 = 0-116 / 117-156) and seeded
random splits for the other benchmarks; a synthetic dataset carries its own in
``splits/zero_shot.json``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from ..utils import quote, read_json

__all__ = [
    "ZeroShotSplit",
    "list_zero_shot_splits",
    "load_zero_shot_split",
    "restrict_split",
    "random_split",
    "harmonic_mean",
]


@dataclass(frozen=True)
class ZeroShotSplit:
    """Seen and unseen class ids of one dataset's class list."""

    name: str
    seen: tuple[int, ...]
    unseen: tuple[int, ...]

    def names(self, class_names: Sequence[str]) -> tuple[list[str], list[str]]:
        """Seen and unseen class names."""
        return [class_names[i] for i in self.seen], [class_names[i] for i in self.unseen]


def list_zero_shot_splits() -> list[str]:
    """Names of the split files shipped with msqnet (``charades_50_50``, ``animal_kingdom_75_25``, ...)."""
    folder = resources.files("msqnet") / "splits"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def _resolve(ref: int | str, class_names: Sequence[str], index: dict[str, int], where: str) -> int:
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise ValueError(f"{where}: expected a class id or name, got {quote(ref)}")
    if isinstance(ref, int):
        if not 0 <= ref < len(class_names):
            raise ValueError(f"{where}: class id {ref} out of range; the dataset has {len(class_names)} classes")
        return ref
    key = ref.strip().lower()
    if key not in index:
        raise ValueError(f"{where}: unknown class name {quote(ref)}")
    return index[key]


def load_zero_shot_split(name_or_path: str | os.PathLike, class_names: Sequence[str]) -> ZeroShotSplit:
    """Read a shipped split (by name) or a split file, checked against the dataset's class names."""
    name = str(name_or_path)
    if name in list_zero_shot_splits():
        path = Path(str(resources.files("msqnet") / "splits" / f"{name}.json"))
    else:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: neither a shipped zero-shot split ({', '.join(list_zero_shot_splits())}) "
                                    "nor a split file")
    data = read_json(path, "zero-shot split file", "a split file")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object {{\"seen\": [...], \"unseen\": [...]}}, got {type(data).__name__}")
    for key in ("seen", "unseen"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ValueError(f"{path}: '{key}' must be a non-empty list of class ids or names")
    expected = data.get("num_classes")
    if expected is not None and expected != len(class_names):
        raise ValueError(f"{path}: written for {expected} classes, the dataset has {len(class_names)}")
    index = {n.strip().lower(): i for i, n in enumerate(class_names)}
    seen = [_resolve(r, class_names, index, f"{path}: seen[{i}]") for i, r in enumerate(data["seen"])]
    unseen = [_resolve(r, class_names, index, f"{path}: unseen[{i}]") for i, r in enumerate(data["unseen"])]
    overlap = sorted(set(seen) & set(unseen))
    if overlap:
        raise ValueError(f"{path}: classes both seen and unseen: {[class_names[i] for i in overlap][:5]}")
    return ZeroShotSplit(data.get("name", path.stem), tuple(sorted(set(seen))), tuple(sorted(set(unseen))))


def random_split(num_classes: int, seen_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded random seen/unseen partition of ``range(num_classes)``."""
    perm = np.random.default_rng(seed).permutation(num_classes)
    n_seen = round(num_classes * seen_fraction)
    return sorted(int(i) for i in perm[:n_seen]), sorted(int(i) for i in perm[n_seen:])


def harmonic_mean(a: float, b: float) -> float:
    """Harmonic mean of seen and unseen scores (0 when either is 0)."""
    return 0.0 if a <= 0 or b <= 0 else 2 * a * b / (a + b)


def restrict_split(split, keep: Sequence[int]):
    """A copy of a ``DatasetSplit`` labelled with only the classes ``keep`` (renumbered 0..K-1).

    Labels of other classes are dropped from every clip; clips are kept (a clip whose actions are
    all unseen becomes a clip with no action of the kept classes, a true negative for them).
    """
    keep = list(keep)
    new_id = {old: new for new, old in enumerate(keep)}
    records = [replace(r, labels=tuple(sorted(new_id[l] for l in r.labels if l in new_id))) for r in split.records]
    descriptions = [split.class_descriptions[i] for i in keep] if split.class_descriptions else None
    segments = None
    if split.segments:
        segments = {k: [new_id[i] for i in v if i in new_id] for k, v in split.segments.items()}
        segments = {k: v for k, v in segments.items() if v} or None
    return replace(split, records=records, class_names=[split.class_names[i] for i in keep],
                   class_descriptions=descriptions, segments=segments)
