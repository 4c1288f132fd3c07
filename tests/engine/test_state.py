"""Training states: exact round trip, verification, corrupt and edited files."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from msqnet.checkpoint import CheckpointError, load_model
from msqnet.engine import state as state_mod
from msqnet.engine.config import OptimConfig
from msqnet.engine.optim import build_optimizer
from msqnet.engine.state import (
    TrainingState,
    capture_rng,
    load_training_state,
    restore_rng,
    verify_training_state,
    write_training_state,
)
from msqnet.models import create_model

from ..models.tiny import tiny_config

CLASSES = ["walking", "running", "eating"]


def _trained(seed: int = 0, steps: int = 2):
    """A tiny model and Adam after a few real steps (so the moments are non-zero)."""
    torch.manual_seed(seed)
    model = create_model(tiny_config("timesformer"), CLASSES)
    opt = build_optimizer(model, OptimConfig(lr=1e-2))
    video = torch.randint(0, 256, (2, 4, 3, 32, 32), dtype=torch.uint8)
    for _ in range(steps):
        model(video).logits.square().mean().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def _state(step: int = 7) -> TrainingState:
    return TrainingState(epoch=1, step_in_epoch=3, global_step=step, best=[{"value": 0.5, "epoch": 1, "path": "x"}],
                         log_records=11, config={"seed": 1})


def _save(folder: Path, model, opt, step: int = 7, scaler=None) -> Path:
    folder.mkdir(parents=True)
    write_training_state(folder, model=model, optimizer=opt, scaler=scaler, state=_state(step), rng=[capture_rng()])
    return folder


def test_the_state_round_trips_model_optimiser_scaler_and_bookkeeping(tmp_path: Path):
    model, opt = _trained()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler._growth_tracker = torch.tensor([5], dtype=torch.int32)
    path = _save(tmp_path / "checkpoints", model, opt, scaler=scaler)
    fresh, fresh_opt = _trained(seed=1, steps=1)
    fresh_scaler = torch.amp.GradScaler("cpu")
    st, _ = load_training_state(path, model=fresh, optimizer=fresh_opt, scaler=fresh_scaler)
    assert (st.epoch, st.step_in_epoch, st.global_step, st.log_records) == (1, 3, 7, 11)
    assert st.best == [{"value": 0.5, "epoch": 1, "path": "x"}]
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), k
    saved, loaded = opt.state_dict()["state"], fresh_opt.state_dict()["state"]
    assert saved.keys() == loaded.keys()
    for i in saved:
        assert all(torch.equal(saved[i][k], loaded[i][k]) for k in saved[i]), i
    assert fresh_opt.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    assert fresh_scaler.state_dict() == scaler.state_dict()


def test_rng_states_round_trip(tmp_path: Path):
    model, opt = _trained()
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    path = _save(tmp_path / "c", model, opt)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    _, rng = load_training_state(path, model=model, optimizer=opt, scaler=None)
    restore_rng(rng)
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


def test_a_state_folder_is_also_a_model_checkpoint(tmp_path: Path):
    model, opt = _trained()
    path = _save(tmp_path / "c", model, opt)
    loaded = load_model(path)
    video = torch.randint(0, 256, (1, 4, 3, 32, 32), dtype=torch.uint8)
    model.eval()
    torch.testing.assert_close(loaded(video).logits, model(video).logits)


def test_nothing_is_pickled(tmp_path: Path):
    model, opt = _trained()
    path = _save(tmp_path / "c", model, opt)
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["README.md", "classes.txt", "config.json", "model.safetensors", "optimizer.safetensors", "rng.safetensors",
         "trainer_state.json"])
    json.loads((path / "trainer_state.json").read_text())
    load_file(str(path / "optimizer.safetensors"))


def test_a_truncated_file_is_a_clear_error_naming_it(tmp_path: Path):
    model, opt = _trained()
    path = _save(tmp_path / "checkpoints", model, opt)
    weights = path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: checksum mismatch.*corrupt or truncated"):
        verify_training_state(path)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_training_state(path, model=model, optimizer=opt, scaler=None)


def test_a_truncated_state_document_is_a_clear_error(tmp_path: Path):
    model, opt = _trained()
    path = _save(tmp_path / "checkpoints", model, opt)
    doc = path / "trainer_state.json"
    doc.write_text(doc.read_text()[:100])
    with pytest.raises(CheckpointError, match=r"trainer_state\.json:\d+: not valid JSON.*corrupt or truncated"):
        verify_training_state(path)


def _rewrite_document(path: Path, change, *, reseal: bool) -> None:
    """Edit a state's trainer_state.json; ``reseal`` recomputes its checksum (as another writer would)."""
    doc_path = path / "trainer_state.json"
    doc = json.loads(doc_path.read_text())
    change(doc)
    if reseal:
        doc["checksum"] = state_mod._document_checksum(doc)
    doc_path.write_text(json.dumps(doc) + "\n")


def test_a_one_bit_edit_of_the_state_document_is_detected(tmp_path: Path):
    model, opt = _trained()
    path = _save(tmp_path / "checkpoints", model, opt, step=6)
    doc = path / "trainer_state.json"
    data = bytearray(doc.read_bytes())
    at = data.index(b'"global_step": 6') + len(b'"global_step": ')
    data[at] ^= 1  # "6" -> "7": still valid JSON, a run that would resume at the wrong step
    doc.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"trainer_state\.json: checksum of the document itself does not match"):
        verify_training_state(path)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["state"].update(surprise=1), r"state\.surprise: unknown key"),
    (lambda d: d["state"].pop("global_step"), r"state: missing keys \['global_step'\]"),
    (lambda d: d.pop("optimizer"), r"missing keys \['optimizer'\]"),
    (lambda d: d.update(extra={}), r"unknown keys \['extra'\]"),
    (lambda d: d["state"].update(epoch=-1), r"state: epoch out of range"),
    (lambda d: d["state"].update(epoch="one"), r"state\.epoch: expected int"),
])
def test_a_state_document_with_unknown_missing_or_wrong_keys_is_refused(tmp_path: Path, change, message):
    model, opt = _trained()
    path = _save(tmp_path / "checkpoints", model, opt)
    _rewrite_document(path, change, reseal=True)
    with pytest.raises(CheckpointError, match=message):
        verify_training_state(path)


def test_a_version_1_document_without_its_own_checksum_still_resumes(tmp_path: Path, caplog):
    model, opt = _trained()
    path = _save(tmp_path / "checkpoints", model, opt, step=5)

    def as_version_1(doc):
        doc["format_version"] = 1
        del doc["checksum"], doc["state"]["nonfinite_steps"]

    _rewrite_document(path, as_version_1, reseal=False)
    with caplog.at_level("WARNING"):
        st, _ = load_training_state(path, model=model, optimizer=opt, scaler=None)
    assert (st.global_step, st.nonfinite_steps) == (5, 0)
    assert "without a checksum of its own" in caplog.text


def test_loading_into_a_model_of_other_sizes_names_the_tensor_and_both_shapes(tmp_path: Path):
    model, opt = _trained()
    path = _save(tmp_path / "checkpoints", model, opt)
    torch.manual_seed(0)
    other = create_model(tiny_config("timesformer", decoder={"d_model": 16, "num_heads": 2, "num_encoder_layers": 1,
                                                               "num_decoder_layers": 1, "dim_feedforward": 48}),
                         CLASSES)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor decoder\..*has shape \[32, 16\], but the "
                                              r"model this run builds .*gives \[48, 16\]"):
        load_training_state(path, model=other, optimizer=build_optimizer(other, OptimConfig()), scaler=None)
