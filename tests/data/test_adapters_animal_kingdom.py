"""Animal Kingdom adapter on the official annotation files, plus the per-frame and *_light tables."""
from __future__ import annotations

from pathlib import Path

import pytest

from msqnet.config_loader import ConfigError
from msqnet.data.config import DataConfig
from msqnet.data.datasets import AnnotationError, DatasetSplit, load_split

ROOT = "/datasets/ak/image"


@pytest.fixture(scope="module")
def ak_dir(shared_dir: Path) -> Path:
    return shared_dir / "annotations" / "animal_kingdom"


@pytest.fixture(scope="module")
def ak(ak_dir: Path) -> dict[str, DatasetSplit]:
    cfg = DataConfig("animal_kingdom", ROOT, str(ak_dir))
    return {split: load_split(cfg, split) for split in ("train", "test")}


def test_official_table_yields_24004_train_and_6096_test_clips(ak: dict[str, DatasetSplit]) -> None:
    assert len(ak["train"].records) == 24_004
    assert len(ak["test"].records) == 6_096
    assert not ak["train"].problems and not ak["test"].problems
    assert {r.uid for r in ak["train"].records}.isdisjoint(r.uid for r in ak["test"].records)


def test_class_names_come_from_the_action_sheet_with_yawning_as_139(ak: dict[str, DatasetSplit]) -> None:
    names = ak["train"].class_names
    assert len(names) == 140 and len(set(names)) == 140
    assert names[139] == "Yawning"
    assert names[1] == "Attacking" and names[2] == "Attending"
    assert ak["train"].class_descriptions[65].startswith("Include piggybacking")
    assert ak["train"].multi_label


def test_segments_are_17_head_29_middle_94_tail(ak: dict[str, DatasetSplit]) -> None:
    seg = ak["train"].segments
    assert {k: len(v) for k, v in seg.items()} == {"head": 17, "middle": 29, "tail": 94}
    assert sorted(seg["head"] + seg["middle"] + seg["tail"]) == list(range(140))


@pytest.mark.parametrize(
    "action, segment",
    [
        # df_action_AR_count.csv's index column swaps 49/50 and rotates 81-84; the name join must not.
        ("Flapping its ears", "tail"),
        ("Flapping Tail", "middle"),
        ("Performing allo-grooming", "tail"),
        ("Performing allo-preening", "tail"),
        ("Performing copulatory mounting", "tail"),
        ("Performing Sexual Display", "tail"),
    ],
)
def test_misindexed_segment_classes_land_in_their_named_segment(ak: dict[str, DatasetSplit], action: str, segment: str) -> None:
    names = [n.casefold() for n in ak["train"].class_names]
    assert names.index(action.casefold()) in ak["train"].segments[segment]


def test_records_carry_labels_species_and_frame_folder(ak: dict[str, DatasetSplit]) -> None:
    first = ak["train"].records[0]
    assert first.uid == "AAACXZTV" and first.labels == (2, 40)
    assert first.source == f"{ROOT}/AAACXZTV"
    assert first.meta["animals"] == "Common Crane"
    mongoose = next(r for r in ak["train"].records if r.uid == "AACJGIQR")
    assert mongoose.labels == (1, 8, 39, 97, 102, 120)
    assert mongoose.meta["animals"] == "Black Mamba; Mongoose"
    # one of the 411 rows whose pairs are nested once more inside strings
    cobra = next(r for r in ak["train"].records if r.uid == "RWDPSUXS")
    assert cobra.meta["animals"] == "Ashe'S Spitting Cobra"


def test_video_source_option_points_at_video_files(ak_dir: Path) -> None:
    cfg = DataConfig("animal_kingdom", "/v", str(ak_dir), options={"source": "video", "video_ext": ".mkv"})
    assert load_split(cfg, "test").records[0].source == "/v/AAAUILHH.mkv"


def test_unknown_option_is_rejected(ak_dir: Path) -> None:
    with pytest.raises(ConfigError, match="options.sorce: unknown key"):
        load_split(DataConfig("animal_kingdom", ROOT, str(ak_dir), options={"sorce": "video"}), "train")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


PER_FRAME = """original_vido_id video_id frame_id path labels
AAACXZTV 0 0 AAACXZTV/AAACXZTV_f000001.jpg 2,40
AAACXZTV 0 1 AAACXZTV/AAACXZTV_f000002.jpg 2,40
AAACXZTV 0 2 AAACXZTV/AAACXZTV_f000003.jpg 2,41
AABKMGHE 1 0 AABKMGHE/AABKMGHE_f000001.jpg 78
"""


