"""Typed configs: unknown keys, wrong types and bad files fail with messages naming file and key."""
from __future__ import annotations

import pytest

from msqnet.config_loader import ConfigError, apply_overrides, from_dict, load_config, to_dict
from msqnet.models import ModelConfig, get_model_config, list_presets


def test_every_shipped_preset_validates():
    names = list_presets()
    assert {"msqnet-b16", "msqnet-videomae-b", "msqnet-lite"} <= set(names)
    for name in names:
        cfg = get_model_config(name)
        assert cfg.name == name


def test_unknown_key_is_rejected_with_its_full_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("num_frames: 8\ndecoder:\n  d_model: 64\n  num_head: 4\n")
    with pytest.raises(ConfigError) as e:
        load_config(ModelConfig, path)
    assert str(path) in str(e.value) and "decoder.num_head" in str(e.value) and "num_heads" in str(e.value)


def test_wrong_type_is_rejected_with_expected_type(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("num_frames: eight\n")
    with pytest.raises(ConfigError, match=r"num_frames: expected int, got 'eight'"):
        load_config(ModelConfig, path)


def test_literal_values_are_checked():
    with pytest.raises(ConfigError, match=r"pooling: expected one of \['temporal', 'spatiotemporal', 'reference'\]"):
        from_dict(ModelConfig, {"pooling": "max"})


def test_inconsistent_architecture_is_rejected():
    with pytest.raises(ConfigError, match="divisible"):
        from_dict(ModelConfig, {"decoder": {"d_model": 30, "num_heads": 4}})
    with pytest.raises(ConfigError, match="visual_embedder"):
        from_dict(ModelConfig, {"query": "multimodal", "visual_embedder": {"kind": "none"}})


def test_overrides_are_parsed_as_yaml_and_nested():
    cfg = get_model_config("msqnet-lite", ["decoder.num_heads=8", "pooling=reference", "visual_embedder.mean=null",
                                           "visual_embedder.std=null"])
    assert cfg.decoder.num_heads == 8 and cfg.pooling == "reference" and cfg.visual_embedder.mean is None
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["decoder.num_heads"])


def test_round_trip_through_plain_data():
    cfg = get_model_config("msqnet-b16")
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg


def test_missing_empty_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(ModelConfig, tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_config(ModelConfig, tmp_path / "empty.yaml")
    (tmp_path / "broken.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(ModelConfig, tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="neither a model preset"):
        get_model_config("msqnet-huge")


def test_exponent_floats_without_a_dot_are_numbers():
    from msqnet.models import DecoderConfig

    assert from_dict(DecoderConfig, {"dropout": "1e-3"}).dropout == 0.001
    with pytest.raises(ConfigError, match="dropout: expected number"):
        from_dict(DecoderConfig, {"dropout": "high"})
