"""HMDB51 adapter on the 153 official split files."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from msqnet.config_loader import ConfigError
from msqnet.data.config import DataConfig
from msqnet.data.datasets import AnnotationError, load_split

ROOT = "/data/hmdb51"


@pytest.fixture(scope="module")
def hmdb_dir(shared_dir: Path) -> Path:
    return shared_dir / "annotations" / "hmdb51"


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_each_split_has_3570_train_and_1530_test_videos_over_51_classes(hmdb_dir: Path, fold: int) -> None:
    cfg = DataConfig("hmdb51", ROOT, str(hmdb_dir), fold=fold)
    train, test = load_split(cfg, "train"), load_split(cfg, "test")
    assert (len(train.records), len(test.records)) == (3570, 1530)
    assert len(train.class_names) == 51 and not train.multi_label
    assert {r.labels[0] for r in train.records} == set(range(51))
    assert {r.uid for r in train.records}.isdisjoint(r.uid for r in test.records)


def test_class_ids_follow_label_map_alphabetical_order(hmdb_dir: Path) -> None:
    data = load_split(DataConfig("hmdb51", ROOT, str(hmdb_dir)), "train")
    assert data.class_names == (hmdb_dir / "label_map.txt").read_text().split()
    assert data.class_names[0] == "brush_hair" and data.class_names[-1] == "wave"


def test_video_names_keep_their_special_characters(hmdb_dir: Path) -> None:
    data = load_split(DataConfig("hmdb51", ROOT, str(hmdb_dir)), "test")
    name = "Brushing_Her_Hair__[_NEW_AUDIO_]_UPDATED!!!!_brush_hair_h_cm_np1_fr_goo_0"
    rec = next(r for r in data.records if r.uid == name)
    assert rec.source == f"{ROOT}/brush_hair/{name}.avi" and rec.labels == (0,)
    specials = {c for r in data.records for c in "#()!&" if c in r.uid}
    assert specials == set("#()!&")


def test_frames_source_points_at_the_stem_folder(hmdb_dir: Path) -> None:
    data = load_split(DataConfig("hmdb51", ROOT, str(hmdb_dir / "testTrainMulti_7030_splits"), options={"source": "frames"}), "train")
    assert data.records[0].source == f"{ROOT}/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0"


def test_fold_outside_1_to_3_is_rejected(hmdb_dir: Path) -> None:
    with pytest.raises(ConfigError, match="HMDB51 has splits \\[1, 2, 3\\], got 4"):
        load_split(DataConfig("hmdb51", ROOT, str(hmdb_dir), fold=4), "train")


def test_bad_flag_names_file_and_line(tmp_path: Path, hmdb_dir: Path) -> None:
    splits = tmp_path / "testTrainMulti_7030_splits"
    shutil.copytree(hmdb_dir / "testTrainMulti_7030_splits", splits)
    bad = splits / "wave_test_split1.txt"
    lines = bad.read_text().splitlines()
    lines[6] = lines[6].rstrip()[:-1] + "3 "
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=rf"^{bad}:7: bad line .*; expected '<video>.avi <0\|1\|2>'"):
        load_split(DataConfig("hmdb51", ROOT, str(tmp_path)), "train")
    data = load_split(DataConfig("hmdb51", ROOT, str(tmp_path), on_error="skip"), "train")
    assert len(data.problems) == 1 and data.problems[0].line == 7
