"""The default model learns: a seeded msqnet-lite run on a small synthetic set must beat chance by a
wide margin, and its single-frame twin must score clearly lower (the classes are defined by motion).

This is the regression test of learning itself: a change that breaks the video encoder, the readout,
the cache or the optimisation fails it. It trains the demo's recipe with the ``msqnet-lite`` preset's own
video encoder (frozen ImageNet EfficientNet-Lite0 features) on 240 clips for 15 epochs, at 64 px, from
cached frozen features, on one intra-op thread (``threads=1``): 100 s on 2 CPU cores that other processes
also load (load average 5; 23 s of it renders the clips). Two threads are 1.4x as fast with a core to spare
(130 training clips/s against 95), but once other processes hold the cores each of the run's thousands of
small operations waits for a descheduled thread: 4 clips/s against 80, and 20 minutes for the test.
The demo's pixel encoder learns from scratch and needs the demo's 2,160 clips: on these 240 it reaches only
0.22 / 0.23 (seeds 1 / 2; T=1: 0.18 / 0.17), too close to chance to tell a broken model from a working one.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from msqnet.engine.demo import DEMO_RECIPE
from msqnet.engine.config import load_train_config
from msqnet.engine.trainer import train
from msqnet.synth import SynthConfig, generate_dataset

# Measured on the 2-core development machine, threads=1 (mAP of the 12 seen classes on test_seen, chance 0.17),
# training seed 1 (the test's) / seed 2: T=8 0.287 / 0.292, T=1 0.175 / 0.174 (0.61x / 0.60x of T=8). The bounds
# leave room for other CPUs' arithmetic and catch a model that falls back towards chance or stops using motion.
MIN_MAP = 0.24
MAX_SINGLE_FRAME_RATIO = 0.8
# The msqnet-lite preset's video encoder in place of the demo recipe's pixel encoder.
PRESET_ENCODER = ["video_encoder.config.backbone=efficientnet_lite0", "video_encoder.config.pixel_patch=null"]


@pytest.fixture(scope="module")
def small_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 training clips and 120 test clips of the synthetic benchmark at the demo's 64 px."""
    out = tmp_path_factory.mktemp("learning") / "synth"
    generate_dataset(out, SynthConfig(clips=240, test_clips=120, size=64, seed=3), progress=False)
    return out


def _train_lite(data: Path, out: Path, frames: int) -> float:
    """The demo's recipe, the preset's encoder, ``frames`` frames per clip: the seen-class mAP on test_seen."""
    overrides = [f"data.annotations={data}", f"output_dir={out / f't{frames}'}", f"cache_dir={out / 'cache'}",
                 f"zero_shot={data / 'splits' / 'zero_shot.json'}", "val_fraction=0", "eval_splits=[test_seen]",
                 "eval_every=0", "epochs=15", "batch_size=16", "seed=1", "threads=1"]
    model_overrides = [*load_train_config(DEMO_RECIPE).model_overrides, *PRESET_ENCODER, f"num_frames={frames}"]
    overrides += [f"sampling.num_frames={frames}", f"model_overrides={json.dumps(model_overrides)}"]
    result = train(load_train_config(DEMO_RECIPE, overrides), progress=False)
    return result.final_metrics["test_seen"]["map"]


def test_the_default_model_learns_motion(small_synth, tmp_path, restore_threads):
    video = _train_lite(small_synth, tmp_path, frames=8)
    single_frame = _train_lite(small_synth, tmp_path, frames=1)  # reuses the training cache: another T, same frames
    assert video >= MIN_MAP, f"msqnet-lite reached mAP {video:.3f} on test_seen; it must reach {MIN_MAP}"
    assert single_frame <= MAX_SINGLE_FRAME_RATIO * video, (
        f"one frame per clip scored {single_frame:.3f} against {video:.3f} for 8 frames: motion is not being used")
