"""Charades adapter on fixtures written in the official format (quoted fields, empty actions)."""
from __future__ import annotations

from pathlib import Path

import pytest

from msqnet.config_loader import ConfigError
from msqnet.data.config import DataConfig
from msqnet.data.datasets import AnnotationError, load_split

CLASSES = """c000 Holding some clothes
c001 Putting clothes somewhere
c002 Taking some clothes from somewhere
c003 Throwing clothes somewhere
c004 Tidying some clothes
"""
HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
# The official files quote fields holding commas and newlines, and leave `actions` empty for some videos.
TRAIN = HEADER + (
    '46GP8,HR43,Kitchen,6,7,Yes,"A person cooks food on a stove, then eats.","food;stove",'
    '"A person is cooking, then eating.",c002 11.90 21.20;c004 0.00 12.60;c002 30.00 31.00,33.67\n'
    'N11GT,0KZ7,Stairs,6,7,Yes,"One person opens a door.","door","A person walks\nup the stairs.",,20.00\n'
    'X2DK8,3VAY,Bedroom,7,6,No,"Person folds clothes.","clothes","Folding, then tidying.",c001 1.00 5.50,15.10\n'
)
TEST = HEADER + (
    'YSKX3,HJ3T,Hallway,5,5,Yes,"A person stands.","","Nothing happens.",,30.00\n'
    'ZZ9Q1,R2D2,Garage,6,7,Yes,"A person throws clothes.","clothes","Throwing, laughing.",c003 2.00 4.00,10.00\n'
)


@pytest.fixture()
def charades(tmp_path: Path) -> Path:
    (tmp_path / "Charades_v1_classes.txt").write_text(CLASSES)
    (tmp_path / "Charades_v1_train.csv").write_text(TRAIN)
    (tmp_path / "Charades_v1_test.csv").write_text(TEST)
    return tmp_path


def cfg(ann: Path, **kw) -> DataConfig:
    return DataConfig("charades", "/data/charades/videos", str(ann), **kw)


def test_video_labels_are_the_union_of_its_actions(charades: Path) -> None:
    data = load_split(cfg(charades), "train")
    assert data.class_names[2] == "Taking some clothes from somewhere" and len(data.class_names) == 5
    assert data.multi_label
    first = data.records[0]
    assert (first.uid, first.labels, first.start, first.end) == ("46GP8", (2, 4), None, None)
    assert first.source == "/data/charades/videos/46GP8.mp4"
    assert first.meta["scene"] == "Kitchen" and first.meta["length"] == "33.67"


def test_train_drops_videos_without_actions_unless_asked_to_keep_them(charades: Path) -> None:
    assert [r.uid for r in load_split(cfg(charades), "train").records] == ["46GP8", "X2DK8"]
    kept = load_split(cfg(charades, options={"keep_unlabeled_train": True}), "train")
    assert [(r.uid, r.labels) for r in kept.records] == [("46GP8", (2, 4)), ("N11GT", ()), ("X2DK8", (1,))]


def test_test_split_keeps_every_video_also_those_without_actions(charades: Path) -> None:
    data = load_split(cfg(charades), "test")
    assert [(r.uid, r.labels) for r in data.records] == [("YSKX3", ()), ("ZZ9Q1", (3,))]


def test_segments_option_gives_one_single_label_record_per_action_instance(charades: Path) -> None:
    data = load_split(cfg(charades, options={"segments": True}), "train")
    assert not data.multi_label
    assert [(r.uid, r.labels, r.start, r.end) for r in data.records] == [
        ("46GP8@0", (2,), 11.9, 21.2),
        ("46GP8@1", (4,), 0.0, 12.6),
        ("46GP8@2", (2,), 30.0, 31.0),
        ("X2DK8@0", (1,), 1.0, 5.5),
    ]


def test_frame_folder_source_records_the_24_fps_frame_rate(charades: Path) -> None:
    rec = load_split(cfg(charades, options={"source": "frames"}), "test").records[0]
    assert rec.source == "/data/charades/videos/YSKX3" and rec.meta["fps"] == "24"


def test_unknown_class_is_reported_at_its_line_after_a_multiline_field(charades: Path) -> None:
    f = charades / "Charades_v1_train.csv"
    f.write_text(TRAIN + 'Q1W2E,HR43,Kitchen,6,7,Yes,"x","y","z",c157 1.0 2.0,9.0\n')
    # header + 46GP8 + N11GT (2 physical lines) + X2DK8 = 5 lines, so the bad row is line 6
    with pytest.raises(AnnotationError, match=rf"^{f}:6: unknown class 'c157'; expected a class of Charades_v1_classes.txt"):
        load_split(cfg(charades), "train")


def test_malformed_action_and_duplicate_id_are_skipped_and_counted(charades: Path) -> None:
    (charades / "Charades_v1_test.csv").write_text(
        TEST + 'AB12C,HR43,Kitchen,6,7,Yes,"x","y","z",c001 4.0,9.0\nYSKX3,HR43,Hall,6,7,Yes,"x","y","z",,9.0\n'
    )
    data = load_split(cfg(charades, on_error="skip"), "test")
    assert [r.uid for r in data.records] == ["YSKX3", "ZZ9Q1"]
    assert [(p.line, p.message) for p in data.problems] == [
        (4, "bad action 'c001 4.0'; expected 'cNNN start end' items separated by ';'"),
        (5, "duplicate video id 'YSKX3' (first on line 2); expected unique ids"),
    ]


def test_segment_ending_before_it_starts_is_an_error_in_segment_mode(charades: Path) -> None:
    (charades / "Charades_v1_test.csv").write_text(HEADER + 'AB12C,HR43,Kitchen,6,7,Yes,"x","y","z",c001 4.0 3.0,9.0\n')
    with pytest.raises(AnnotationError, match=":2: action 0 \\(c001\\) ends at 3.0 s, not after its start 4.0 s"):
        load_split(cfg(charades, options={"segments": True}), "test")


def test_missing_actions_column_and_bad_class_file_are_errors(charades: Path) -> None:
    (charades / "Charades_v1_test.csv").write_text("id,subject,length\nA,B,1.0\n")
    with pytest.raises(AnnotationError, match=":1: missing column 'actions'"):
        load_split(cfg(charades), "test")
    (charades / "Charades_v1_classes.txt").write_text("c000 Holding\nc002 Skipped one\n")
    with pytest.raises(AnnotationError, match="Charades_v1_classes.txt:2: class c002 out of order; expected c001"):
        load_split(cfg(charades), "train")


def test_unknown_split_is_a_config_error(charades: Path) -> None:
    with pytest.raises(ConfigError, match="has no split 'val'; expected one of \\['train', 'test'\\]"):
        load_split(cfg(charades), "val")
