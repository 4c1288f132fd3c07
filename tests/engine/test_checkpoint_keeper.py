"""Checkpoint keeping: last and previous training states replaced atomically, --resume auto's choice,
the best-N model folders and the ``best`` link."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from msqnet.checkpoint import CheckpointError
from msqnet.config_loader import ConfigError
from msqnet.checkpoint import model_folder as checkpoint_mod
from msqnet.engine.checkpoint_keeper import CheckpointKeeper, find_resume_state, point_link
from msqnet.engine.state import capture_rng
from msqnet.checkpoint.run_dir import RunDir

from .test_state import _rewrite_document, _state, _trained


def _keep(root: Path, model, opt, step: int = 7) -> Path:
    """Save a training state of ``model`` through the keeper of the run folder ``root``."""
    return CheckpointKeeper(RunDir(root)).save_state(model=model, optimizer=opt, scaler=None, state=_state(step),
                                                     rng=[capture_rng()])


def test_saving_again_keeps_the_previous_state(tmp_path: Path):
    model, opt = _trained()
    ckpt = tmp_path / "checkpoints"
    _keep(tmp_path, model, opt, step=1)
    _keep(tmp_path, model, opt, step=2)
    assert json.loads((ckpt / "previous" / "trainer_state.json").read_text())["state"]["global_step"] == 1
    assert json.loads((ckpt / "last" / "trainer_state.json").read_text())["state"]["global_step"] == 2
    assert find_resume_state(tmp_path) == ckpt / "last"


def test_resume_auto_skips_a_corrupt_last_state_for_the_previous_one(tmp_path: Path, caplog):
    model, opt = _trained()
    ckpt = tmp_path / "checkpoints"
    _keep(tmp_path, model, opt, step=1)
    _keep(tmp_path, model, opt, step=2)
    (ckpt / "last" / "optimizer.safetensors").write_bytes(b"\0" * 64)
    with caplog.at_level("WARNING"):
        assert find_resume_state(tmp_path) == ckpt / "previous"
    assert "optimizer.safetensors" in caplog.text


def test_resume_auto_with_only_corrupt_states_is_an_error_and_deletes_nothing(tmp_path: Path):
    model, opt = _trained()
    ckpt = tmp_path / "checkpoints"
    _keep(tmp_path, model, opt)
    (ckpt / "last" / "rng.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no valid training state"):
        find_resume_state(tmp_path)
    assert (ckpt / "last" / "model.safetensors").is_file()


def test_a_run_without_states_has_nothing_to_resume(tmp_path: Path):
    assert find_resume_state(tmp_path) is None


def test_a_failed_save_leaves_the_good_state_untouched(tmp_path: Path, monkeypatch):
    model, opt = _trained()
    ckpt = tmp_path / "checkpoints"
    _keep(tmp_path, model, opt, step=1)
    before = {p.name: p.read_bytes() for p in (ckpt / "last").iterdir()}
    real_save = checkpoint_mod.save_file  # every safetensors file of a state is written through it

    def disk_full(tensors, filename, metadata=None):  # the disk fills up halfway through the first file
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:
            f.truncate(Path(filename).stat().st_size // 2)
        raise OSError(28, "No space left on device", filename)

    monkeypatch.setattr(checkpoint_mod, "save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        _keep(tmp_path, model, opt, step=2)
    after = {p.name: p.read_bytes() for p in (ckpt / "last").iterdir()}
    assert after == before
    assert not (ckpt / "previous").exists()
    assert sorted(p.name for p in ckpt.iterdir()) == ["last"]  # no temp folder left behind
    assert find_resume_state(tmp_path) == ckpt / "last"


def test_resume_auto_falls_back_to_the_previous_state_when_the_last_document_has_an_unknown_key(tmp_path, caplog):
    model, opt = _trained()
    ckpt = tmp_path / "checkpoints"
    _keep(tmp_path, model, opt, step=1)
    _keep(tmp_path, model, opt, step=2)
    _rewrite_document(ckpt / "last", lambda d: d["state"].update(surprise=1), reseal=True)
    with caplog.at_level("WARNING"):
        assert find_resume_state(tmp_path) == ckpt / "previous"
    assert "unknown key" in caplog.text and "skipping a corrupt training state" in caplog.text


def test_a_process_that_does_not_write_leaves_the_disk_alone(tmp_path: Path):
    model, opt = _trained()
    keeper = CheckpointKeeper(RunDir(tmp_path), writes=False)
    keeper.save_state(model=model, optimizer=opt, scaler=None, state=_state(), rng=[capture_rng()])
    assert keeper.offer(0.5, epoch=1, global_step=1, save=lambda folder: pytest.fail("wrote a model"))
    assert list(tmp_path.iterdir()) == [] and [b["epoch"] for b in keeper.best] == [1]  # the bookkeeping is kept


def test_a_new_run_refuses_a_folder_that_holds_one_and_auto_resumes_the_newest_state(tmp_path: Path):
    model, opt = _trained()
    keeper = CheckpointKeeper(RunDir(tmp_path))
    assert keeper.resume_path(None) is None and keeper.resume_path("auto") is None
    _keep(tmp_path, model, opt)
    with pytest.raises(ConfigError, match="already holds a training run; resume it with --resume auto"):
        keeper.resume_path(None)
    assert keeper.resume_path("auto") == tmp_path / "checkpoints" / "last"
    assert keeper.resume_path(str(tmp_path)) == tmp_path / "checkpoints" / "last"  # a run folder
    assert keeper.resume_path(str(tmp_path / "checkpoints" / "last")) == tmp_path / "checkpoints" / "last"


def _offer(keeper: CheckpointKeeper, value: float, epoch: int) -> bool:
    def save(folder: Path) -> None:
        folder.mkdir(parents=True)
        (folder / "value.txt").write_text(str(value))

    return keeper.offer(value, epoch=epoch, global_step=10 * epoch, save=save)


def test_the_best_n_model_folders_are_kept_and_best_points_at_the_top_one(tmp_path: Path):
    keeper = CheckpointKeeper(RunDir(tmp_path), keep_best=2)
    assert [_offer(keeper, v, e) for e, v in enumerate([0.3, 0.5, 0.4, 0.1, 0.6], 1)] == [True, True, True, False, True]
    assert [(b["epoch"], b["value"]) for b in keeper.best] == [(5, 0.6), (2, 0.5)]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["epoch-002", "epoch-005"]
    assert (tmp_path / "best").is_symlink() and (tmp_path / "best" / "value.txt").read_text() == "0.6"
    assert keeper.best[0] == {"value": 0.6, "epoch": 5, "global_step": 50, "path": "models/epoch-005"}


def test_a_tie_keeps_the_earlier_model(tmp_path: Path):
    keeper = CheckpointKeeper(RunDir(tmp_path), keep_best=1)
    _offer(keeper, 0.5, 1)
    assert not _offer(keeper, 0.5, 2)
    assert (tmp_path / "best").resolve() == (tmp_path / "models" / "epoch-001").resolve()


def test_a_resumed_run_forgets_best_folders_deleted_since(tmp_path: Path, caplog):
    keeper = CheckpointKeeper(RunDir(tmp_path), keep_best=2)
    _offer(keeper, 0.5, 1)
    _offer(keeper, 0.4, 2)
    saved = [dict(b) for b in keeper.best]
    (tmp_path / "models" / "epoch-002" / "value.txt").unlink()
    (tmp_path / "models" / "epoch-002").rmdir()
    resumed = CheckpointKeeper(RunDir(tmp_path), keep_best=2)
    with caplog.at_level("WARNING"):
        resumed.restore_best(saved)
    assert [b["epoch"] for b in resumed.best] == [1] and "models/epoch-002" in caplog.text


def test_the_best_link_is_replaced_atomically_and_is_a_copy_where_links_fail(tmp_path: Path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(name)
    point_link(tmp_path / "best", tmp_path / "a")
    point_link(tmp_path / "best", tmp_path / "b")
    assert (tmp_path / "best" / "f").read_text() == "b" and (tmp_path / "best").readlink() == Path("b")

    def no_symlinks(*args, **kwargs):
        raise OSError("symlinks are not supported here")

    monkeypatch.setattr("os.symlink", no_symlinks)
    point_link(tmp_path / "best", tmp_path / "a")
    assert not (tmp_path / "best").is_symlink() and (tmp_path / "best" / "f").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "best"]  # no temporary left behind
