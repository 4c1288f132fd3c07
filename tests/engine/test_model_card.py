"""The model cards training writes: best and last checkpoints say what they were trained and measured on."""
from __future__ import annotations

import json

import pytest
import yaml


def _card(folder) -> tuple[dict, str]:
    text = (folder / "README.md").read_text()
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def _last_eval(run, split: str) -> dict:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == "eval" and r["split"] == split][-1]


def test_the_best_model_card_holds_the_measured_metrics_with_chance(tiny_run):
    meta, body = _card(tiny_run / "best")
    ev = _last_eval(tiny_run, "val")
    result = meta["model-index"][0]["results"][0]
    assert result["task"]["type"] == "video-classification"
    assert result["dataset"] == {"name": "synth", "type": "synth", "split": "val"}
    assert result["metrics"][0]["type"] == "map" and result["metrics"][0]["value"] == round(ev["map"], 6)
    assert meta["datasets"] == ["synth"] and meta["metrics"] == ["map"]
    test = _last_eval(tiny_run, "test_seen")
    assert f"| test_seen | 8 | macro mAP | {test['map']:.4f} | {test['chance']['map']:.4f} |" in body


def test_the_card_names_the_data_split_and_zero_shot_split(tiny_run):
    _, body = _card(tiny_run / "best")
    assert "- data: `synth` (format `generic`), trained on split `train`, evaluated on `test_seen`" in body
    assert "- zero-shot split `zero_shot.json`: trained on its seen classes only" in body
    assert "- progress: 1 of 1 epochs, 2 optimiser steps" in body
    classes = (tiny_run / "best" / "classes.txt").read_text().split("\n")[:-1]
    assert f"{len(classes)} classes, in score order" in body and all(f"`{c}`" in body for c in classes)


def test_the_last_training_state_has_a_card_too(tiny_run):
    meta, body = _card(tiny_run / "checkpoints" / "last")
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == round(_last_eval(tiny_run, "val")["map"], 6)
    assert "2 optimiser steps (a training state: `checkpoints/last`)" in body


def test_the_best_model_records_its_training_clip_seconds_and_validation_thresholds(tiny_run, synth_dir):
    from msqnet.checkpoint import load_model
    from msqnet.data.decode import probe

    model = load_model(tiny_run / "best")
    clip = probe(next((synth_dir / "videos").glob("*.mp4")))  # every synthetic clip is one 8-frame video
    assert model.clip_seconds == pytest.approx(clip.duration)
    d = model.decision_thresholds
    assert d.split == "val" and d.num_clips == _last_eval(tiny_run, "val")["num_clips"]  # never a test split
    assert d.thresholds and set(d.thresholds) <= set(model.class_names)
    assert all(0 <= t <= 1 for t in d.thresholds.values())


def test_the_card_lists_the_decision_thresholds_and_the_long_video_view(tiny_run):
    _, body = _card(tiny_run / "best")
    assert "## Decisions" in body and "f1-optimal per class" in body and "split `val`" in body
    assert "Training clips last" in body and "maximum over the windows" in body
