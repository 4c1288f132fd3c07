"""Kill a training process mid-epoch with SIGKILL, resume it, and get the same weights bit for bit."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from msqnet.cli import main
from msqnet.engine.trainer import train

from .conftest import REPO, make_config, write_train_config

CODE = "import sys; from msqnet.cli import main; sys.exit(main(sys.argv[1:]))"


def _config(synth_dir: Path, model_file: Path, out: Path):
    # 16 clips / (batch 2 x accumulation 2) = 4 optimiser steps per epoch, a state after every step.
    return make_config(synth_dir, model_file, out, epochs=2, batch_size=2, grad_accum=2, checkpoint_every_steps=1,
                       deterministic=True, threads=1, clip_grad_norm=1.0,
                       transform={"size": 32, "color_jitter_prob": 0.5},
                       model_overrides=["decoder.dropout=0.2"])  # dropout: the RNG state must resume too


def _state(run: Path) -> dict | None:
    try:
        return json.loads((run / "checkpoints" / "last" / "trainer_state.json").read_text())["state"]
    except (OSError, ValueError, KeyError):
        return None  # not written yet, or being renamed into place


def _comparable(run: Path) -> list[dict]:
    """The metrics log without wall-clock fields."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "clips_per_s")} for r in records]


def test_a_run_killed_mid_epoch_resumes_to_bitwise_identical_weights(tmp_path, synth_dir, tiny_model_file, caplog,
                                                                     restore_threads):
    reference = train(_config(synth_dir, tiny_model_file, tmp_path / "reference"), progress=False)
    assert reference.steps == 8

    run = tmp_path / "killed"
    cfg_file = write_train_config(_config(synth_dir, tiny_model_file, run), tmp_path / "train.yaml")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", CODE, "train", str(cfg_file), "--resume", "auto", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            s = _state(run)
            if s is not None and s["step_in_epoch"] > 0:  # a mid-epoch state is on disk: kill now
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.stdout.read().decode()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed:\n{out}"
    at_kill = _state(run)
    assert at_kill["step_in_epoch"] > 0 and at_kill["global_step"] < 8, at_kill

    caplog.set_level(logging.INFO, logger="msqnet")
    # the resumed run: `msqnet train --resume auto`, in this process (one interpreter start fewer)
    assert main(["train", str(cfg_file), "--resume", "auto", "--no-progress"]) == 0
    assert f"step {at_kill['step_in_epoch']} of the epoch" in caplog.text

    ref_w = load_file(str(tmp_path / "reference" / "checkpoints" / "last" / "model.safetensors"))
    got_w = load_file(str(run / "checkpoints" / "last" / "model.safetensors"))
    assert ref_w.keys() == got_w.keys()
    different = [k for k in ref_w if not torch.equal(ref_w[k], got_w[k])]
    assert different == []
    ref_opt = load_file(str(tmp_path / "reference" / "checkpoints" / "last" / "optimizer.safetensors"))
    got_opt = load_file(str(run / "checkpoints" / "last" / "optimizer.safetensors"))
    assert all(torch.equal(ref_opt[k], got_opt[k]) for k in ref_opt)
    # The log has each step once: what the killed run wrote after its last state was dropped.
    assert _comparable(run) == _comparable(tmp_path / "reference")
