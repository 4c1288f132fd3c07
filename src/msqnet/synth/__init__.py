"""A procedurally rendered, actor-agnostic, multi-label video action benchmark.

1-3 articulated actors of six body plans (biped, quadruped, bird, snake, spider, octopus) perform
15 motion-defined actions, each in their own way, on textured and sometimes moving backgrounds.
Splits test unseen actors (held-out morphologies) and unseen classes (zero-shot). See
``generate.py`` for the folder layout and ``datasheet.py`` for the chance levels.

    >>> from msqnet.synth import SynthConfig, generate_dataset
    >>> summary = generate_dataset("data/synth", SynthConfig(clips=1500, size=112, frames=16))
"""
from .actions import ACTION_CLASSES, CLASS_NAMES
from .actors import MORPHOLOGIES
from .generate import CSV_COLUMNS, FORMAT_VERSION, SPLITS, SynthConfig, SynthSummary, generate_dataset
from .video import read_video

__all__ = [
    "ACTION_CLASSES",
    "CLASS_NAMES",
    "MORPHOLOGIES",
    "CSV_COLUMNS",
    "FORMAT_VERSION",
    "SPLITS",
    "SynthConfig",
    "SynthSummary",
    "generate_dataset",
    "read_video",
]
