"""Checkpoints that disagree with themselves or with the run resuming them are named, not loaded."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from msqnet.config_loader import to_dict, write_config_file

from ..engine.conftest import make_config
from ..models.tiny import tiny_config
from .conftest import assert_clean_error, best_model_copy, run_msqnet


def test_resuming_after_the_model_file_changed_names_the_change(data_dir: Path, tmp_path: Path):
    model_file = tmp_path / "model.yaml"
    write_config_file(tiny_config("timesformer"), model_file)
    run_config = to_dict(make_config(data_dir, model_file, tmp_path / "run", eval_splits=[], clips_per_epoch=4))
    run_config["model"] = str(model_file)  # the run names its model by file, as a user's config does
    config = tmp_path / "train.yaml"
    write_config_file(run_config, config)
    assert run_msqnet("train", config, "--no-progress").code == 0
    changed = yaml.safe_load(model_file.read_text())
    changed["decoder"]["dim_feedforward"] = 48  # same file, other sizes: the file's name alone cannot tell
    model_file.write_text(yaml.safe_dump(changed))
    result = run_msqnet("train", config, "--resume", "auto", "epochs=2", "--no-progress")
    assert_clean_error(result, "train", "cannot resume", "the config changed in ['model']")


def test_a_checkpoint_whose_config_asks_for_a_huge_model_is_refused_before_allocating(trained_run: Path,
                                                                                       data_dir: Path, tmp_path: Path):
    # ~10^14 weights: building it for real would end in "out of memory", not in this message.
    model = best_model_copy(trained_run, tmp_path / "model")
    config = model / "config.json"
    meta = json.loads(config.read_text())
    meta["model"]["video_encoder"]["config"].update(hidden_size=2**22, intermediate_size=2**24)
    config.write_text(json.dumps(meta))
    result = run_msqnet("predict", data_dir / "videos" / "test_seen_00000.mp4", "--checkpoint", model, "--quiet")
    assert_clean_error(result, "predict", "model.safetensors", "has shape [1, 1, 32]", "gives [1, 1, 4194304]")
