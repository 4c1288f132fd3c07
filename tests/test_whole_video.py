"""Whole-video labels of long videos: windows as long as the training clips, aggregated per label."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import msqnet
from msqnet.checkpoint import save_model
from msqnet.data.decode import probe
from msqnet.data.timeline import timeline_windows
from msqnet.data.views import read_test_clips
from msqnet.models import create_model

from .models.tiny import tiny_config
from .videos import ACTION_SPAN, write_one_action_video

CLASSES = ["walking", "running", "eating"]
ACTION = ACTION_SPAN


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
    """3 s: shorter than twice the model's 2-second training clips."""
    return write_one_action_video(tmp_path_factory.mktemp("short") / "short.mp4", seconds=3.0)


def _model(tmp_path, *, multi_label=True, clip_seconds=2.0):
    torch.manual_seed(0)
    model = create_model(tiny_config(), CLASSES, multi_label=multi_label)
    model.clip_seconds = clip_seconds
    return msqnet.load_model(save_model(model, tmp_path / "ckpt"))  # recorded in the checkpoint, read back


def test_a_long_action_video_is_scored_in_windows_of_the_training_clip_length(tmp_path, long_action_video):
    pred = _model(tmp_path).predict(long_action_video, precision="fp32")
    assert pred.view == "windows" and pred.window_seconds == 2.0 and pred.aggregate == "max"
    assert len(pred.windows) == 10 and all(w.end - w.start == pytest.approx(2.0) for w in pred.windows)
    assert [w.start for w in pred.windows[:9]] == [2.0 * k for k in range(9)]


def test_whole_video_score_of_a_multi_label_model_is_the_max_over_windows(tmp_path, long_action_video):
    pred = _model(tmp_path).predict(long_action_video, precision="fp32")
    assert np.array_equal(pred.probabilities, np.max([w.probabilities for w in pred.windows], axis=0))


def test_the_action_in_one_part_only_reaches_the_whole_video_score_from_its_window(tmp_path, long_action_video):
    model = _model(tmp_path)
    pred = model.predict(long_action_video, precision="fp32")
    still = [w for w in pred.windows if w.end <= ACTION[0] or w.start >= ACTION[1]]
    action = [w for w in pred.windows if w.start < ACTION[1] and w.end > ACTION[0]]
    assert len(action) == 1 and len(still) == 9
    # The still windows are the same grey frames: one score; the action window scores otherwise ...
    assert np.allclose([w.probabilities for w in still], still[0].probabilities, atol=1e-3)  # codec noise only
    assert np.abs(action[0].probabilities - still[0].probabilities).max() > 0.01
    # ... and is exactly the model on that window's frames.
    w = timeline_windows(probe(long_action_video), 2.0, 2.0)[4]
    clips = read_test_clips(long_action_video, model.test_view, num_frames=4, size=32, first=w.start_frame,
                            last=w.end_frame)
    direct = model.predict(clips[0], precision="fp32").probabilities  # (T, 3, S, S) uint8, one view
    assert np.allclose(action[0].probabilities, direct, atol=1e-5)
    # The one-clip view of the same file sees 4 frames 5 s apart: none of them in the action.
    whole = model.predict(long_action_video, precision="fp32", view="whole")
    assert whole.view == "whole" and np.allclose(whole.probabilities, still[0].probabilities, atol=1e-3)


def test_a_short_video_keeps_the_one_clip_view(tmp_path, short_video):
    pred = _model(tmp_path).predict(short_video, precision="fp32")
    assert pred.view == "whole" and pred.windows == [] and pred.aggregate is None


def test_a_single_label_model_averages_the_windows_softmax(tmp_path, long_action_video):
    pred = _model(tmp_path, multi_label=False).predict(long_action_video, precision="fp32")
    assert pred.aggregate == "mean"
    assert np.allclose(pred.probabilities, np.mean([w.probabilities for w in pred.windows], axis=0))
    assert pred.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_checkpoint_without_a_clip_duration_scores_one_clip_as_before(tmp_path, long_action_video):
    pred = _model(tmp_path, clip_seconds=None).predict(long_action_video, precision="fp32")
    assert pred.view == "whole" and pred.windows == []


def test_view_windows_without_any_window_length_is_a_clear_error(tmp_path, long_action_video):
    with pytest.raises(ValueError, match="window length"):
        _model(tmp_path, clip_seconds=None).predict(long_action_video, view="windows")


def test_the_cli_says_the_view_and_can_force_one_clip(tmp_path, long_action_video, capsys):
    from msqnet.cli import main

    torch.manual_seed(0)
    model = create_model(tiny_config(), CLASSES)
    model.clip_seconds = 2.0
    ckpt = save_model(model, tmp_path / "ckpt")
    assert main(["predict", str(long_action_video), "--checkpoint", str(ckpt), "--quiet", "--num-workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "max over 10 windows of 2 s" in out and "scores uncalibrated" in out
    assert main(["predict", str(long_action_video), "--checkpoint", str(ckpt), "--quiet", "--num-workers", "0",
                 "--view", "whole"]) == 0
    assert "one clip over the video" in capsys.readouterr().out
