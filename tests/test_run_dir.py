"""RunDir: the run folder's layout, the model a run folder means, and the run a checkpoint belongs to."""
from __future__ import annotations

from pathlib import Path

from msqnet.checkpoint.run_dir import RunDir


def test_the_layout_names_every_file_of_a_run(tmp_path: Path):
    run = RunDir(tmp_path)
    assert run.metrics_log == tmp_path / "metrics.jsonl" and run.config_file == tmp_path / "config.yaml"
    assert (run.last_state, run.previous_state) == (tmp_path / "checkpoints" / "last",
                                                    tmp_path / "checkpoints" / "previous")
    assert run.best == tmp_path / "best" and RunDir.best_model_name(7) == "models/epoch-007"


def test_a_run_means_its_best_model_else_its_last_state(tmp_path: Path):
    run = RunDir(tmp_path)
    assert run.model_folder() is None and not run.holds_run()
    run.last_state.mkdir(parents=True)
    assert run.model_folder() == run.last_state and run.holds_run()
    (tmp_path / "models" / "epoch-001").mkdir(parents=True)
    run.best.symlink_to("models/epoch-001")
    assert run.model_folder() == run.best


def test_a_checkpoint_knows_the_run_it_lives_in(tmp_path: Path):
    run = RunDir(tmp_path / "run")
    (run.root / "models" / "epoch-002").mkdir(parents=True)
    run.metrics_log.write_text("")
    assert RunDir.containing(run.root / "models" / "epoch-002") == run
    assert RunDir.containing(run.root) == run
    assert RunDir.containing(tmp_path / "elsewhere") is None
