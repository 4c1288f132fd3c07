"""The frozen-output cache: computed once per split, equal to the encoders' outputs, drawn afresh every epoch."""
from __future__ import annotations

import logging
import shutil

import pytest
import torch

from msqnet.data.config import SamplingConfig, TransformConfig
from msqnet.data.dataset import ClipDataset
from msqnet.engine.evaluate import evaluate_split
from msqnet.engine.frozen_cache import CachedClipDataset, FrozenFrameCache
from msqnet.engine.trainer import Trainer, train
from msqnet.models import create_model

from ..models.tiny import TINY_FRAMES, tiny_config

from .conftest import make_config


def _cached(synth_dir, model_file, out, **fields):
    return make_config(synth_dir, model_file, out, cache_frozen=True, **fields)


def test_the_training_cache_holds_the_frozen_outputs_of_its_frames(tmp_path, synth_dir, tiny_frames_model_file):
    cfg = _cached(synth_dir, tiny_frames_model_file, tmp_path / "run", eval_splits=[], cache_frames=8)
    trainer = Trainer(cfg, progress=False).setup()
    split, cache = trainer.train_split, trainer.train_dataset.cache
    view = ClipDataset(split.records[:3], split.num_classes, sampling=cfg.sampling.__class__(num_frames=8),
                       transform=cfg.transform, train=False)
    clips = torch.stack([view[i]["video"] for i in range(3)])  # (3, 8, 3, 32, 32): all 8 frames of each clip
    expected = trainer.model.frozen_frames(clips)
    assert cache.frames == 8 and bool(cache.valid.all())
    torch.testing.assert_close(cache.features[:3].float(), expected.features, rtol=1e-3, atol=1e-3)  # float16 storage
    torch.testing.assert_close(cache.visual[:3], expected.visual)
    assert (tmp_path / "run" / "cache" / f"train-{cache.fingerprint[:16]}.safetensors").is_file()


def test_each_epoch_draws_t_of_the_cached_frames_in_order(tmp_path, synth_dir, tiny_frames_model_file):
    cfg = _cached(synth_dir, tiny_frames_model_file, tmp_path / "run", eval_splits=[], cache_frames=8)
    trainer = Trainer(cfg, progress=False).setup()
    data = trainer.train_dataset
    visual = trainer.train_dataset.cache.visual[0]  # (8, V): one row per cached frame
    draws = []
    for epoch in range(6):
        item = data[(epoch, 0)]
        rows = [int((visual == v).all(-1).nonzero()) for v in item["frozen"]["visual"]]
        assert len(rows) == 4 and rows == sorted(rows)
        assert all(2 * k <= r < 2 * k + 2 for k, r in enumerate(rows))  # TSN: one frame of each pair
        assert torch.equal(item["frozen"]["visual"], data[(epoch, 0)]["frozen"]["visual"])  # a function of the epoch
        draws.append(tuple(rows))
    assert len(set(draws)) > 1


def test_mirroring_flips_the_feature_maps(tmp_path, synth_dir, tiny_frames_model_file):
    cfg = _cached(synth_dir, tiny_frames_model_file, tmp_path / "run", eval_splits=[],
                  transform={"size": 32, "hflip": True})
    trainer = Trainer(cfg, progress=False).setup()
    cached = trainer.train_dataset.cache.features[0].float()  # (T, C, h, w): cache_frames = T, so no temporal draw
    seen = {bool(torch.equal(trainer.train_dataset[(e, 0)]["frozen"]["features"].float(), cached.flip(-1)))
            for e in range(12)}
    assert seen == {True, False}


def test_training_from_the_cache_never_runs_the_frozen_encoders(tmp_path, synth_dir, tiny_frames_model_file):
    cfg = _cached(synth_dir, tiny_frames_model_file, tmp_path / "run", epochs=2)
    trainer = Trainer(cfg, progress=False).setup()
    calls = []
    for module in (trainer.model.video_encoder.backbone, trainer.model.visual_embedder):
        module.register_forward_pre_hook(lambda m, args: calls.append(type(m).__name__))
    result = trainer.train()
    assert result.steps == 8 and calls == []
    assert "test_seen" in trainer.eval_datasets  # evaluation read its cache too


def test_scores_from_the_evaluation_cache_equal_scores_from_the_videos(tmp_path, synth_dir, tiny_frames_model_file):
    cfg = _cached(synth_dir, tiny_frames_model_file, tmp_path / "run", sampling={"num_frames": 4, "test_clips": 2})
    trainer = Trainer(cfg, progress=False).setup()
    split = trainer.eval_splits[0]
    cached = CachedClipDataset(trainer.eval_datasets[split.name].cache, split.records, split.num_classes, sampling=cfg.sampling,
                               hflip=False)
    assert cached[0]["frozen"]["features"].shape[:2] == (2, 4)  # (views, T, ...)
    kw = dict(sampling=cfg.sampling, transform=cfg.transform, metrics=["map"], progress=False)
    from_cache = evaluate_split(trainer.model, split, dataset=cached, **kw)
    from_videos = evaluate_split(trainer.model, split, **kw)
    torch.testing.assert_close(torch.from_numpy(from_cache.scores), torch.from_numpy(from_videos.scores),
                               rtol=0, atol=1e-3)


