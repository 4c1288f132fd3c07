"""Same seed and arguments give the same dataset, byte for byte, whatever the number of workers;
videos are lossless so the decoded frames equal the rendered ones."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from msqnet.synth import SynthConfig, generate_dataset, read_video
from msqnet.synth.generate import sample_split_clip
from msqnet.synth.render import render_clip
from msqnet.synth.video import rgb_to_yuv420, write_mp4

from .conftest import TINY

ANNOTATIONS = ["classes.json", "train.csv", "test_seen.csv", "test_unseen_actor.csv",
               "splits/zero_shot.json", "splits/actors.json", "meta/trajectories.jsonl", "datasheet.md",
               "generator.json"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_worker_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth2") / "tiny"
    generate_dataset(out, SynthConfig(**{**TINY, "workers": 2}), progress=False)
    return out


def test_same_seed_gives_byte_identical_annotations_with_any_worker_count(tiny_dataset: Path,
                                                                          two_worker_copy: Path) -> None:
    one, two = _files(tiny_dataset), _files(two_worker_copy)
    for name in ANNOTATIONS:
        assert one[name] == two[name], name
    assert one.keys() == two.keys()


def test_same_seed_gives_identical_decoded_frames(tiny_dataset: Path, two_worker_copy: Path) -> None:
    videos = sorted((tiny_dataset / "videos").glob("*.mp4"))
    assert len(videos) == 32
    for video in videos:
        assert np.array_equal(read_video(video), read_video(two_worker_copy / "videos" / video.name)), video.name


def test_a_different_seed_gives_different_clips(tiny_dataset: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate_dataset(other, SynthConfig(**{**TINY, "clips": 4, "test_clips": 1, "seed": 1}), progress=False)
    a = (tiny_dataset / "train.csv").read_text().splitlines()[1:5]
    b = (other / "train.csv").read_text().splitlines()[1:5]
    assert [r.split(",", 2)[2] for r in a] != [r.split(",", 2)[2] for r in b]  # the labels differ
    assert not np.array_equal(read_video(tiny_dataset / "videos/train_00000.mp4"),
                              read_video(other / "videos/train_00000.mp4"))


def test_lossless_mp4_decodes_to_exactly_the_yuv_planes_written(tmp_path: Path) -> None:
    frames = render_clip(sample_split_clip(SynthConfig(frames=6), "train", 0), 48).frames
    path = tmp_path / "clip.mp4"
    write_mp4(path, frames, fps=8, crf=0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray() for f in container.decode(stream)]  # (H * 3/2, W) I420
    assert len(decoded) == len(frames)
    for t, plane in enumerate(decoded):
        assert np.array_equal(plane, rgb_to_yuv420(frames[t])), f"frame {t}"
    rgb = read_video(path).astype(np.int32)
    # Back in RGB only the rounding of 8-bit limited-range 4:2:0 remains (an exact float inverse of
    # these planes is off by ~2.7 levels on average on this textured clip).
    assert np.abs(rgb - frames).mean() < 4.0


def test_odd_frame_sizes_are_rejected_by_the_writer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        write_mp4(tmp_path / "x.mp4", np.zeros((2, 33, 32, 3), np.uint8), fps=8)
    assert not list(tmp_path.iterdir()), "nothing, not even a temp file, is left behind"
