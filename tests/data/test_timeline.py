"""Timeline windows on real timestamps, streamed from one decode with bounded memory."""
from __future__ import annotations

import pytest
import torch

from msqnet.data import TestView, VideoInfo, Window, WindowClips, probe, read_test_clips, timeline_windows

from ..videos import VFR_COLOURS, write_moving_video, write_vfr_video


def test_windows_of_a_constant_rate_video_cover_it_with_full_length_windows():
    info = VideoInfo(num_frames=795, fps=10.0, duration=79.5, width=8, height=8)
    windows = timeline_windows(info, window=3.0, stride=2.0)
    assert windows[0] == Window(0, 30, 0.0, 3.0) and windows[1] == Window(20, 50, 2.0, 5.0)
    assert windows[-1] == Window(765, 795, 76.5, 79.5)  # moved back to end at the end of the video
    assert all(w.end_frame - w.start_frame == 30 and w.end_s - w.start_s == pytest.approx(3.0) for w in windows)


def test_a_video_shorter_than_a_window_gives_one_window_over_all_of_it():
    info = VideoInfo(num_frames=12, fps=24.0, duration=0.5, width=8, height=8)
    assert timeline_windows(info, window=2.0, stride=1.0) == [Window(0, 12, 0.0, 0.5)]


def test_windows_of_a_variable_rate_video_hold_the_frames_shown_in_their_seconds(tmp_path):
    video = write_vfr_video(tmp_path / "vfr.mp4")  # 30, 5, 30, 30 fps seconds: 95 frames, 4.0 s
    info = probe(video)
    assert info.timestamps is not None and info.num_frames == 95
    windows = timeline_windows(info, window=1.0, stride=1.0)
    assert [(w.start_frame, w.end_frame) for w in windows] == [(0, 30), (30, 35), (35, 65), (65, 95)]
    assert [(w.start_s, w.end_s) for w in windows] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, pytest.approx(4.0))]


def test_streamed_window_clips_show_only_their_seconds_colour(tmp_path):
    video = write_vfr_video(tmp_path / "vfr.mp4")
    clips = list(WindowClips(video, TestView(), num_frames=4, size=32, window=1.0, stride=1.0))
    assert len(clips) == 4
    for (_, clip), colour in zip(clips, VFR_COLOURS):
        mean = clip.float().mean(dim=(0, 1, 3, 4))  # (3,) over views, frames and pixels
        assert torch.allclose(mean, torch.tensor(colour, dtype=torch.float32), atol=12), (mean, colour)


def test_streamed_windows_equal_each_window_decoded_on_its_own(shared_videos):
    video = shared_videos / "bikes.mp4"  # 250 frames, 10 s
    view = TestView(clips=2, crops=3, short_side=40)
    stream = WindowClips(video, view, num_frames=4, size=32, window=2.0, stride=1.5)
    for window, clip in stream:
        alone = read_test_clips(video, view, num_frames=4, size=32, first=window.start_frame, last=window.end_frame)
        assert torch.equal(clip, alone)


def test_frames_held_do_not_grow_with_the_video_length(tmp_path):
    peaks = []
    for seconds in (8, 32):
        video = write_moving_video(tmp_path / f"{seconds}s.mp4", seconds, size=(96, 64))
        stream = WindowClips(video, TestView(), num_frames=4, size=32, window=2.0, stride=1.0)
        assert sum(1 for _ in stream) == seconds - 1
        peaks.append(stream.peak_frames_held)
    # A window needs 4 frames and overlaps the next one: at most two windows' frames are ever held.
    assert peaks[0] == peaks[1] <= 8