def test_a_saved_cache_is_reused_and_a_stale_one_rebuilt(tmp_path, synth_dir, tiny_frames_model_file, caplog):
    cfg = _cached(synth_dir, tiny_frames_model_file, tmp_path / "run", eval_splits=[])
    trainer = Trainer(cfg, progress=False).setup()
    fp = trainer.train_dataset.cache.fingerprint
    path = tmp_path / "run" / "cache" / f"train-{fp[:16]}.safetensors"
    reloaded = FrozenFrameCache.load(path, fp)
    assert reloaded is not None and torch.equal(reloaded.features, trainer.train_dataset.cache.features)
    with caplog.at_level(logging.INFO, logger="msqnet"):
        assert FrozenFrameCache.load(path, "another fingerprint") is None
    assert "rebuilding" in caplog.text
    path.write_bytes(b"\x00" * 64)  # corrupt: a lost optimisation, never an error
    assert FrozenFrameCache.load(path, fp) is None


def test_the_cache_key_follows_the_frozen_part_only():
    def fingerprint(**encoder):
        cfg = tiny_config("frames")
        cfg.video_encoder.config = {**TINY_FRAMES, **encoder}
        model = create_model(cfg, ["walking", "eating"])
        return FrozenFrameCache.fingerprint_of(model, [], SamplingConfig(), TransformConfig(), frames=8, train=True)

    base = fingerprint()
    assert fingerprint(hidden_size=32, num_layers=2, dropout=0.3) == base  # the trainable transformer
    assert fingerprint(stage=2) != base
    assert fingerprint(frame_size=16) != base


def test_clips_unreadable_when_caching_are_left_out_and_counted(tmp_path, synth_dir, tiny_frames_model_file, caplog):
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    (data / "videos" / "broken.mp4").write_bytes(b"\x00not a video" * 100)
    with open(data / "train.csv", "a", encoding="utf-8", newline="") as f:
        f.write("train_broken,videos/broken.mp4,walking,,,,,,\n")
    cfg = _cached(synth_dir, tiny_frames_model_file, tmp_path / "run", eval_splits=[], batch_size=1,
                  data={"format": "generic", "annotations": str(data), "on_error": "skip"})
    with caplog.at_level(logging.INFO, logger="msqnet"):
        result = train(cfg, progress=False)
    assert "1 unreadable clip(s) left out" in caplog.text
    assert result.skipped == 1 and result.steps == 17  # its batch of one takes a zero-weight step


def test_a_model_with_nothing_frozen_refuses_the_cache(tmp_path, synth_dir, tiny_model_file):
    from msqnet.config_loader import ConfigError

    cfg = make_config(synth_dir, tiny_model_file, tmp_path / "run", cache_frozen=True,
                      model_overrides=["visual_embedder.kind=none", "query=text"])
    with pytest.raises(ConfigError, match="cache_frozen: this model has no frozen encoder"):
        Trainer(cfg, progress=False).setup()


def test_runs_sharing_a_cache_folder_reuse_the_training_cache_whatever_their_t(tmp_path, synth_dir,
                                                                              tiny_frames_model_file):
    shared = tmp_path / "cache"
    first = Trainer(_cached(synth_dir, tiny_frames_model_file, tmp_path / "a", eval_splits=[], cache_frames=8,
                            cache_dir=str(shared)), progress=False).setup()
    built = sorted(p.name for p in shared.iterdir())
    second = Trainer(_cached(synth_dir, tiny_frames_model_file, tmp_path / "b", eval_splits=[], cache_frames=8,
                             cache_dir=str(shared), sampling={"num_frames": 1},
                             model_overrides=["num_frames=1"]), progress=False).setup()
    assert sorted(p.name for p in shared.iterdir()) == built  # nothing rebuilt
    assert torch.equal(first.train_dataset.cache.features, second.train_dataset.cache.features)
    assert second.train_dataset[(0, 0)]["frozen"]["features"].shape[0] == 1


def test_cache_views_hold_the_test_view_then_augmented_views_and_each_epoch_reads_one(tmp_path, synth_dir,
                                                                                     tiny_frames_model_file):
    cfg = _cached(synth_dir, tiny_frames_model_file, tmp_path / "run", eval_splits=[], cache_frames=4, cache_views=3,
                  transform={"size": 32, "train_crop": "multiscale", "hflip": False})
    trainer = Trainer(cfg, progress=False).setup()
    data, cache = trainer.train_dataset, trainer.train_dataset.cache
    assert cache.views == 3 and cache.frames == 12  # 3 views x 4 frames, view-major
    split = trainer.train_split
    test_view = ClipDataset(split.records[:1], split.num_classes, sampling=cfg.sampling, transform=cfg.transform,
                            train=False)[0]["video"][None]  # (1, 4, 3, 32, 32)
    torch.testing.assert_close(cache.visual[0, :4], trainer.model.frozen_frames(test_view).visual[0])
    views = cache.visual[0].unflatten(0, (3, 4))  # (views, frames, V)
    assert not torch.allclose(views[0], views[1]) and not torch.allclose(views[1], views[2])  # random crops differ
    read = set()
    for epoch in range(12):
        item = data[(epoch, 0)]["frozen"]["visual"]  # (T, V): all T frames come from one view
        hits = [k for k in range(3) if torch.equal(item, views[k])]
        assert len(hits) == 1
        read.add(hits[0])
    assert read == {0, 1, 2}


def test_a_cache_of_one_view_is_not_reused_for_several(tmp_path, synth_dir, tiny_frames_model_file):
    one = Trainer(_cached(synth_dir, tiny_frames_model_file, tmp_path / "a", eval_splits=[],
                          cache_dir=str(tmp_path / "cache")), progress=False).setup()
    two = Trainer(_cached(synth_dir, tiny_frames_model_file, tmp_path / "b", eval_splits=[], cache_views=2,
                          cache_dir=str(tmp_path / "cache")), progress=False).setup()
    assert one.train_dataset.cache.fingerprint != two.train_dataset.cache.fingerprint
    assert two.train_dataset.cache.views == 2
