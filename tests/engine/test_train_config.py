"""TrainConfig: the packaged recipes, the paper's recipe in them, the model resolved at load, overrides and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from msqnet.config_loader import ConfigError
from msqnet.engine.config import TrainConfig, load_train_config
from msqnet.models import ModelConfig, get_model_config
from msqnet.presets import list_recipes, recipe_file

from .conftest import make_config, run_cli, write_train_config

RECIPES = list_recipes()
BENCHMARKS = ["animal_kingdom", "charades", "thumos14", "hmdb51", "hockey"]


def test_a_recipe_ships_for_every_benchmark_the_generic_format_the_synthetic_set_and_the_demo():
    assert set(BENCHMARKS) | {"generic", "synthetic", "demo"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_validates_with_its_model_resolved(name: str):
    cfg = load_train_config(name)
    assert isinstance(cfg, TrainConfig) and isinstance(cfg.model, ModelConfig)
    assert cfg.output_dir


def test_a_recipe_file_loads_like_its_name():
    assert load_train_config(recipe_file("hockey")) == load_train_config("hockey")


def test_model_overrides_are_applied_and_validated_when_the_config_loads():
    cfg = load_train_config("demo", ["model_overrides=[decoder.num_heads=2]"])
    assert cfg.model.decoder.num_heads == 2 and cfg.model.name == "msqnet-lite"
    with pytest.raises(ConfigError, match="model_overrides: .*decoder.num_heads: expected int"):
        load_train_config("demo", ["model_overrides=[decoder.num_heads=many]"])
    with pytest.raises(ConfigError, match="model: .*neither a model preset"):
        load_train_config("demo", ["model=msqnet-huge"])


def test_an_unknown_recipe_names_the_ones_there_are():
    with pytest.raises(ConfigError, match="neither a training recipe .*demo.*nor a config file"):
        load_train_config("no-such-recipe")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_configs_carry_the_papers_training_recipe(name: str):
    cfg = load_train_config(name)
    assert cfg.model == get_model_config("msqnet-b16")
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("adam", 1e-5, 0.0)
    assert cfg.optim.encoder_lr in (None, 1e-5)
    assert (cfg.schedule.name, cfg.schedule.restart_epochs, cfg.schedule.restart_mult) == ("warm_restarts", 10, 1)
    assert (cfg.epochs, cfg.clips_per_epoch, cfg.batch_size, cfg.precision, cfg.seed) == (100, 2500, 32, "fp32", 1)
    assert (cfg.sampling.strategy, cfg.sampling.num_frames, cfg.transform.size) == ("tsn", 16, 224)
    assert cfg.transform.color_jitter == (0.4, 0.4, 0.2, 0.1) and cfg.transform.grayscale_prob == 0.2


def test_single_label_benchmarks_train_with_cross_entropy_and_report_top1():
    for name in ("thumos14", "hmdb51"):
        cfg = load_train_config(name)
        assert cfg.loss.name == "ce" and cfg.metric == "top1"


def test_overrides_reach_nested_keys():
    cfg = load_train_config("animal_kingdom",
                            ["optim.lr=0.001", "epochs=3", "data.root=/elsewhere", "eval_splits=[test, train]"])
    assert cfg.optim.lr == 0.001 and cfg.epochs == 3
    assert cfg.data.root == "/elsewhere" and cfg.eval_splits == ["test", "train"]


def test_an_unknown_key_is_an_error_naming_the_key_and_the_file():
    with pytest.raises(ConfigError) as e:
        load_train_config("hockey", ["optim.learning_rate=0.1"])
    msg = str(e.value)
    assert "hockey.yaml" in msg and "optim.learning_rate" in msg and "unknown key" in msg


def test_a_wrong_type_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"batch_size: expected int"):
        load_train_config("hockey", ["batch_size=big"])


def test_invalid_values_are_rejected_with_the_reason(tmp_path: Path, synth_dir, tiny_model_file):
    for field, value, reason in [("grad_accum", 0, "grad_accum"), ("precision", "fp8", "precision"),
                                 ("clips_per_epoch", 0, "clips_per_epoch"), ("metrics", ["mAP@5"], "unknown metric")]:
        with pytest.raises(ConfigError, match=reason):
            make_config(synth_dir, tiny_model_file, tmp_path, **{field: value})


def test_msqnet_train_rejects_an_unknown_override_with_exit_code_2(tmp_path: Path, synth_dir, tiny_model_file):
    cfg_file = write_train_config(make_config(synth_dir, tiny_model_file, tmp_path / "run"), tmp_path / "t.yaml")
    proc = run_cli("train", str(cfg_file), "optim.momentum=0.9")
    assert proc.returncode == 2
    assert "optim.momentum: unknown key" in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing was started
