"""``msqnet predict --files LIST --out preds.jsonl``: one line per video as it completes, resume, torchrun shards."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from msqnet.checkpoint import save_model
from msqnet.cli import main
from msqnet.models import create_model

from .models.tiny import tiny_config

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["walking", "running", "eating"]
VIDEOS = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "tree.avi", "vtest.avi"]
CLI = "import sys; from msqnet.cli import main; sys.exit(main(sys.argv[1:]))"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model(tiny_config(head="text", trainable_label_embeddings=False), CLASSES)
    return save_model(model, tmp_path_factory.mktemp("ckpt") / "open")


@pytest.fixture
def file_list(shared_videos, tmp_path):
    """The shared videos, a missing file and a corrupt one, in a list file."""
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(20_000))
    sources = [str(shared_videos / v) for v in VIDEOS[:3]] + [str(tmp_path / "missing.mp4"), str(corrupt)]
    sources += [str(shared_videos / v) for v in VIDEOS[3:]]
    path = tmp_path / "list.txt"
    path.write_text("# videos to score\n" + "\n".join(sources) + "\n\n")
    return path, sources


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def predict(*args: str) -> int:
    return main(["predict", *args, "--quiet"])


def test_each_video_gets_one_line_in_input_order_and_failures_name_their_file(ckpt, file_list, tmp_path, capsys):
    files, sources = file_list
    out = tmp_path / "preds.jsonl"
    assert predict("--files", str(files), "--checkpoint", str(ckpt), "--out", str(out)) == 1
    lines = records(out)
    assert [r["source"] for r in lines] == sources
    errors = {r["source"]: r["error"] for r in lines if r["error"]}
    assert set(errors) == {sources[3], sources[4]}
    assert all(source in message for source, message in errors.items())
    assert all(set(r["probabilities"]) == set(CLASSES) for r in lines if not r["error"])
    assert "2 failed" in capsys.readouterr().err


def test_the_lines_hold_the_predictions_the_json_output_holds(ckpt, shared_videos, tmp_path):
    videos = [str(shared_videos / v) for v in VIDEOS]
    args = [*videos, "--checkpoint", str(ckpt), "--window", "4", "--stride", "3"]
    assert predict(*args, "--out", str(tmp_path / "a.jsonl"), "--num-workers", "2") == 0
    assert predict(*args, "--out", str(tmp_path / "b.json"), "--num-workers", "0") == 0
    collected = json.loads((tmp_path / "b.json").read_text())
    streamed = records(tmp_path / "a.jsonl")
    assert [r["source"] for r in streamed] == videos and all(r["windows"] for r in streamed)
    for a, b in zip(streamed, collected):
        assert [(w["start"], w["end"]) for w in a["windows"]] == [(w["start"], w["end"]) for w in b["windows"]]
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-6)


def test_an_existing_output_is_only_continued_with_resume(ckpt, shared_videos, tmp_path, capsys):
    out = tmp_path / "preds.jsonl"
    out.write_text("")
    assert predict(str(shared_videos / "tree.avi"), "--checkpoint", str(ckpt), "--out", str(out)) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_skips_videos_already_done_and_retries_failed_ones(ckpt, file_list, tmp_path):
    files, sources = file_list
    out = tmp_path / "preds.jsonl"
    assert predict("--files", str(files), "--checkpoint", str(ckpt), "--out", str(out)) == 1
    lines = records(out)
    lines[0]["probabilities"]["walking"] = 0.123  # a mark that re-scoring the video would erase
    out.write_text("".join(json.dumps(r) + "\n" for r in lines))
    Path(sources[3]).write_bytes(Path(sources[1]).read_bytes())  # the missing video appears (a copy of bikes.mp4)
    assert predict("--files", str(files), "--checkpoint", str(ckpt), "--out", str(out), "--resume") == 1
    resumed = records(out)
    assert [r["source"] for r in resumed] == sources  # one line per video, input order
    assert resumed[0]["probabilities"]["walking"] == 0.123
    assert resumed[3]["error"] is None
    # Same frames as bikes.mp4; scored in another batch, so equal to float round-off.
    np.testing.assert_allclose(list(resumed[3]["probabilities"].values()), list(resumed[1]["probabilities"].values()),
                               atol=1e-6)
    assert resumed[4]["error"] is not None  # still corrupt


def test_a_torn_last_line_is_cut_off_and_that_video_scored_again(ckpt, shared_videos, tmp_path, caplog):
    # One clip per batch: each video's scores are then bit-identical in every run.
    args = [str(shared_videos / v) for v in ("tree.avi", "carphone_pristine.mp4")] + ["--batch-size", "1"]
    out = tmp_path / "preds.jsonl"
    assert predict(*args, "--checkpoint", str(ckpt), "--out", str(out)) == 0
    whole = out.read_text()
    out.write_text(whole[: len(whole) - 40])  # as a power cut mid-write could leave it
    assert predict(*args, "--checkpoint", str(ckpt), "--out", str(out), "--resume") == 0
    assert out.read_text() == whole and "incomplete last line" in caplog.text


def test_resuming_with_other_labels_is_refused(ckpt, shared_videos, tmp_path, capsys):
    out = tmp_path / "preds.jsonl"
    assert predict(str(shared_videos / "tree.avi"), "--checkpoint", str(ckpt), "--out", str(out)) == 0
    assert predict(str(shared_videos / "tree.avi"), "--checkpoint", str(ckpt), "--out", str(out), "--resume",
                   "--labels", "flying") == 2
    assert "other labels" in capsys.readouterr().err


def test_a_killed_run_leaves_whole_lines_and_resumes_to_the_uninterrupted_result(ckpt, shared_videos, tmp_path):
    links = []
    for i in range(20):  # distinct paths to real videos: enough work to be killed midway
        link = tmp_path / "videos" / f"{i:02d}_{VIDEOS[i % 5]}"
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(shared_videos / VIDEOS[i % 5])
        links.append(str(link))
    files = tmp_path / "list.txt"
    files.write_text("\n".join(links) + "\n")
    out = tmp_path / "killed.jsonl"
    # One clip per batch: each video's scores are then bit-identical in every run.
    args = ["predict", "--files", str(files), "--checkpoint", str(ckpt), "--out", str(out), "--batch-size", "1",
            "--num-workers", "0", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-c", CLI, *args], env=ENV, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (out.exists() and out.read_text().count("\n") >= 2):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    text = out.read_text()
    assert text.endswith("\n") and 2 <= text.count("\n") < len(links)  # killed midway, after whole lines only
    assert all(json.loads(line)["error"] is None for line in text.splitlines())
    assert main(args + ["--resume"]) == 0
    reference = tmp_path / "reference.jsonl"
    assert main([a if a != str(out) else str(reference) for a in args]) == 0
    assert out.read_text() == reference.read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_write_the_same_lines_as_one(ckpt, file_list, tmp_path):
    files, sources = file_list
    common = ["predict", "--files", str(files), "--checkpoint", str(ckpt), "--num-workers", "1", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "one.jsonl")]) == 1  # one process: this one (the two bad files)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(REPO / "tests" / "cli_script.py"), *common,
           "--out", str(tmp_path / "two.jsonl")]
    double = subprocess.run(cmd, env=ENV, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert double.returncode != 0, double.stderr[-3000:]  # the two bad files
    one, two = records(tmp_path / "one.jsonl"), records(tmp_path / "two.jsonl")
    assert [(r["source"], r["error"]) for r in two] == [(r["source"], r["error"]) for r in one]
    assert [r["source"] for r in two] == sources
    for a, b in zip(one, two):  # each rank batches other videos together: equal to float round-off
        assert (a["probabilities"] is None) == (b["probabilities"] is None)
        if a["probabilities"]:
            np.testing.assert_allclose(list(b["probabilities"].values()), list(a["probabilities"].values()), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("two.jsonl", ".two.jsonl"))) == ["two.jsonl"]
