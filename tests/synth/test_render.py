"""The rendered pixels show the stored motion: actors are where their trajectories say, and a clip
labelled approaching / moving away / walking / jumping looks like it in the frames themselves."""
from __future__ import annotations

import numpy as np
import pytest

from msqnet.synth.generate import SynthConfig, sample_split_clip
from msqnet.synth.render import render_clip
from msqnet.synth.scene import ClipSpec

SIZE = 64
CFG = SynthConfig(frames=8, size=SIZE, seed=3)


def _single_actor_clip(action: str) -> ClipSpec:
    """The first test_seen clip with exactly one actor doing exactly ``action``."""
    for i in range(2000):
        spec = sample_split_clip(CFG, "test_seen", i)
        if len(spec.actors) == 1 and spec.actors[0].actions == (action,):
            return spec
    raise AssertionError(f"no single-actor {action!r} clip in 2000 draws")


def _actor_mask(spec: ClipSpec) -> np.ndarray:
    """(T, H, W) bool: pixels where the clip differs from its own background rendered alone."""
    frames = render_clip(spec, SIZE).frames.astype(np.int32)
    empty = render_clip(ClipSpec(spec.frames, spec.background, []), SIZE).frames.astype(np.int32)
    return np.abs(frames - empty).max(axis=-1) > 12


def test_an_approaching_actor_covers_more_pixels_as_the_clip_goes_on() -> None:
    area = _actor_mask(_single_actor_clip("approaching the camera")).sum(axis=(1, 2))
    assert area[-1] >= 1.8 * area[0]


def test_an_actor_moving_away_covers_fewer_pixels_as_the_clip_goes_on() -> None:
    area = _actor_mask(_single_actor_clip("moving away from the camera")).sum(axis=(1, 2))
    assert area[-1] <= area[0] / 1.8


def test_a_walking_actor_moves_across_the_frame_the_way_it_faces() -> None:
    spec = _single_actor_clip("walking")
    mask = _actor_mask(spec)
    cols = np.arange(SIZE)
    centre = [(m.sum(axis=0) * cols).sum() / m.sum() / SIZE for m in mask]
    assert (centre[-1] - centre[0]) * spec.actors[0].track.direction >= 0.2


def test_a_jumping_actor_leaves_the_ground_and_lands_again() -> None:
    spec = _single_actor_clip("jumping")
    mask = _actor_mask(spec)
    bottom = np.array([np.nonzero(m.any(axis=1))[0].max() for m in mask])  # lowest actor row per frame
    peak = int(np.argmax(spec.actors[0].track.lift))
    assert bottom[0] - bottom[peak] >= 4, "its lowest point rises at the top of the jump"
    assert abs(int(bottom[-1]) - int(bottom[0])) <= 1, "and is back on the ground at the end"


@pytest.mark.parametrize("index", range(6))
def test_stored_boxes_match_the_drawn_actors(index: int) -> None:
    spec = sample_split_clip(CFG, "train", index)
    spec.actors = spec.actors[:1]  # one actor, so the mask is its own
    rendered = render_clip(spec, SIZE)
    mask = _actor_mask(spec)
    for t in range(spec.frames):
        ys, xs = np.nonzero(mask[t])
        if len(xs) == 0:  # entirely off screen
            continue
        drawn = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) / SIZE
        box = np.clip(rendered.boxes[0, t], 0.0, 1.0)
        assert np.abs(drawn - box).max() <= 2.5 / SIZE, f"frame {t}: drawn {drawn} vs stored {box}"
