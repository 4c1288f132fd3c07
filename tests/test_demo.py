"""The main job end to end at a tiny size: render, train, evaluate, report, through the real CLI."""
from __future__ import annotations

import json

from msqnet.cli import main

# The demo's recipe (its pixel encoder) with a one-block msqnet-lite at 32 px (2 x 2 tokens per frame).
TINY_LITE = ["model_overrides=[head=text,trainable_label_embeddings=false,image_size=32,"
             "video_encoder.config.backbone=none,video_encoder.config.pixel_patch=16,"
             "video_encoder.config.num_layers=1,decoder.num_decoder_layers=1]"]


def test_demo_renders_trains_evaluates_and_reports(tmp_path, capsys):
    rc = main(["demo", "--data-dir", str(tmp_path / "synth"), "--out", str(tmp_path / "demo"), "--clips", "16",
               "--test-clips", "8", "--size", "32", "--no-progress", "epochs=1", "batch_size=4", "num_workers=0",
               "transform.size=32", "transform.short_side=32", *TINY_LITE])
    out = capsys.readouterr().out
    assert rc == 0
    assert "test_seen" in out and "test_unseen_actor" in out and "mAP unseen (zero-shot)" in out
    demo = json.loads((tmp_path / "demo" / "demo.json").read_text())
    rows = demo["rows"]
    assert [r["unseen class"] for r in demo["unseen_classes"]] == ["getting up", "moving away from the camera",
                                                                  "following"]  # in class-id order
    for r in demo["unseen_classes"]:  # a class without a positive in 8 clips has no AP and no chance level
        assert "AP test_unseen_actor" in r and (r["chance test_seen"] is None or 0 <= r["chance test_seen"] <= 1)
    assert set(demo["seconds"]) == {"render", "cache", "train", "evaluate"} and "time: render" in out
    assert [r["split"] for r in rows] == ["test_seen", "test_unseen_actor"]
    for r in rows:
        assert 0 <= r["mAP seen"] <= 1 and 0 <= r["chance seen"] <= 1 and r["clips"] == 8
    for split in ("test_seen", "test_unseen_actor"):
        report = tmp_path / "demo" / "report" / split
        assert {"metrics.json", "summary.md", "per_class_ap.png", "training_curves.png"} <= {
            p.name for p in report.iterdir()}
    evals = [json.loads(line) for line in (tmp_path / "demo" / "run" / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert [(r["epoch"], r["split"]) for r in evals] == [(1, "val")]  # the held-out slice, after every epoch
    assert (tmp_path / "synth" / "generator.json").is_file() and (tmp_path / "demo" / "run" / "checkpoints" / "last").is_dir()
    import msqnet

    model = msqnet.load_model(tmp_path / "demo" / "run")  # a run folder loads its last state
    assert "following" not in model.class_names and len(model.class_names) == 12  # trained on seen classes
    assert model.decision_thresholds.split == "val" and model.clip_seconds > 0  # what predict decides and windows by
    events = list((tmp_path / "demo" / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0  # the demo logs to TensorBoard, as the README says


def test_demo_reuses_existing_data_and_run(tmp_path, capsys):
    args = ["demo", "--data-dir", str(tmp_path / "synth"), "--out", str(tmp_path / "demo"), "--clips", "8",
            "--test-clips", "4", "--size", "32", "--no-progress", "epochs=1", "batch_size=4", "num_workers=0",
            "transform.size=32", "transform.short_side=32", *TINY_LITE]
    assert main(args) == 0
    first = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert main(args) == 0  # nothing re-rendered, the finished run is picked up
    second = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert second["seconds"]["render"] == 0.0 and second["rows"] == first["rows"]
