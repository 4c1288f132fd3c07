"""Non-finite training: the first NaN/inf loss or gradient stops the run with the step and its clips
(``nonfinite: raise``) or is skipped and counted (``nonfinite: skip``); NaN never reaches a best model,
a checkpoint load or a prediction."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from msqnet.engine.trainer import NonFiniteError, Trainer
from msqnet.models import create_model
from msqnet.inference.predict import predict

from ..engine.conftest import make_config
from ..models.tiny import tiny_config


def poison_gradient_at_step(trainer: Trainer, step: int) -> None:
    """Make the gradient of one real weight NaN during optimiser step ``step`` (1-based), as an overflow would."""
    weight = trainer.model.head.W

    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * math.nan if trainer.state.global_step + 1 == step else grad

    weight.register_hook(hook)


def all_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def test_a_nonfinite_gradient_stops_training_naming_the_step_and_its_clips(data_dir: Path, model_file: Path, tmp_path):
    trainer = Trainer(make_config(data_dir, model_file, tmp_path / "run", eval_splits=[]), progress=False).setup()
    poison_gradient_at_step(trainer, 2)
    with pytest.raises(NonFiniteError, match=r"non-finite gradient norm \(nan\) at epoch 1, optimiser step 2, "
                                             r"clips train_\d+, .*the weights were not updated"):
        trainer.train()
    assert all_finite(trainer.model)
    assert trainer.state.global_step == 1


def test_nonfinite_skip_leaves_the_weights_counts_the_step_and_reports_it(data_dir: Path, model_file: Path, tmp_path):
    cfg = make_config(data_dir, model_file, tmp_path / "run", nonfinite="skip", val_fraction=0.25)
    trainer = Trainer(cfg, progress=False).setup()
    poison_gradient_at_step(trainer, 3)
    result = trainer.train()
    assert result.nonfinite_steps == 1 and result.steps == 3  # 12 training clips (4 held out as val), batch 4
    assert "1 optimiser step(s) skipped for a non-finite loss or gradient" in result.summary()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["nonfinite_steps"] == 1
    assert all_finite(trainer.model)
    assert result.best_model is not None and result.best_model.is_dir()


def test_a_model_with_nonfinite_weights_is_never_kept_as_best(data_dir: Path, model_file: Path, tmp_path, caplog):
    trainer = Trainer(make_config(data_dir, model_file, tmp_path / "run"), progress=False).setup()
    with torch.no_grad():
        trainer.model.head.W[0, 0, 0] = math.inf
    with caplog.at_level("WARNING"):
        trainer._keep_if_best(0, 0.9)
    assert not (tmp_path / "run" / "best").exists() and trainer.state.best == []
    assert "not kept as a best model" in caplog.text


def test_predict_gives_an_error_not_nan_for_a_model_whose_scores_are_nan(data_dir: Path):
    model = create_model(tiny_config("timesformer"), ["walking", "running"]).eval()
    with torch.no_grad():
        model.head.W.fill_(math.nan)
    [pred] = predict(model, [data_dir / "videos" / "test_seen_00000.mp4"])
    assert pred.probabilities is None and "NaN or infinite" in pred.error
    assert "test_seen_00000.mp4" in pred.error
    json.loads(json.dumps(pred.to_dict(), allow_nan=False))
    with pytest.raises(ValueError, match="NaN or infinite"):
        predict(model, torch.zeros(4, 3, 32, 32, dtype=torch.uint8))


def test_finite_predictions_are_unchanged_by_the_check(data_dir: Path):
    model = create_model(tiny_config("timesformer"), ["walking", "running"]).eval()
    [pred] = predict(model, [data_dir / "videos" / "test_seen_00000.mp4"])
    assert pred.error is None and np.isfinite(pred.probabilities).all()
