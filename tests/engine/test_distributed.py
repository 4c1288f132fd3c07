"""DDP with two real gloo processes (torchrun): training completes, evaluation equals a single process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from msqnet.checkpoint import load_model
from msqnet.data.datasets import load_split
from msqnet.engine.evaluate import evaluate_split
from msqnet.engine.state import verify_training_state

from .conftest import REPO, make_config, write_train_config

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, synth_dir, tiny_model_file):
    """Train 1 epoch with 2 processes (eval on 7 clips: uneven shards), then evaluate with 2 processes."""
    tmp = tmp_path_factory.mktemp("ddp")
    cfg = make_config(synth_dir, tiny_model_file, tmp / "run", eval_splits=["test_odd"], eval_batch_size=2,
                      batch_size=2, threads=1, val_fraction=0.25)
    cfg_file = write_train_config(cfg, tmp / "train.yaml")
    out = tmp / "ddp_eval.npz"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(WORKER), str(cfg_file), "test_odd", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return cfg, np.load(out), proc


def test_two_process_training_completes_and_writes_one_checkpoint(ddp_run):
    cfg, _, _ = ddp_run
    run = Path(cfg.output_dir)
    doc = verify_training_state(run / "checkpoints" / "last")
    # 12 clips (4 of 16 held out as val) over 2 processes in batches of 2: 3 steps, each logged once (rank 0 only).
    assert doc["state"]["world_size"] == 2 and doc["state"]["global_step"] == 3
    assert len(doc["rng"]) == 2  # both processes' random states are in the checkpoint
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3]
    assert sorted(p.name for p in (run / "models").iterdir()) == ["epoch-001"]


def test_two_process_evaluation_equals_a_single_process_run(ddp_run):
    cfg, gathered, _ = ddp_run
    assert int(gathered["world_size"]) == 2
    model = load_model(Path(cfg.output_dir) / "checkpoints" / "last")
    split = load_split(cfg.data, "test_odd")
    single = evaluate_split(model, split, sampling=cfg.sampling, transform=cfg.transform, batch_size=1, progress=False)
    assert list(gathered["indices"]) == list(range(7))  # the padding duplicate is gone, order restored
    np.testing.assert_array_equal(gathered["scores"], single.scores)
    assert json.loads(str(gathered["metrics"])) == single.metrics


def test_the_evaluation_inside_distributed_training_matches_too(ddp_run):
    cfg, _, _ = ddp_run
    run = Path(cfg.output_dir)
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (evaluation,) = [r for r in logged if r["kind"] == "eval" and r["split"] == "test_odd"]
    model = load_model(run / "checkpoints" / "last")
    single = evaluate_split(model, load_split(cfg.data, "test_odd"), sampling=cfg.sampling, transform=cfg.transform,
                            batch_size=2, progress=False)
    assert evaluation["num_clips"] == 7
    assert evaluation["map"] == pytest.approx(single.metrics["map"], abs=1e-9)
