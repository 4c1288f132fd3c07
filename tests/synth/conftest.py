"""Tiny generated datasets shared by the synth tests (48 px, 8 frames: a fraction of a second each)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from msqnet.synth import SynthConfig, generate_dataset
from msqnet.synth.generate import TRAJECTORIES

TINY = dict(clips=16, test_clips=8, size=48, frames=8, workers=1)


def read_trajectories(out_dir: Path) -> list[dict]:
    """Every clip's stored trajectory record."""
    return [json.loads(line) for line in (out_dir / TRAJECTORIES).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete tiny dataset (mp4, default splits), generated once per test session."""
    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate_dataset(out, SynthConfig(**TINY), progress=False)
    return out
