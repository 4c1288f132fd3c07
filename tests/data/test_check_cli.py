"""``msqnet data check`` on real videos and real annotation files: counts, decoding, problems, exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from msqnet.cli import main
from msqnet.data.check import SCHEMA_KEYS

VIDEOS = ("carphone_pristine.mp4", "tree.avi", "bikes.mp4")


@pytest.fixture()
def dataset(tmp_path: Path, shared_videos: Path) -> Path:
    """A generic dataset whose root links the real videos: ``ann/{classes.txt,train.csv}``, ``videos/``."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in VIDEOS:
        (videos / name).symlink_to(shared_videos / name)
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "classes.txt").write_text("talk\nwave\nride\n")
    (ann / "train.csv").write_text(
        "path,labels,start,end\n"
        "carphone_pristine.mp4,talk,,\n"
        "tree.avi,wave,1.0,3.0\n"
        "bikes.mp4,ride;wave,,\n"
    )
    return tmp_path


def run_check(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["data", "check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def generic_args(ds: Path, *extra: str) -> list[str]:
    return ["--format", "generic", "--root", str(ds / "videos"), "--annotations", str(ds / "ann"), "--split", "train", *extra]


def check_schema(report: dict) -> None:
    assert set(report) == set(SCHEMA_KEYS)
    assert isinstance(report["num_clips"], int) and isinstance(report["num_classes"], int)
    assert report["num_classes"] == len(report["class_names"]) == len(report["clips_per_class"])
    assert list(report["clips_per_class"]) == report["class_names"]
    assert report["num_errors"] == len(report["errors"])
    for error in report["errors"]:
        assert set(error) == {"file", "line", "message"}
        assert isinstance(error["file"], str) and (error["line"] is None or isinstance(error["line"], int))


def test_clean_dataset_decodes_every_video_and_exits_zero(dataset: Path, capsys) -> None:
    code, out, _ = run_check(capsys, *generic_args(dataset, "--json"))
    report = json.loads(out)
    check_schema(report)
    assert code == 0 and report["errors"] == []
    assert report["num_clips"] == 3 and report["class_names"] == ["talk", "wave", "ride"]
    assert report["clips_per_class"] == {"talk": 1, "wave": 2, "ride": 1}
    assert report["labels_per_clip"] == {"min": 1, "mean": pytest.approx(4 / 3, abs=1e-4), "max": 2, "histogram": {"1": 2, "2": 1}}
    assert report["decode"] == {"checked": 3, "ok": 3, "failed": 0, "total_videos": 3, "skipped": False}


def test_corrupt_and_missing_videos_are_errors_and_exit_one(dataset: Path, capsys) -> None:
    (dataset / "videos" / "broken.mp4").write_bytes(os.urandom(4096))
    with open(dataset / "ann" / "train.csv", "a") as f:
        f.write("broken.mp4,talk,,\nmissing.avi,wave,,\n")
    code, out, _ = run_check(capsys, *generic_args(dataset, "--json"))
    report = json.loads(out)
    check_schema(report)
    assert code == 1
    assert report["decode"]["failed"] == 2 and report["decode"]["ok"] == 3
    assert [Path(e["file"]).name for e in report["errors"]] == ["broken.mp4", "missing.avi"]
    assert "no such video file" in report["errors"][1]["message"]


def test_annotation_problems_are_listed_with_file_and_line(dataset: Path, capsys) -> None:
    with open(dataset / "ann" / "train.csv", "a") as f:
        f.write("carphone_pristine.mp4,sing,,\n../../etc/passwd,talk,,\n")
    code, out, _ = run_check(capsys, *generic_args(dataset))
    train = dataset / "ann" / "train.csv"
    assert code == 1
    assert f"{train}:5: unknown class name 'sing'" in out
    assert f"{train}:6: path '../../etc/passwd' escapes the dataset root" in out
    assert "3 clips from 3 videos, 3 classes, multi-label" in out  # the good rows are still counted and decoded
    assert "3 of 3 videos checked, 3 ok, 0 failed" in out
    assert "FAILED: 2 problem(s)" in out


def test_segment_starting_after_the_video_is_reported(dataset: Path, capsys) -> None:
    with open(dataset / "ann" / "train.csv", "a") as f:
        f.write("carphone_pristine.mp4,wave,100,104\n")  # the clip is 4 s long
    code, out, _ = run_check(capsys, *generic_args(dataset, "--json"))
    report = json.loads(out)
    assert code == 1 and len(report["errors"]) == 1
    assert "clip carphone_pristine.mp4@100-104: segment [100.000, 104.000] s starts after the last frame" in report["errors"][0]["message"]


def test_no_decode_and_sample_limit_what_is_decoded(dataset: Path, capsys) -> None:
    code, out, _ = run_check(capsys, *generic_args(dataset, "--json", "--no-decode"))
    assert code == 0 and json.loads(out)["decode"]["skipped"] is True
    code, out, _ = run_check(capsys, *generic_args(dataset, "--json", "--sample", "2", "--workers", "2"))
    assert code == 0 and json.loads(out)["decode"]["checked"] == 2


def test_dataset_config_file_with_a_data_section(dataset: Path, capsys) -> None:
    config = dataset / "ds.yaml"
    config.write_text(
        f"data:\n  format: generic\n  root: {dataset / 'videos'}\n  annotations: {dataset / 'ann' / 'train.csv'}\n"
    )
    code, out, _ = run_check(capsys, str(config), "--no-decode")
    assert code == 0 and "generic train: 3 clips" in out  # split taken from the single annotation file
    config.write_text(f"format: generic\nannotations: {dataset / 'ann'}\nroott: x\n")
    code, _, err = run_check(capsys, str(config))
    assert code == 2 and "roott: unknown key for DataConfig" in err


def test_missing_format_or_split_is_a_usage_error(dataset: Path, capsys) -> None:
    code, _, err = run_check(capsys, "--annotations", str(dataset / "ann"))
    assert code == 2 and "no dataset format" in err
    code, _, err = run_check(capsys, "--format", "hmdb51", "--root", "x", "--annotations", str(dataset))
    assert code == 2 and "--split is required; hmdb51 has splits ['train', 'test']" in err


def test_real_animal_kingdom_annotations_report_counts_and_segments(shared_dir: Path, capsys) -> None:
    ak = shared_dir / "annotations" / "animal_kingdom"
    code, out, _ = run_check(
        capsys, "--format", "animal_kingdom", "--root", "/data/ak/image", "--annotations", str(ak),
        "--split", "test", "--no-decode", "--json",
    )
    report = json.loads(out)
    check_schema(report)
    assert code == 0
    assert (report["num_clips"], report["num_classes"]) == (6096, 140)
    assert {k: len(v) for k, v in report["segments"].items()} == {"head": 17, "middle": 29, "tail": 94}
    assert sum(report["clips_per_class"].values()) == sum(int(k) * v for k, v in report["labels_per_clip"]["histogram"].items())


def test_console_script_checks_thumos_and_exits_nonzero_on_missing_videos(shared_dir: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "msqnet"
    if not script.exists():
        pytest.skip(f"{script}: console script not installed (pip install -e .)")
    th = shared_dir / "annotations" / "thumos14"
    args = [str(script), "data", "check", "--format", "thumos14", "--root", str(tmp_path), "--annotations", str(th), "--split", "test"]
    proc = subprocess.run([*args, "--json", "--sample", "2"], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout)
    check_schema(report)
    assert proc.returncode == 1  # the videos are not there
    assert (report["num_clips"], report["num_videos"], report["num_classes"]) == (3358, 212, 20)
    assert report["decode"]["checked"] == 2 and report["decode"]["failed"] == 2
    assert all(e["file"].startswith(str(tmp_path)) and e["file"].endswith(".mp4") for e in report["errors"])


def test_a_split_of_one_label_per_clip_is_reported_as_single_label_for_training(dataset: Path, capsys) -> None:
    (dataset / "ann" / "train.csv").write_text("path,labels\ncarphone_pristine.mp4,talk\nbikes.mp4,ride\n")
    code, out, _ = run_check(capsys, *generic_args(dataset, "--no-decode"))
    assert code == 0
    assert "single-label (every clip has exactly one label, so training treats it as single-label" in out
