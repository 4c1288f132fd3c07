"""Fixtures of the robustness suite: a tiny real dataset and trained run, bad-file makers, and the
``msqnet`` command line run in-process under a time limit (a hang fails the test, it never blocks CI)."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from msqnet.cli import main
from msqnet.config_loader import write_config_file
from msqnet.engine.trainer import train
from msqnet.synth import SynthConfig, generate_dataset

from ..engine.conftest import make_config, write_train_config
from ..models.tiny import tiny_config

# Generous for a command on the tiny data (a few seconds at most); a command still running then hangs.
CLI_TIMEOUT_S = 60


class CliTimeout(BaseException):
    """A command ran past its time limit (a BaseException: the CLI's error handler must not swallow it)."""


@dataclass
class CliResult:
    """Exit code and captured output of one in-process ``msqnet`` run."""

    argv: list[str]
    code: int
    out: str
    err: str

    def error_lines(self) -> list[str]:
        """The stderr lines that report an error (argparse prints its usage before its one)."""
        return [line for line in self.err.splitlines() if ": error:" in line]


def run_msqnet(*argv: str | Path, timeout: float = CLI_TIMEOUT_S) -> CliResult:
    """Run ``msqnet ARGV`` in this process, capturing stdout and stderr; an escaping exception fails the test."""
    args = [str(a) for a in argv]
    out, err = io.StringIO(), io.StringIO()

    def expire(signum, frame):
        raise CliTimeout(f"msqnet {' '.join(args)} ran longer than {timeout} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    except CliTimeout as e:
        pytest.fail(f"hang: {e}")
    except BaseException as e:  # noqa: BLE001 - anything escaping main() is what users would see as a traceback
        pytest.fail(f"msqnet {' '.join(args)} let {type(e).__name__} escape: {e}\nstderr:\n{err.getvalue()}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return CliResult(args, code, out.getvalue(), err.getvalue())


def assert_clean_error(result: CliResult, command: str, *culprits: str, code: int = 2) -> str:
    """Non-zero exit with exactly one ``msqnet <command>: error: ...`` line naming every culprit; no traceback."""
    lines = result.error_lines()
    context = f"argv={result.argv}\nstdout:\n{result.out[-2000:]}\nstderr:\n{result.err[-4000:]}"
    assert result.code == code, context
    assert "Traceback" not in result.err, context
    assert len(lines) == 1, context
    line = lines[0]
    assert line.startswith(f"msqnet {command}: error: "), context
    assert "internal error" not in line, context
    for culprit in culprits:
        assert culprit in line, f"{culprit!r} not named in: {line}"
    return line


def strict_json(text: str):
    """Parse JSON refusing ``NaN`` / ``Infinity`` (which Python writes but no JSON reader accepts)."""
    def refuse(token: str):
        raise AssertionError(f"non-finite number {token} in JSON output")

    return json.loads(text, parse_constant=refuse)


# --- session data: a tiny synthetic benchmark and a run trained on it --------------------------------


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 train and 8 test clips of the synthetic benchmark (real H.264 files), 32 px, 8 frames."""
    out = tmp_path_factory.mktemp("robust_data") / "synth"
    generate_dataset(out, SynthConfig(clips=16, test_clips=8, size=32, frames=8, workers=1), progress=False)
    return out


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny TimeSformer MSQNet config file (random init, T=4, 32 px, 8-pixel patches)."""
    path = tmp_path_factory.mktemp("robust_model") / "tiny.yaml"
    write_config_file(tiny_config("timesformer"), path)
    return path


@pytest.fixture(scope="session")
def train_config(data_dir: Path, model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training config file on the tiny data: 2 epochs of 4 steps, evaluated on test_seen."""
    folder = tmp_path_factory.mktemp("robust_cfg")
    cfg = make_config(data_dir, model_file, folder / "run", epochs=2, val_fraction=0.25)
    return write_train_config(cfg, folder / "train.yaml")


@pytest.fixture(scope="session")
def trained_run(train_config: Path) -> Path:
    """A finished run folder (best/, checkpoints/last and previous/, metrics.jsonl)."""
    from msqnet.engine.config import load_train_config

    cfg = load_train_config(train_config)
    train(cfg, progress=False)
    return Path(cfg.output_dir)


# --- per-test copies to damage -----------------------------------------------------------------------


def run_copy(run: Path, dst: Path) -> Path:
    """A private copy of a run folder (its ``best`` link kept), safe to damage."""
    shutil.copytree(run, dst, symlinks=True)
    return dst


def best_model_copy(run: Path, dst: Path) -> Path:
    """A private copy of a run's best model folder, safe to damage."""
    shutil.copytree((run / "best").resolve(), dst)
    return dst


def annotations_copy(data_dir: Path, dst: Path) -> Path:
    """The dataset's class list and split CSVs copied to ``dst`` (videos stay in ``data_dir``: the root)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("classes.json", "train.csv", "test_seen.csv"):
        shutil.copy(data_dir / name, dst / name)
    return dst


def videos_copy(data_dir: Path, dst: Path) -> Path:
    """A dataset root holding a copy of the videos (to damage one), with the CSVs beside them."""
    shutil.copytree(data_dir / "videos", dst / "videos")
    annotations_copy(data_dir, dst)
    return dst
