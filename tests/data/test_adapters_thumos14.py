"""THUMOS14 trimmed instances and MultiTHUMOS windows on the official annotation files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from msqnet.data.config import DataConfig
from msqnet.data.datasets import AnnotationError, DatasetSplit, load_split
from msqnet.data.datasets.thumos14 import MULTITHUMOS_CLASSES

ROOT = "/data/thumos14/videos"


@pytest.fixture(scope="module")
def th_dir(shared_dir: Path) -> Path:
    return shared_dir / "annotations" / "thumos14"


@pytest.fixture(scope="module")
def thumos(th_dir: Path) -> dict[str, DatasetSplit]:
    cfg = DataConfig("thumos14", ROOT, str(th_dir))
    return {split: load_split(cfg, split) for split in ("val", "test")}


@pytest.mark.parametrize("split, instances, videos", [("val", 3007, 200), ("test", 3358, 212)])
def test_instances_and_videos_match_the_benchmark(thumos: dict[str, DatasetSplit], split: str, instances: int, videos: int) -> None:
    data = thumos[split]
    assert len(data.records) == instances
    assert len({r.source for r in data.records}) == videos
    assert len({r.uid for r in data.records}) == instances


def test_twenty_classes_alphabetical_ambiguous_excluded(thumos: dict[str, DatasetSplit]) -> None:
    names = thumos["val"].class_names
    assert len(names) == 20 and names == sorted(names)
    assert "Ambiguous" not in names
    assert names[0] == "BaseballPitch" and names[-1] == "VolleyballSpiking"
    assert all(r.meta["class"] != "Ambiguous" for r in thumos["val"].records)


def test_instances_are_single_label_trimmed_segments(thumos: dict[str, DatasetSplit]) -> None:
    data = thumos["val"]
    assert not data.multi_label
    assert all(len(r.labels) == 1 and r.start < r.end for r in data.records)
    golf = [r for r in data.records if r.meta["class"] == "GolfSwing"][:2]
    # GolfSwing_val.txt: "video_validation_0000281  169.7 175.3" (two spaces)
    assert (golf[0].source, golf[0].start, golf[0].end) == (f"{ROOT}/video_validation_0000281.mp4", 169.7, 175.3)
    assert golf[0].labels == (data.class_names.index("GolfSwing"),)
    assert golf[0].meta["fps"] == "30"


def test_malformed_line_and_unknown_video_name_file_and_line(tmp_path: Path, th_dir: Path) -> None:
    shutil.copytree(th_dir / "annotations_val", tmp_path / "annotations_val")
    shutil.copy(th_dir / "TH14_video_info.json", tmp_path)
    bad = tmp_path / "annotations_val" / "Diving_val.txt"
    lines = bad.read_text().splitlines()
    lines[2] = "video_validation_0000364  12.5"
    lines[4] = "video_validation_9999999  1.0 2.0"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=rf"^{bad}:3: 2 fields in .*; expected '<video> <start s> <end s>'"):
        load_split(DataConfig("thumos14", ROOT, str(tmp_path)), "val")
    data = load_split(DataConfig("thumos14", ROOT, str(tmp_path), on_error="skip"), "val")
    assert [(Path(p.file).name, p.line) for p in data.problems] == [("Diving_val.txt", 3), ("Diving_val.txt", 5)]
    assert "is not in TH14_video_info.json" in data.problems[1].message
    assert len(data.records) == 3007 - 2


def test_a_garbage_fps_in_the_video_info_is_a_counted_problem_not_an_abort(tmp_path: Path, th_dir: Path) -> None:
    shutil.copytree(th_dir / "annotations_val", tmp_path / "annotations_val")
    info = json.loads((th_dir / "TH14_video_info.json").read_text())
    info["video_validation_0000281"]["fps"] = "thirty"
    (tmp_path / "TH14_video_info.json").write_text(json.dumps(info))
    with pytest.raises(AnnotationError, match=r"TH14_video_info\.json: video 'video_validation_0000281': fps "
                                              r"'thirty'.*; expected positive numbers fps and duration"):
        load_split(DataConfig("thumos14", ROOT, str(tmp_path)), "val")
    data = load_split(DataConfig("thumos14", ROOT, str(tmp_path), on_error="skip"), "val")
    bad = sum(1 for r in load_split(DataConfig("thumos14", ROOT, str(th_dir)), "val").records
              if r.meta["video"] == "video_validation_0000281")
    assert len(data.problems) == bad and len(data.records) == 3007 - bad


@pytest.fixture(scope="module")
def multithumos(th_dir: Path) -> dict[str, DatasetSplit]:
    cfg = DataConfig("multithumos", ROOT, str(th_dir), options={"window": 4.0, "stride": 2.0})
    return {split: load_split(cfg, split) for split in ("train", "test")}


def test_multithumos_windows_cover_the_subset_videos(multithumos: dict[str, DatasetSplit]) -> None:
    assert multithumos["train"].class_names == list(MULTITHUMOS_CLASSES) and len(MULTITHUMOS_CLASSES) == 65
    assert len({r.source for r in multithumos["train"].records}) == 200
    assert len({r.source for r in multithumos["test"].records}) == 213
    assert multithumos["test"].multi_label
    assert all(r.end - r.start == pytest.approx(4.0) for r in multithumos["train"].records if r.end > 4.0)


def test_multithumos_window_labels_are_the_overlapping_instances(multithumos: dict[str, DatasetSplit]) -> None:
    names = MULTITHUMOS_CLASSES
    window = next(r for r in multithumos["train"].records if r.uid == "video_validation_0000990@108-112")
    labels = {names[i] for i in window.labels}
    # multithumos.json: Jump 108.07-111.57, BodyBend 109.03-110.87, VolleyballSpiking 103.6-110.4
    assert {"Jump", "BodyBend", "VolleyballSpiking"} <= labels
    # TalkToCamera starts at 112.9, after this window
    assert "TalkToCamera" not in labels


def test_multithumos_window_zero_gives_one_record_per_video(th_dir: Path) -> None:
    data = load_split(DataConfig("multithumos", ROOT, str(th_dir / "multithumos.json"), options={"window": 0}), "train")
    assert len(data.records) == 200 and all(r.start is None for r in data.records)
