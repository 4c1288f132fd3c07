"""The test-time view: which frames, resize and crops a model sees at test time, from one function."""
from __future__ import annotations

import pytest
import torch

from msqnet.config_loader import ConfigError, from_dict
from msqnet.data import ClipDataset, ClipRecord, SamplingConfig, TestView, TransformConfig, read_frames, read_test_clips
from msqnet.data.transforms import center_crop, resize_short_side, three_crop


def test_a_view_from_training_configs_makes_the_short_side_explicit():
    view = TestView.from_configs(SamplingConfig(strategy="dense", stride=3, test_clips=2, test_crops=3, aggregate="max"),
                                 TransformConfig(size=32))
    assert view == TestView(strategy="dense", stride=3, short_side=37, clips=2, crops=3, aggregate="max")
    assert view.num_views == 6


def test_the_view_holds_no_frame_count_or_image_size_of_its_own():
    with pytest.raises(ConfigError, match="num_frames"):
        from_dict(TestView, {"num_frames": 8})
    assert TestView().resize_to(224) == 256 and TestView(short_side=300).resize_to(224) == 300


def test_invalid_view_fields_are_config_errors_naming_the_field():
    with pytest.raises(ConfigError, match="test_crops"):
        TestView(crops=2)
    with pytest.raises(ConfigError, match="short_side"):
        TestView(short_side=20).transform_config(32)


def test_read_test_clips_resizes_the_short_side_then_centre_crops(shared_videos):
    video = shared_videos / "bikes.mp4"  # 640x272, 250 frames
    clips = read_test_clips(video, TestView(short_side=48), num_frames=4, size=32)
    idx = TestView().frame_indices(250, 4)
    expected = center_crop(read_frames(video, idx, size=48), 32)
    assert clips.shape == (1, 4, 3, 32, 32) and torch.equal(clips[0], expected)


def test_multi_view_clips_are_clip_major_k_clips_times_three_crops(shared_videos):
    video = shared_videos / "bikes.mp4"
    view = TestView(clips=2, crops=3, short_side=40)
    clips = read_test_clips(video, view, num_frames=4, size=32)
    idx = view.frame_indices(250, 4)
    frames = resize_short_side(read_frames(video, idx, size=40), 40)
    assert clips.shape == (6, 4, 3, 32, 32)
    assert torch.equal(clips[3:6], three_crop(frames[4:8], 32))  # clip 1, crops left / centre / right


def test_the_dataset_builds_its_test_clips_with_the_same_function(shared_videos):
    record = ClipRecord(uid="c", source=str(shared_videos / "carphone_pristine.mp4"), labels=(0,), start=1.0, end=3.0)
    sampling = SamplingConfig(num_frames=4, test_clips=2, test_crops=3)
    transform = TransformConfig(size=32, short_side=44)
    item = ClipDataset([record], 2, sampling=sampling, transform=transform, train=False)[0]["video"]
    # carphone is 29.97 fps: [1 s, 3 s) are frames 30..89
    expected = read_test_clips(record.source, TestView.from_configs(sampling, transform), num_frames=4, size=32,
                               first=30, last=90)
    assert torch.equal(item, expected)