def test_per_frame_table_groups_frames_into_videos(tmp_path: Path, ak_dir: Path) -> None:
    _write(tmp_path / "train.csv", PER_FRAME)
    cfg = DataConfig("animal_kingdom", ROOT, str(tmp_path), classes=str(ak_dir / "AR_metadata_Action.csv"))
    data = load_split(cfg, "train")
    assert [(r.uid, r.labels, r.meta["num_frames"]) for r in data.records] == [
        ("AAACXZTV", (2, 40, 41), "3"),
        ("AABKMGHE", (78,), "1"),
    ]
    assert data.records[0].source == f"{ROOT}/AAACXZTV"
    assert data.segments is None  # no df_action_AR_count.csv beside these annotations


def test_reference_light_table_is_read_for_the_val_named_test_split(tmp_path: Path, ak_dir: Path) -> None:
    _write(tmp_path / "val_light.csv", "video_id;labels\nAAAUILHH;16\nAACJGIQR;102,1,39\n")
    cfg = DataConfig("animal_kingdom", ROOT, str(tmp_path), classes=str(ak_dir / "AR_metadata_Action.csv"))
    data = load_split(cfg, "test")
    assert [(r.uid, r.labels) for r in data.records] == [("AAAUILHH", (16,)), ("AACJGIQR", (1, 39, 102))]


def test_unknown_class_id_names_file_and_line(tmp_path: Path, ak_dir: Path) -> None:
    f = _write(tmp_path / "train_light.csv", "video_id;labels\nA;1\nB;140\n")
    cfg = DataConfig("animal_kingdom", ROOT, str(f), classes=str(ak_dir / "AR_metadata_Action.csv"))
    with pytest.raises(AnnotationError, match=rf"^{f}:3: unknown class id 140; expected an id in 0\.\.139"):
        load_split(cfg, "train")


def test_duplicate_video_and_malformed_labels_are_skipped_and_counted(tmp_path: Path, ak_dir: Path) -> None:
    f = _write(tmp_path / "train_light.csv", "video_id;labels\nA;1\nA;2\nB;1,x\nC;\nD;5\n")
    cfg = DataConfig("animal_kingdom", ROOT, str(f), classes=str(ak_dir / "AR_metadata_Action.csv"), on_error="skip")
    data = load_split(cfg, "train")
    assert [r.uid for r in data.records] == ["A", "D"]
    assert [(p.line, p.message.split(";")[0]) for p in data.problems] == [
        (3, "duplicate video_id 'A' (first on line 2)"),
        (4, "bad labels '1,x'"),
        (5, "bad labels ''"),
    ]


def test_video_id_escaping_the_root_is_an_error(tmp_path: Path, ak_dir: Path) -> None:
    f = _write(tmp_path / "train_light.csv", "video_id;labels\n../../etc;1\n")
    cfg = DataConfig("animal_kingdom", ROOT, str(f), classes=str(ak_dir / "AR_metadata_Action.csv"))
    with pytest.raises(AnnotationError, match=r":2: path '\.\./\.\./etc' escapes the dataset root"):
        load_split(cfg, "train")


def test_a_train_file_is_not_read_as_the_test_split(tmp_path: Path, ak_dir: Path) -> None:
    f = _write(tmp_path / "train_light.csv", "video_id;labels\nA;1\n")
    cfg = DataConfig("animal_kingdom", ROOT, str(f), classes=str(ak_dir / "AR_metadata_Action.csv"))
    with pytest.raises(AnnotationError, match="file name says split 'train' but split 'test' was asked for"):
        load_split(cfg, "test")


def test_empty_clip_table_is_an_error(tmp_path: Path, ak_dir: Path) -> None:
    f = _write(tmp_path / "train.csv", "")
    cfg = DataConfig("animal_kingdom", ROOT, str(f), classes=str(ak_dir / "AR_metadata_Action.csv"))
    with pytest.raises(AnnotationError, match="annotation file is empty"):
        load_split(cfg, "train")


def test_segment_file_naming_an_unknown_action_is_reported(tmp_path: Path, ak_dir: Path) -> None:
    for name in ("AR_metadata_AR.csv", "AR_metadata_Action.csv"):
        (tmp_path / name).write_bytes((ak_dir / name).read_bytes())
    lines = (ak_dir / "df_action_AR_count.csv").read_text().splitlines()
    lines[4] = lines[4].replace("Barking", "Barkin")
    _write(tmp_path / "df_action_AR_count.csv", "\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=r"df_action_AR_count.csv:5: unknown action 'Barkin'"):
        load_split(DataConfig("animal_kingdom", ROOT, str(tmp_path)), "test")
