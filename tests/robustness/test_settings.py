"""Numeric settings are checked when a config loads: finite, in range, and sizes a model can be built with."""
from __future__ import annotations

import pytest

from msqnet.config_loader import ConfigError, from_dict
from msqnet.engine.config import TrainConfig
from msqnet.models import ModelConfig
from msqnet.synth import SynthConfig

from ..models.tiny import tiny_config

DATA = {"format": "generic", "annotations": "ann"}


def train_config(**fields) -> TrainConfig:
    return from_dict(TrainConfig, {"data": DATA, **fields})


@pytest.mark.parametrize("fields, key", [
    ({"optim": {"lr": float("inf")}}, "optim.lr"),
    ({"optim": {"lr": "nan"}}, "optim.lr"),  # YAML text that float() would accept
    ({"optim": {"weight_decay": float("nan")}}, "optim.weight_decay"),
    ({"optim": {"encoder_lr": float("inf")}}, "optim.encoder_lr"),
    ({"optim": {"eps": float("-inf")}}, "optim.eps"),
    ({"clip_grad_norm": float("nan")}, "clip_grad_norm"),
    ({"schedule": {"min_lr_ratio": float("nan")}}, "schedule.min_lr_ratio"),
    ({"schedule": {"warmup_epochs": float("inf")}}, "schedule.warmup_epochs"),
    ({"loss": {"gamma_neg": float("nan")}}, "loss.gamma_neg"),
    ({"transform": {"color_jitter_prob": float("nan")}}, "transform.color_jitter_prob"),
])
def test_a_non_finite_number_anywhere_in_a_training_config_is_refused(fields, key):
    with pytest.raises(ConfigError, match=rf"^{key}: expected a finite number"):
        train_config(**fields)


@pytest.mark.parametrize("fields, message", [
    ({"epochs": 0}, r"epochs: expected >= 1"),
    ({"batch_size": 0}, r"batch_size: expected >= 1"),
    ({"eval_batch_size": 0}, r"eval_batch_size: expected >= 1"),
    ({"grad_accum": 0}, r"grad_accum: expected >= 1"),
    ({"clip_grad_norm": 0.0}, r"clip_grad_norm: expected > 0"),
    ({"optim": {"lr": 0.0}}, r"learning rates must be positive"),
    ({"optim": {"weight_decay": -0.1}}, r"^optim\.weight_decay: expected >= 0"),
    ({"optim": {"eps": 0.0}}, r"^optim\.eps: expected > 0"),
    ({"nonfinite": "ignore"}, r"nonfinite: expected one of \['raise', 'skip'\]"),
])
def test_out_of_range_training_settings_are_refused_naming_the_key(fields, message):
    with pytest.raises(ConfigError, match=message):
        train_config(**fields)


def test_nonfinite_defaults_to_raise_and_accepts_skip():
    assert train_config().nonfinite == "raise"
    assert train_config(nonfinite="skip").nonfinite == "skip"


def test_a_non_finite_number_in_a_model_or_synth_config_is_refused():
    with pytest.raises(ConfigError, match=r"decoder\.dropout: expected a finite number"):
        from_dict(ModelConfig, {"decoder": {"dropout": float("nan")}})
    with pytest.raises(ConfigError, match=r"moving_background: expected a finite number"):
        from_dict(SynthConfig, {"moving_background": float("inf")})


@pytest.mark.parametrize("fields, message", [
    ({"image_size": 100_000}, r"image_size: expected 8\.\.2048 pixels, got 100000"),
    ({"num_frames": 10_000}, r"num_frames: expected 1\.\.1024"),
    ({"decoder": {"max_len": 10**9}}, r"decoder\.max_len: expected at most 100000"),
    ({"decoder": {"d_model": 0}}, r"decoder\.d_model: expected >= 1"),
    ({"visual_embedder": {"image_size": 10**6}}, r"visual_embedder\.image_size: expected 8\.\.2048"),
])
def test_model_sizes_are_bounded_before_anything_is_built(fields, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(ModelConfig, fields)


def test_an_image_size_that_is_not_a_multiple_of_the_patch_size_is_refused_at_load():
    with pytest.raises(ConfigError, match=r"image_size \(36\) must be a multiple of the video encoder's patch_size \(8\)"):
        tiny_config("timesformer", image_size=36)
    with pytest.raises(ConfigError, match=r"image_size \(100\) must be a multiple of .*patch_size \(16\)"):
        from_dict(ModelConfig, {"image_size": 100})  # the HF default patch: 16
    assert tiny_config("timesformer", image_size=40).image_size == 40
