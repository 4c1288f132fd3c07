"""Zero-shot training and evaluation: train on seen classes, score unseen ones from their names."""
from __future__ import annotations

import json

import numpy as np
import pytest

from msqnet.checkpoint import load_model
from msqnet.cli import main
from msqnet.config_loader import ConfigError, write_config_file
from msqnet.data.config import DataConfig
from msqnet.data.datasets import load_split
from msqnet.data.config import SamplingConfig, TransformConfig
from msqnet.engine.trainer import train
from msqnet.engine.zero_shot import evaluate_zero_shot
from msqnet.data.class_splits import load_zero_shot_split, restrict_split

from ..models.tiny import tiny_config
from .conftest import make_config


@pytest.fixture(scope="module")
def open_vocab_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("zs_model") / "open.yaml"
    write_config_file(tiny_config("timesformer", head="text", trainable_label_embeddings=False), path)
    return path


@pytest.fixture(scope="module")
def zero_shot_run(synth_dir, open_vocab_model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("zs_run") / "run"
    cfg = make_config(synth_dir, open_vocab_model_file, out, zero_shot=str(synth_dir / "splits" / "zero_shot.json"),
                      val_fraction=0.25)
    return train(cfg, progress=False)


def test_restricting_a_split_renumbers_labels_and_keeps_every_clip(synth_dir):
    split = load_split(DataConfig(format="generic", annotations=str(synth_dir)), "test_seen")
    zs = load_zero_shot_split(synth_dir / "splits" / "zero_shot.json", split.class_names)
    seen = restrict_split(split, zs.seen)
    assert len(seen.records) == len(split.records)
    assert seen.class_names == [split.class_names[i] for i in zs.seen]
    for old, new in zip(split.records, seen.records):
        assert [seen.class_names[i] for i in new.labels] == [split.class_names[i] for i in old.labels if i in zs.seen]


def test_zero_shot_training_builds_the_model_on_seen_classes_only(zero_shot_run, synth_dir):
    model = load_model(zero_shot_run.best_model)
    unseen = json.loads((synth_dir / "splits" / "zero_shot.json").read_text())["unseen"]
    assert model.class_names and not set(model.class_names) & set(unseen)


def test_open_vocabulary_model_scores_unseen_classes(zero_shot_run, synth_dir):
    model = load_model(zero_shot_run.best_model)
    split = load_split(DataConfig(format="generic", annotations=str(synth_dir)), "test_seen")
    zs = load_zero_shot_split(synth_dir / "splits" / "zero_shot.json", split.class_names)
    kw = dict(sampling=SamplingConfig(num_frames=4), transform=TransformConfig(size=32), progress=False)
    zsl = evaluate_zero_shot(model, split, zs, **kw)
    gzsl = evaluate_zero_shot(model, split, zs, protocol="gzsl", **kw)
    for r in (zsl, gzsl):
        assert 0 <= r.map_seen <= 1 and 0 <= r.map_unseen <= 1 and not r.closed_set
        assert r.harmonic == pytest.approx(2 * r.map_seen * r.map_unseen / (r.map_seen + r.map_unseen))
        assert set(r.per_class_ap) == set(split.class_names)
    # The ZSL seen score is the model's own closed-world evaluation of the seen classes.
    assert zsl.map_seen == pytest.approx(zero_shot_run.final_metrics["test_seen"]["map"], abs=1e-9)
    # Class queries attend to each other in the decoder: querying all classes at once is another experiment.
    assert zsl.scores.shape == gzsl.scores.shape == (len(split.records), len(split.class_names))
    assert not np.allclose(zsl.scores[:, list(zs.unseen)], gzsl.scores[:, list(zs.unseen)])


def test_cli_reports_seen_unseen_and_harmonic_mean(zero_shot_run, synth_dir, tmp_path, capsys):
    data = tmp_path / "data.yaml"
    write_config_file({"format": "generic", "annotations": str(synth_dir)}, data)
    rc = main(["evaluate", str(zero_shot_run.output_dir), "--data", str(data), "--split", "test_unseen_actor",
               "--zero-shot", str(synth_dir / "splits" / "zero_shot.json"), "--out", str(tmp_path / "rep"),
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "harmonic mean" in out and "unseen" in out
    saved = json.loads((tmp_path / "rep" / "zero_shot.json").read_text())
    assert {"map_seen", "map_unseen", "harmonic", "chance_seen", "chance_unseen"} <= set(saved)


def test_closed_set_model_needs_all_classes_for_zero_shot_evaluation(zero_shot_run, synth_dir):
    from msqnet.models import create_model

    split = load_split(DataConfig(format="generic", annotations=str(synth_dir)), "test_seen")
    zs = load_zero_shot_split(synth_dir / "splits" / "zero_shot.json", split.class_names)
    closed = create_model(tiny_config(), [split.class_names[i] for i in zs.seen])
    with pytest.raises(ValueError, match="head: text"):
        evaluate_zero_shot(closed, split, zs, sampling=SamplingConfig(num_frames=4),
                           transform=TransformConfig(size=32), progress=False)
    baseline = create_model(tiny_config(), split.class_names)  # trained on every class, unseen always absent
    r = evaluate_zero_shot(baseline, split, zs, sampling=SamplingConfig(num_frames=4),
                           transform=TransformConfig(size=32), progress=False)
    assert r.closed_set and 0 <= r.map_unseen <= 1


def test_a_bad_zero_shot_split_is_a_config_error(synth_dir, open_vocab_model_file, tmp_path):
    cfg = make_config(synth_dir, open_vocab_model_file, tmp_path / "run", zero_shot="charades_50_50", val_fraction=0.25)
    with pytest.raises(ConfigError, match="zero_shot: .*written for 157 classes"):
        train(cfg, progress=False)


def test_zero_shot_evaluation_encodes_each_clip_once_for_every_label_set(zero_shot_run, synth_dir):
    from msqnet.data.dataset import ClipDataset
    from msqnet.engine.inference import predict_dataset

    model = load_model(zero_shot_run.best_model)
    split = load_split(DataConfig(format="generic", annotations=str(synth_dir)), "test_seen")
    zs = load_zero_shot_split(synth_dir / "splits" / "zero_shot.json", split.class_names)
    sampling, transform = SamplingConfig(num_frames=4), TransformConfig(size=32)
    calls = {"video_encoder": 0, "visual_embedder": 0}
    modules = {"video_encoder": model.video_encoder, "visual_embedder": model.visual_embedder.encoder}
    hooks = [module.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
             for name, module in modules.items()]
    result = evaluate_zero_shot(model, split, zs, sampling=sampling, transform=transform, batch_size=8, progress=False)
    for h in hooks:
        h.remove()
    batches = -(-len(split.records) // 8)
    assert calls == {"video_encoder": batches, "visual_embedder": batches}  # not once per label set
    # The same scores as scoring each label set in its own pass.
    dataset = ClipDataset(split.records, split.num_classes, sampling=sampling, transform=transform, train=False,
                          multi_label=True)
    for group in (zs.seen, zs.unseen):
        [alone], _, _ = predict_dataset(model, dataset, batch_size=8, progress=False,
                                        label_sets=[model.embed_labels([split.class_names[i] for i in group])])
        assert np.allclose(result.scores[:, list(group)], alone, atol=1e-6)
