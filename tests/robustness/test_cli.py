"""The one error mechanism at the ``msqnet`` entry point: one line and exit 2 for users' errors, the
traceback on request (``--debug``, ``MSQNET_DEBUG=1``), exit 3 and a request to report for msqnet's own bugs."""
from __future__ import annotations

from pathlib import Path

import pytest

from msqnet.cli import describe_error
from msqnet.cli import model_cmds

from ..engine.conftest import run_cli
from .conftest import assert_clean_error, run_msqnet


def test_debug_after_the_command_adds_the_traceback_to_the_error_line(train_config: Path, tmp_path: Path):
    result = run_msqnet("train", train_config, "optim.lr=inf", f"output_dir={tmp_path}", "--debug")
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.err and "ConfigError" in result.err
    assert result.err.rstrip().splitlines()[-1].startswith("msqnet train: error: ")


def test_debug_before_the_command_works_too(train_config: Path, tmp_path: Path):
    result = run_msqnet("--debug", "train", train_config, "optim.lr=inf", f"output_dir={tmp_path}")
    assert result.code == 2 and "Traceback (most recent call last)" in result.err


def test_the_msqnet_debug_environment_variable_shows_the_traceback(train_config, tmp_path, monkeypatch):
    monkeypatch.setenv("MSQNET_DEBUG", "1")
    result = run_msqnet("train", train_config, "optim.lr=inf", f"output_dir={tmp_path}")
    assert result.code == 2 and "Traceback (most recent call last)" in result.err


def test_without_debug_there_is_no_traceback(train_config: Path, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MSQNET_DEBUG", raising=False)
    assert_clean_error(run_msqnet("train", train_config, "optim.lr=inf", f"output_dir={tmp_path}"), "train", "optim.lr")


def test_a_bug_is_one_line_marked_internal_with_exit_3(monkeypatch):
    def broken(args):  # stands for a defect in a command: an error type no user input should cause
        raise TypeError("unsupported operand")

    monkeypatch.setattr(model_cmds, "_presets", broken)
    result = run_msqnet("presets")
    assert result.code == 3 and "Traceback" not in result.err
    [line] = result.error_lines()
    assert line.startswith("msqnet presets: error: internal error (TypeError: unsupported operand); please report it")
    assert "--debug" in line


@pytest.mark.parametrize("error, expected", [
    (IsADirectoryError(21, "Is a directory", "/data/x"), "/data/x: is a directory; expected a file"),
    (NotADirectoryError(20, "Not a directory", "/data/f.mp4"), "/data/f.mp4: not a directory; expected a folder"),
    (PermissionError(13, "Permission denied", "/data/y"), "/data/y: permission denied"),
    (FileNotFoundError("videos/a.mp4: no such video file"), "videos/a.mp4: no such video file"),
    (MemoryError(), "out of memory: lower batch_size"),
    (ValueError("first line\n  second line"), "first line second line"),
    (RuntimeError("Caught DecodeError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                  '  File "x.py", line 1, in f\nmsqnet.data.decode.DecodeError: a.mp4: not a readable video'),
     "a.mp4: not a readable video"),
])
def test_error_descriptions_are_one_line_naming_the_path(error, expected):
    described = describe_error(error)
    assert described.startswith(expected) and "\n" not in described


def test_a_real_process_ends_in_one_error_line_and_no_traceback(train_config: Path, tmp_path: Path):
    proc = run_cli("train", str(train_config), "clip_grad_norm=nan", f"output_dir={tmp_path}", timeout=120,
                   env={"MSQNET_DEBUG": ""})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if "error" in line.lower()] == [
        f"msqnet train: error: {train_config}: clip_grad_norm: expected a finite number, got 'nan'"]


def test_a_real_process_with_msqnet_debug_shows_the_traceback(tmp_path: Path):
    proc = run_cli("score", str(tmp_path), "-g", str(tmp_path), timeout=120, env={"MSQNET_DEBUG": "1"})
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == f"msqnet score: error: {tmp_path}: is a folder; expected a predictions file"
