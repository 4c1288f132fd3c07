"""Dataset adapters: one module per annotation format, all yielding ``ClipRecord`` lists.

``load_split(cfg, split)`` reads one split of the dataset ``cfg`` describes. Split names per format:

=================  ======================================================================
format             splits
=================  ======================================================================
generic            any ``<name>.csv`` / ``<name>.jsonl`` in the annotation folder
animal_kingdom     ``train``, ``test``
charades           ``train``, ``test``
thumos14           ``val``, ``test``
multithumos        ``train`` (= ``val``, the JSON's "training" subset), ``test``
hmdb51             ``train``, ``test`` (of split ``fold`` 1-3)
hockey             ``train``, ``test`` (test = held-out part ``fold``, default 6)
=================  ======================================================================
"""
from __future__ import annotations

from types import ModuleType

from ..config import DataConfig
from . import animal_kingdom, charades, generic, hmdb51, hockey, thumos14
from .base import AnnotationError, DatasetSplit, Problem

__all__ = ["AnnotationError", "DatasetSplit", "Problem", "load_split", "available_splits", "ADAPTERS"]


class _MultiThumos:
    """Adapter facade for the ``multithumos`` format, which lives in ``thumos14``."""

    load = staticmethod(thumos14.load_multithumos)
    splits = staticmethod(thumos14.multithumos_splits)


ADAPTERS: dict[str, ModuleType | type] = {
    "generic": generic,
    "animal_kingdom": animal_kingdom,
    "charades": charades,
    "thumos14": thumos14,
    "multithumos": _MultiThumos,
    "hmdb51": hmdb51,
    "hockey": hockey,
}


def load_split(cfg: DataConfig, split: str) -> DatasetSplit:
    """Read, check and return one split of the dataset described by ``cfg``.

    Raises AnnotationError (``<file>:<line>: <problem>; expected <what>``) for a bad annotation;
    with ``cfg.on_error == 'skip'`` bad lines are skipped and listed in ``DatasetSplit.problems``
    instead (a missing, empty or unreadable file still raises).
    """
    return ADAPTERS[cfg.format].load(cfg, split)


def available_splits(cfg: DataConfig) -> list[str]:
    """The split names ``load_split`` accepts for ``cfg``."""
    return ADAPTERS[cfg.format].splits(cfg)
