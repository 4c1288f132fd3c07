"""The training loop on a tiny real model and real generated videos: outputs, frozen parts, cache, skips."""
from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from msqnet.checkpoint import load_model
from msqnet.config_loader import ConfigError
from msqnet.data.datasets import load_split
from msqnet.engine.trainer import Trainer, train

from .conftest import make_config


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_writes_logs_checkpoints_and_a_loadable_best_model(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", epochs=2, keep_best=1, val_fraction=0.25)
    result = train(cfg, progress=False)
    run = tmp_path / "run"
    records = _records(run / "metrics.jsonl")
    train_steps = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in train_steps] == list(range(1, 7))  # 12 of 16 clips (4 held out) / batch 4 x 2 epochs
    assert all(np.isfinite(r["loss"]) and r["lr"] > 0 for r in train_steps)
    assert [(r["epoch"], r["split"]) for r in evals] == [(1, "val"), (1, "test_seen"), (2, "val"), (2, "test_seen")]
    assert result.final_metrics["test_seen"]["map"] == evals[-1]["map"]
    assert (run / "config.yaml").is_file() and (run / "summary.json").is_file()
    best = load_model(run / "best")
    assert best.class_names == load_split(cfg.data, "train").class_names
    assert result.best_value == max(r["map"] for r in evals if r["split"] == "val")
    assert result.selection_split == "val"
    assert len(list((run / "models").iterdir())) == 1
    assert load_model(run / "checkpoints" / "last") is not None
    assert "best map" in result.summary()


def test_keep_best_keeps_that_many_model_folders(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", epochs=3, keep_best=2, log_every=10,
                      val_fraction=0.25)
    result = train(cfg, progress=False)
    kept = sorted(p.name for p in (tmp_path / "run" / "models").iterdir())
    assert len(kept) == 2
    assert (tmp_path / "run" / "best").resolve().name == f"epoch-{result.best_epoch:03d}"


def test_frozen_visual_embedder_stays_frozen_and_in_eval_mode(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[])
    trainer = Trainer(cfg, progress=False).setup()
    modes: list[bool] = []
    trainer.model.visual_embedder.encoder.register_forward_pre_hook(lambda m, args: modes.append(m.training))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    after = trainer.model.state_dict()
    assert modes and not any(modes)
    frozen = [k for k in before if k.startswith("visual_embedder.")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["head.W"], after["head.W"])  # while the trainable parts moved
    assert all(p.requires_grad is False for p in trainer.model.visual_embedder.parameters())


def _copy_with_broken_clip(synth_dir: Path, dest: Path) -> Path:
    """The tiny dataset plus one train row whose video is not a video."""
    shutil.copytree(synth_dir, dest)
    (dest / "videos" / "broken.mp4").write_bytes(b"\x00not a video" * 100)
    with open(dest / "train.csv", "a", encoding="utf-8", newline="") as f:
        f.write("train_broken,videos/broken.mp4,walking,,,,,,\n")
    return dest


def test_unreadable_clips_are_skipped_counted_and_reported(tmp_path, synth_dir, tiny_model_file, caplog):
    data = _copy_with_broken_clip(synth_dir, tmp_path / "data")
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[], batch_size=1,
                      data={"format": "generic", "annotations": str(data), "on_error": "skip"})
    with caplog.at_level(logging.INFO, logger="msqnet"):
        result = train(cfg, progress=False)
    assert result.skipped == 1
    assert "1 clip(s) skipped (unreadable): train_broken" in caplog.text


def test_an_unreadable_clip_stops_the_run_with_its_file_named_by_default(tmp_path, synth_dir, tiny_model_file):
    data = _copy_with_broken_clip(synth_dir, tmp_path / "data")
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[], batch_size=1,
                      data={"format": "generic", "annotations": str(data)})
    with pytest.raises(Exception, match="broken.mp4"):
        train(cfg, progress=False)


