"""One test-time view saved with the model: evaluate and predict build the same clips from it."""
from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import msqnet
from msqnet.checkpoint import CheckpointError, load_model, read_checkpoint_config, save_model
from msqnet.cli import main
from msqnet.config_loader import to_dict, write_config_file
from msqnet.data import TestView
from msqnet.data.datasets import load_split
from msqnet.engine.trainer import train

from .conftest import make_config

SHORT_SIDE = 56  # not the default round(32 * 8 / 7) = 37


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth_dir, tiny_model_file):
    """A tiny model trained one epoch with a non-default short side, evaluated (so it has a best model)."""
    out = tmp_path_factory.mktemp("one_view")
    cfg = make_config(synth_dir, tiny_model_file, out / "run", transform={"size": 32, "short_side": SHORT_SIDE},
                      val_fraction=0.25)
    result = train(cfg, progress=False)
    data_file = out / "data.yaml"
    write_config_file(to_dict(cfg.data), data_file)
    return cfg, result, data_file


def _scores_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return {row[0]: np.array([float(v) for v in row[1:]]) for row in rows[1:]}


def test_every_checkpoint_folder_records_the_view_it_was_trained_with(run, tmp_path):
    _, result, _ = run
    copy = save_model(load_model(result.best_model), tmp_path / "copy")
    for folder in (result.best_model, result.last_state, copy):
        raw = json.loads((folder / "config.json").read_text())["test_view"]
        assert raw == {"strategy": "tsn", "stride": 2, "short_side": SHORT_SIDE, "clips": 1, "crops": 1,
                       "aggregate": "mean"}  # frames and size are the model's, declared once
        assert read_checkpoint_config(folder)["test_view"] == TestView(short_side=SHORT_SIDE)


def test_predict_and_evaluate_give_the_same_probabilities_for_the_same_clip(run, tmp_path, capsys):
    cfg, result, data_file = run
    split = load_split(cfg.data, "test_seen")
    assert main(["evaluate", str(result.best_model), "--data", str(data_file), "--split", "test_seen",
                 "--out", str(tmp_path / "report"), "--no-progress"]) == 0
    evaluated = _scores_csv(tmp_path / "report" / "scores.csv")
    out = tmp_path / "pred.json"
    # At the same precision: evaluate computes in fp32 (its --precision default), predict in bf16 where it can.
    assert main(["predict", *[r.source for r in split.records], "--checkpoint", str(result.best_model),
                 "--out", str(out), "--quiet", "--precision", "fp32"]) == 0
    predicted = {p["source"]: np.array(list(p["probabilities"].values())) for p in json.loads(out.read_text())}
    model = msqnet.load_model(result.best_model)
    api = {p.source: p.probabilities for p in model.predict([r.source for r in split.records], precision="fp32")}
    for r in split.records:
        np.testing.assert_allclose(predicted[r.source], evaluated[r.uid], atol=1e-6, rtol=0)
        np.testing.assert_allclose(api[r.source], evaluated[r.uid], atol=1e-6, rtol=0)


def test_the_recorded_short_side_is_what_changes_the_scores(run):
    cfg, result, _ = run
    source = load_split(cfg.data, "test_seen").records[0].source
    model = msqnet.load_model(result.best_model)  # the public API: model.predict comes with it
    recorded = model.predict(source).probabilities
    model.test_view = TestView()  # the default short side (37 px) sees another crop of the frames
    assert not np.allclose(recorded, model.predict(source).probabilities, atol=1e-6)


def _without_view(folder: Path, dest: Path, *, keep_train_config: bool) -> Path:
    """A copy of a checkpoint as an older msqnet wrote it: no test_view (and maybe no training config)."""
    shutil.copytree(folder, dest)
    meta = json.loads((dest / "config.json").read_text())
    del meta["test_view"]
    if not keep_train_config:
        meta.pop("train_config", None)
    (dest / "config.json").write_text(json.dumps(meta))
    return dest


def test_an_older_checkpoint_falls_back_to_its_training_configs_view_with_a_logged_note(run, tmp_path, caplog):
    _, result, _ = run
    old = _without_view(result.best_model, tmp_path / "old", keep_train_config=True)
    with caplog.at_level(logging.WARNING, logger="msqnet.checkpoint"):
        model = load_model(old)
    assert model.test_view == TestView(short_side=SHORT_SIDE)
    assert "no test_view recorded" in caplog.text and "training config" in caplog.text


def test_an_older_checkpoint_without_training_config_uses_the_default_view_and_says_so(run, tmp_path, caplog):
    _, result, _ = run
    old = _without_view(result.best_model, tmp_path / "old", keep_train_config=False)
    with caplog.at_level(logging.WARNING, logger="msqnet.checkpoint"):
        model = load_model(old)
    assert model.test_view == TestView()
    assert "default view" in caplog.text and "short side 37" in caplog.text


def test_a_recorded_view_the_model_cannot_use_is_an_error_naming_the_file(run, tmp_path):
    _, result, _ = run
    bad = shutil.copytree(result.best_model, tmp_path / "bad")
    meta = json.loads((bad / "config.json").read_text())
    meta["test_view"]["short_side"] = 16  # smaller than the 32 px crop
    (bad / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="config.json: invalid test view: .*short_side"):
        load_model(bad)


def test_a_training_config_given_to_evaluate_does_not_override_the_recorded_view(run, tmp_path, caplog):
    cfg, result, data_file = run
    train_file = tmp_path / "train.yaml"
    write_config_file({**to_dict(cfg), "transform": {**to_dict(cfg.transform), "short_side": None}}, train_file)
    args = ["evaluate", str(result.best_model), "--split", "test_seen", "--no-progress"]
    assert main([*args, "--data", str(data_file), "--out", str(tmp_path / "a")]) == 0
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--data", str(train_file), "--out", str(tmp_path / "b")]) == 0
    assert "another test view than the checkpoint records" in caplog.text
    a, b = _scores_csv(tmp_path / "a" / "scores.csv"), _scores_csv(tmp_path / "b" / "scores.csv")
    assert a.keys() == b.keys()
    for uid in a:  # the training config batches 4 clips, the default 8: equal to float round-off
        np.testing.assert_allclose(a[uid], b[uid], atol=1e-6, rtol=0)
