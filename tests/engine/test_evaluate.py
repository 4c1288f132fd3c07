"""Evaluation: multi-view aggregation, metrics over the whole set, the evaluate CLI and its report."""
from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from msqnet.checkpoint import save_model
from msqnet.data.config import DataConfig
from msqnet.data.dataset import ClipDataset
from msqnet.data.datasets import load_split
from msqnet.data.config import SamplingConfig, TransformConfig
from msqnet.engine.evaluate import evaluate_split
from msqnet.engine.inference import predict_dataset
from msqnet.metrics import compute_metrics
from msqnet.models import create_model
from msqnet.metrics import chance_map

from ..models.tiny import tiny_config
from .conftest import make_config, run_cli, write_train_config

SAMPLING = SamplingConfig(num_frames=4)
TRANSFORM = TransformConfig(size=32)


@pytest.fixture(scope="module")
def split(synth_dir):
    return load_split(DataConfig(format="generic", annotations=str(synth_dir)), "test_seen")


@pytest.fixture(scope="module")
def model(split):
    torch.manual_seed(0)
    return create_model(tiny_config("timesformer"), split.class_names).eval()


def test_multi_view_scores_are_the_mean_of_each_views_probabilities(model, split):
    sampling = replace(SAMPLING, test_clips=2, test_crops=3)
    ds = ClipDataset(split.records, split.num_classes, sampling=sampling, transform=TRANSFORM, train=False)
    [scores], index, _ = predict_dataset(model, ds, batch_size=3, progress=False)
    assert list(index) == list(range(len(split.records)))
    for i in (0, 5):
        views = ds[i]["video"]  # (6, T, 3, S, S)
        assert views.shape[0] == 6
        with torch.no_grad():
            expected = torch.sigmoid(model(views).logits).mean(0)
        np.testing.assert_allclose(scores[i], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_max_aggregation_takes_each_classes_highest_view(model, split):
    sampling = replace(SAMPLING, test_clips=2, aggregate="max")
    ds = ClipDataset(split.records, split.num_classes, sampling=sampling, transform=TRANSFORM, train=False)
    [scores], _, _ = predict_dataset(model, ds, batch_size=4, aggregate="max", progress=False)
    with torch.no_grad():
        expected = torch.sigmoid(model(ds[2]["video"]).logits).amax(0)
    np.testing.assert_allclose(scores[2], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_metrics_are_computed_once_over_the_whole_split_whatever_the_batch_size(model, split):
    one = evaluate_split(model, split, sampling=SAMPLING, transform=TRANSFORM, batch_size=1, progress=False)
    many = evaluate_split(model, split, sampling=SAMPLING, transform=TRANSFORM, batch_size=5, progress=False)
    np.testing.assert_allclose(one.scores, many.scores, rtol=1e-5, atol=1e-6)
    assert one.metrics["map"] == pytest.approx(many.metrics["map"], abs=1e-9)
    assert one.metrics == compute_metrics(["map"], one.scores, one.targets)
    assert one.uids == [r.uid for r in split.records]
    assert one.targets.sum() == sum(len(r.labels) for r in split.records)


def test_a_model_of_another_label_set_is_refused(split):
    other = create_model(tiny_config("timesformer"), ["a", "b"])
    with pytest.raises(ValueError, match="differ from the model's 2"):
        evaluate_split(other, split, sampling=SAMPLING, transform=TRANSFORM, progress=False)


def test_real_videos_of_several_codecs_are_evaluated_with_three_crops(tmp_path, shared_videos):
    names = ["bikes.mp4", "carphone_pristine.mp4", "tree.avi", "bigbuckbunny.mp4"]
    (tmp_path / "classes.txt").write_text("street\nperson\nnature\n")
    labels = ["street;person", "person", "nature", "nature"]
    with open(tmp_path / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels"])
        w.writerows(zip(names, labels))
    data = DataConfig(format="generic", root=str(shared_videos), annotations=str(tmp_path))
    real = load_split(data, "test")
    net = create_model(tiny_config("timesformer"), real.class_names).eval()
    result = evaluate_split(net, real, sampling=replace(SAMPLING, test_crops=3), transform=TRANSFORM, batch_size=2,
                            progress=False)
    assert result.scores.shape == (4, 3) and np.isfinite(result.scores).all()
    assert 0 <= result.metrics["map"] <= 1


def test_msqnet_evaluate_writes_a_report_that_msqnet_score_reproduces(tmp_path, synth_dir, tiny_model_file, model, split):
    ckpt = save_model(model, tmp_path / "model")
    cfg_file = write_train_config(make_config(synth_dir, tiny_model_file, tmp_path / "run"), tmp_path / "train.yaml")
    out = tmp_path / "report"
    proc = run_cli("evaluate", str(ckpt), "--data", str(cfg_file), "--split", "test_seen", "--out", str(out),
                   "--metric", "map,f1", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "metrics.json").read_text())
    direct = evaluate_split(model, split, sampling=SAMPLING, transform=TRANSFORM, metrics=["map", "f1"], progress=False)
    assert report["metrics"]["map"] == pytest.approx(direct.metrics["map"], abs=1e-6)
    assert {"summary.md", "per_class_ap.png", "pr_curves.png", "scores.csv"} <= {p.name for p in out.iterdir()}
    assert "map" in proc.stdout and "chance" in proc.stdout
    # the chance level printed is the expected AP of a random ranking of this split
    assert f"{chance_map(direct.targets):.4f}" in proc.stdout
    gt = tmp_path / "gt.csv"
    with open(gt, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "labels"])
        for r in split.records:
            w.writerow([r.uid, ";".join(split.class_names[c] for c in r.labels)])
    scored = run_cli("score", str(out / "scores.csv"), "--ground-truth", str(gt), "--classes",
                     str(synth_dir / "classes.json"), "--metric", "map", "--json")
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["metrics"]["map"] == pytest.approx(report["metrics"]["map"], abs=1e-9)


def test_msqnet_evaluate_names_a_missing_checkpoint(tmp_path, synth_dir, tiny_model_file):
    cfg_file = write_train_config(make_config(synth_dir, tiny_model_file, tmp_path / "run"), tmp_path / "train.yaml")
    proc = run_cli("evaluate", str(tmp_path / "nowhere"), "--data", str(cfg_file))
    assert proc.returncode == 2 and "nowhere: not a model folder" in proc.stderr
