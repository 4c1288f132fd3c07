"""Engine test fixtures: a tiny generated dataset (real mp4 files) and tiny real models."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from msqnet.config_loader import to_dict, write_config_file
from msqnet.engine.config import TrainConfig
from msqnet.config_loader import from_dict
from msqnet.synth import SynthConfig, generate_dataset
from ..models.tiny import tiny_config

REPO = Path(__file__).resolve().parents[2]
# 16 train clips and 8 per test split, 32 px, 8 frames: generated in about a second.
TINY_SYNTH = dict(clips=16, test_clips=8, size=32, frames=8, workers=1)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic benchmark in the generic format, plus ``test_odd.csv`` (7 clips: uneven DDP shards)."""
    out = tmp_path_factory.mktemp("engine_synth") / "synth"
    generate_dataset(out, SynthConfig(**TINY_SYNTH), progress=False)
    with open(out / "test_seen.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    with open(out / "test_odd.csv", "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows[:8])  # header + 7 clips
    return out


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny TimeSformer + CLIP-vision MSQNet config file (random init, T=4, 32 px)."""
    path = tmp_path_factory.mktemp("engine_model") / "tiny.yaml"
    write_config_file(tiny_config("timesformer"), path)
    return path


@pytest.fixture(scope="session")
def tiny_frames_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``frame_transformer`` MSQNet config file (frozen EfficientNet-Lite0 stages, T=4, 32 px)."""
    path = tmp_path_factory.mktemp("engine_model") / "tiny_frames.yaml"
    write_config_file(tiny_config("frames"), path)
    return path


def make_config(synth_dir: Path, model_file: Path, out: Path, **fields: Any) -> TrainConfig:
    """A fast training config on the tiny dataset; ``fields`` override any key (nested as dicts)."""
    data: dict[str, Any] = {
        "model": str(model_file),
        "data": {"format": "generic", "annotations": str(synth_dir)},
        "train_split": "train",
        "eval_splits": ["test_seen"],
        "val_fraction": 0.0,  # tests that pick a best checkpoint hold out a val split themselves
        "sampling": {"num_frames": 4},
        "transform": {"size": 32},
        "optim": {"lr": 1e-3},
        "epochs": 1,
        "batch_size": 4,
        "num_workers": 0,
        "threads": 1,
        "output_dir": str(out),
        "log_every": 1,
        "tensorboard": False,
    }
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return from_dict(TrainConfig, data)


def write_train_config(cfg: TrainConfig, path: Path) -> Path:
    """Save a TrainConfig as YAML for the CLI."""
    write_config_file(to_dict(cfg), path)
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m msqnet.cli.__init__``-equivalent ``msqnet`` in a fresh process."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    code = "import sys; from msqnet.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=REPO)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, tiny_model_file: Path) -> Path:
    """A finished two-step run (8 clips, batch 4) on the seen classes of the zero-shot split, with TensorBoard; a
    half of the training clips is held out as ``val``, which picks ``best`` and its decision thresholds."""
    from msqnet.engine.trainer import train

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    cfg = make_config(synth_dir, tiny_model_file, out, clips_per_epoch=8, tensorboard=True, val_fraction=0.5,
                      zero_shot=str(synth_dir / "splits" / "zero_shot.json"))
    train(cfg, progress=False)
    return out