def test_gradient_accumulation_and_clips_per_epoch_set_the_step_count(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[], batch_size=2, grad_accum=2,
                      clips_per_epoch=12, epochs=2, clip_grad_norm=1.0)
    result = train(cfg, progress=False)
    assert result.steps == 2 * (12 // 2 // 2)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_with_finite_losses(tmp_path, synth_dir, tiny_model_file, precision):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[], precision=precision)
    train(cfg, progress=False)
    losses = [r["loss"] for r in _records(tmp_path / "run" / "metrics.jsonl")]
    assert losses and all(np.isfinite(losses))
    doc = json.loads((tmp_path / "run" / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert (doc["scaler"] is not None) == (precision == "fp16")


def test_a_new_run_refuses_an_output_dir_that_holds_one(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[])
    train(cfg, progress=False)
    with pytest.raises(ConfigError, match="--resume auto"):
        train(cfg, progress=False)


def test_resume_refuses_a_config_that_changes_the_data_position(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[])
    train(cfg, progress=False)
    changed = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[], batch_size=2, epochs=2)
    with pytest.raises(ConfigError, match=r"config changed in \['batch_size'\]"):
        train(changed, resume="auto", progress=False)


def test_resuming_a_finished_run_with_more_epochs_continues_from_its_end(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[])
    train(cfg, progress=False)
    longer = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[], epochs=2)
    result = train(longer, resume="auto", progress=False)
    assert result.steps == 8
    assert [r["step"] for r in _records(tmp_path / "run" / "metrics.jsonl")] == list(range(1, 9))


def test_a_best_metric_evaluation_does_not_compute_is_an_error_before_training(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", metric="top1")
    with pytest.raises(ConfigError, match="metric: 'top1' is not computed"):
        train(cfg, progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_model_and_sampling_frame_counts_must_agree(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", sampling={"num_frames": 8})
    with pytest.raises(ConfigError, match="sampling.num_frames"):
        train(cfg, progress=False)


def _single_label_copy(synth_dir: Path, data: Path) -> Path:
    """The tiny benchmark with every labelled clip kept with its first label only."""
    shutil.copytree(synth_dir, data)
    for name in ("train", "test_seen"):
        with open(data / f"{name}.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        with open(data / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["id", "path", "labels"])
            w.writeheader()
            w.writerows({"id": r["id"], "path": r["path"], "labels": r["labels"].split(";")[0]} for r in rows
                        if r["labels"])
    return data


def test_single_label_data_trains_with_cross_entropy_and_reports_top1(tmp_path, synth_dir, tiny_model_file):
    data = _single_label_copy(synth_dir, tmp_path / "single")
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", batch_size=2, val_fraction=0.25,
                      data={"format": "generic", "annotations": str(data), "options": {"multi_label": False}})
    result = train(cfg, progress=False)
    assert set(result.final_metrics["test_seen"]) == {"top1", "top5"}
    assert result.metric == "top1"
    assert load_model(tmp_path / "run" / "best").multi_label is False


def test_data_whose_clips_each_have_one_label_trains_as_single_label_and_says_so(tmp_path, synth_dir,
                                                                                  tiny_model_file, caplog):
    data = _single_label_copy(synth_dir, tmp_path / "single")
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", batch_size=2,
                      data={"format": "generic", "annotations": str(data)})
    with caplog.at_level(logging.INFO, logger="msqnet.train"):
        result = train(cfg, progress=False)
    assert "has exactly one label: training it as single-label data" in caplog.text
    assert result.metric is None and set(result.final_metrics["test_seen"]) == {"top1", "top5"}
    assert load_model(tmp_path / "run" / "checkpoints" / "last").multi_label is False


def test_an_explicit_multi_label_option_wins_over_single_label_looking_data(tmp_path, synth_dir, tiny_model_file):
    data = _single_label_copy(synth_dir, tmp_path / "single")
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[],
                      data={"format": "generic", "annotations": str(data), "options": {"multi_label": True}})
    train(cfg, progress=False)
    assert load_model(tmp_path / "run" / "checkpoints" / "last").multi_label is True


def test_only_the_held_out_validation_split_chooses_the_best_model(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", epochs=3, val_fraction=0.25)
    result = train(cfg, progress=False)
    evals = [r for r in _records(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "eval"]
    val = {r["epoch"]: r["map"] for r in evals if r["split"] == "val"}
    assert result.selection_split == "val" and result.best_value == max(val.values())
    assert val[result.best_epoch] == max(val.values())  # test_seen was scored every epoch, never consulted
    assert "on val (held out of the training split; chose it)" in result.summary()


def test_without_a_validation_split_the_evaluation_splits_never_choose(tmp_path, synth_dir, tiny_model_file):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", epochs=2, val_fraction=0.0)
    result = train(cfg, progress=False)
    assert result.best_model is None and result.selection_split is None and not (tmp_path / "run" / "best").exists()
    assert "test_seen" in result.final_metrics
    assert "the result is the last model" in result.summary()


def test_the_validation_split_holds_out_whole_recordings(tmp_path, synth_dir, tiny_model_file):
    data = tmp_path / "grouped"
    shutil.copytree(synth_dir, data)
    with open(data / "train.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(data / "train.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*rows[0].keys(), "source"])
        w.writeheader()
        w.writerows({**r, "source": f"rec{i // 4}"} for i, r in enumerate(rows))  # 4 recordings of 4 clips
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[], val_fraction=0.25,
                      data={"format": "generic", "annotations": str(data)})
    trainer = Trainer(cfg, progress=False).setup()
    val = trainer.eval_splits[0]
    held = {r.meta["source"] for r in val.records}
    assert val.name == "val" and len(val.records) == 4 and len(held) == 1
    assert not held & {r.meta["source"] for r in trainer.train_split.records}


def test_a_training_split_too_small_to_hold_out_a_clip_trains_without_validation(tmp_path, synth_dir,
                                                                                  tiny_model_file, caplog):
    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", eval_splits=[], val_fraction=0.01)
    with caplog.at_level(logging.WARNING, logger="msqnet.train"):
        result = train(cfg, progress=False)
    assert "val_fraction 0.01 of 16 training clips is no clip: no validation split" in caplog.text
    assert result.selection_split is None and result.best_model is None
