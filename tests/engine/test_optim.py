"""Optimiser groups (frozen parameters excluded, encoder learning rate) and the learning-rate schedules."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import TimesformerConfig, TimesformerModel

from msqnet.engine.config import OptimConfig, ScheduleConfig
from msqnet.engine.optim import LRSchedule, build_optimizer, param_groups
from msqnet.models import create_model

from ..models.tiny import TINY_TSF, tiny_config

CLASSES = ["walking", "running", "eating"]


def _params(groups) -> set[int]:
    return {id(p) for g in groups for p in g["params"]}


def test_frozen_visual_embedder_never_reaches_the_optimiser():
    model = create_model(tiny_config("timesformer"), CLASSES)
    opt = build_optimizer(model, OptimConfig())
    handed = _params(opt.param_groups)
    frozen = {id(p) for p in model.visual_embedder.parameters()}
    assert frozen and not (handed & frozen)
    assert handed == {id(p) for p in model.parameters() if p.requires_grad}


def test_a_pretrained_video_encoder_gets_its_own_learning_rate(tmp_path: Path):
    backbone = TimesformerModel(TimesformerConfig(image_size=32, num_frames=4, **TINY_TSF))
    backbone.save_pretrained(tmp_path / "tsf")
    cfg = tiny_config("timesformer", video_encoder={"kind": "timesformer", "pretrained": str(tmp_path / "tsf")})
    model = create_model(cfg, CLASSES)
    groups = param_groups(model, OptimConfig(lr=1e-3, encoder_lr=1e-5))
    encoder = {id(p) for p in model.video_encoder.parameters()}
    by_lr = {g["lr"]: _params([g]) for g in groups}
    assert by_lr[1e-5] == encoder
    assert by_lr[1e-3] and not (by_lr[1e-3] & encoder)


def test_an_encoder_trained_from_scratch_uses_the_new_layers_rate():
    model = create_model(tiny_config("timesformer"), CLASSES)  # random-init backbone
    groups = param_groups(model, OptimConfig(lr=1e-3, encoder_lr=1e-5))
    assert {g["lr"] for g in groups} == {1e-3}


def test_weight_decay_applies_to_weight_matrices_only():
    model = create_model(tiny_config("timesformer"), CLASSES)
    for g in param_groups(model, OptimConfig(name="adamw", weight_decay=0.05)):
        dims = {p.ndim for p in g["params"]}
        assert (g["weight_decay"] > 0) == (min(dims) >= 2)


def test_warmup_rises_linearly_then_cosine_decays_to_the_floor():
    s = LRSchedule(ScheduleConfig(name="cosine", warmup_steps=4, min_lr_ratio=0.1), steps_per_epoch=10, epochs=2)
    assert [s.factor(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s.factor(4) == pytest.approx(1.0)
    assert s.factor(12) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 8 / 16)))
    assert s.factor(s.total_steps) == pytest.approx(0.1)


def test_warm_restarts_match_torchs_scheduler_stepped_per_epoch():
    steps_per_epoch = 3
    for mult in (1, 2):
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([param], lr=1.0)
        ref = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=mult)
        ours = LRSchedule(ScheduleConfig(name="warm_restarts", restart_epochs=4, restart_mult=mult), steps_per_epoch, 20)
        for epoch in range(20):
            expected = opt.param_groups[0]["lr"]
            for k in range(steps_per_epoch):
                assert ours.factor(epoch * steps_per_epoch + k) == pytest.approx(expected, abs=1e-12)
            opt.step()
            ref.step()


def test_apply_sets_each_groups_rate_from_its_initial_rate():
    model = create_model(tiny_config("timesformer"), CLASSES)
    opt = build_optimizer(model, OptimConfig(lr=1e-3))
    s = LRSchedule(ScheduleConfig(name="constant", warmup_steps=2), steps_per_epoch=5, epochs=1)
    s.apply(opt, 0)
    assert all(g["lr"] == pytest.approx(5e-4) for g in opt.param_groups)
    s.apply(opt, 3)
    assert all(g["lr"] == pytest.approx(1e-3) for g in opt.param_groups)
