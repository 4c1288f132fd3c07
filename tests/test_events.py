"""Behaviour events from timelines: hysteresis, gaps and durations; known event times in generated videos."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import msqnet
from msqnet.checkpoint import save_model
from msqnet.cli import main
from msqnet.data.boris import read_boris_project
from msqnet.inference.events import EventOptions, events_of, label_events, timeline_cells
from msqnet.metrics.thresholds import DecisionThresholds
from msqnet.models import create_model

from .models.tiny import tiny_config
from .videos import ACTION_SPAN as ACTION

CLASSES = ["walking", "running", "eating"]

EDGES = np.arange(0.0, 11.0)  # ten 1-second cells


def test_an_event_spans_the_cells_above_the_threshold():
    scores = np.array([0.1, 0.1, 0.8, 0.9, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1])
    (e,) = label_events("x", EDGES, scores, 0.5)
    assert (e.start, e.end, e.peak) == (2.0, 5.0, 0.9) and e.mean == pytest.approx(0.8)


def test_hysteresis_keeps_a_wavering_score_one_event():
    scores = np.array([0.1, 0.6, 0.48, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert len(label_events("x", EDGES, scores, 0.5, EventOptions(hysteresis=0.0))) == 2
    (e,) = label_events("x", EDGES, scores, 0.5, EventOptions(hysteresis=0.05))
    assert (e.start, e.end) == (1.0, 4.0)


def test_events_closer_than_the_minimum_gap_merge_and_short_ones_drop():
    scores = np.array([0.9, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.9])
    assert [(e.start, e.end) for e in label_events("x", EDGES, scores, 0.5, EventOptions(min_gap=2.5))] == \
        [(0.0, 5.0), (9.0, 10.0)]
    assert [(e.start, e.end) for e in label_events("x", EDGES, scores, 0.5, EventOptions(min_duration=1.5))] == \
        [(3.0, 5.0)]


def test_overlapping_windows_stand_for_the_span_around_their_centres():
    spans = [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]
    assert timeline_cells(spans).tolist() == [0.0, 1.5, 2.5, 4.0]


def test_bad_event_options_are_clear_errors():
    with pytest.raises(ValueError, match="min_gap"):
        EventOptions(min_gap=-1)


# --- a generated video whose one event's time is known -----------------------------------------


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, long_action_video):
    """A tiny real model and a threshold for the label its score rises most for while the square moves
    (between that label's score on the still part and in the action), recorded in the checkpoint."""
    torch.manual_seed(0)
    model = create_model(tiny_config(), CLASSES)
    pred = model.predict(long_action_video, window=1.0, stride=0.5, precision="fp32")
    probs = np.stack([w.probabilities for w in pred.windows])  # (N, C)
    still = probs[[i for i, w in enumerate(pred.windows) if w.end <= ACTION[0] - 1]].mean(axis=0)
    inside = probs[[i for i, w in enumerate(pred.windows) if ACTION[0] <= w.start and w.end <= ACTION[1]]].min(axis=0)
    c = int(np.argmax(inside - still))
    assert inside[c] - still[c] > 0.02  # the model does see the square move
    label = CLASSES[c]
    model.decision_thresholds = DecisionThresholds({label: float((still[c] + inside[c]) / 2)}, "synthetic", 0,
                                                   {label: 1.0})
    return save_model(model, tmp_path_factory.mktemp("events") / "ckpt"), label


def test_the_event_of_a_generated_video_is_found_at_its_true_time(calibrated, long_action_video):
    ckpt, label = calibrated
    pred = msqnet.load_model(ckpt).predict(long_action_video, window=1.0, stride=0.5, precision="fp32")
    (event,) = events_of(pred)
    error = max(abs(event.start - ACTION[0]), abs(event.end - ACTION[1]))
    print(f"true {ACTION}, found ({event.start:.2f}, {event.end:.2f}): timing error {error:.2f} s")
    assert event.label == label and error <= 0.5  # one stride: windows half inside the action may count


def test_cli_writes_events_csv_json_a_boris_project_and_an_ethogram(calibrated, long_action_video, tmp_path):
    ckpt, label = calibrated
    out = tmp_path / "events"
    assert main(["predict", str(long_action_video), "--checkpoint", str(ckpt), "--window", "1", "--stride", "0.5",
                 "--events", str(out), "--precision", "fp32", "--quiet", "--num-workers", "0"]) == 0
    rows = (out / "events.csv").read_text().splitlines()
    assert rows[0] == "source,label,start,end,duration,peak,mean" and len(rows) == 2 and f",{label}," in rows[1]
    (video,) = json.loads((out / "events.json").read_text())
    assert [e["label"] for e in video["events"]] == [label]
    project = read_boris_project(out / "events.boris")
    (obs,) = project.observations
    assert obs.media == long_action_video.resolve() and project.behaviours == CLASSES
    (state,) = obs.events
    assert state.behaviour == label
    found = video["events"][0]
    assert (state.start, state.stop) == pytest.approx((found["start"], found["end"]), abs=1e-3)
    assert Image.open(out / "long.mp4.ethogram.png").size[0] >= 800


def test_archive_mode_writes_events_into_each_line_and_the_events_folder(calibrated, long_action_video, tmp_path):
    ckpt, label = calibrated
    lines = tmp_path / "preds.jsonl"
    assert main(["predict", str(long_action_video), "--checkpoint", str(ckpt), "--window", "1", "--stride", "0.5",
                 "--events", str(tmp_path / "ev"), "--out", str(lines), "--precision", "fp32", "--quiet",
                 "--num-workers", "0"]) == 0
    (record,) = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [e["label"] for e in record["events"]] == [label]
    assert read_boris_project(tmp_path / "ev" / "events.boris").observations[0].events[0].behaviour == label


def test_events_of_an_uncalibrated_model_ask_for_a_threshold(long_action_video, tmp_path, capsys):
    ckpt = save_model(create_model(tiny_config(), CLASSES), tmp_path / "raw")
    assert main(["predict", str(long_action_video), "--checkpoint", str(ckpt), "--events", str(tmp_path / "ev")]) == 2
    assert "uncalibrated" in capsys.readouterr().err
