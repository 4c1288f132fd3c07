"""The generic CSV / JSONL format: what users of their own data (and the synthetic benchmark) write."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from msqnet.config_loader import ConfigError
from msqnet.data.config import DataConfig
from msqnet.data.datasets import AnnotationError, available_splits, load_split

CLASSES = "run\njump\nwave hand\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture()
def ds(tmp_path: Path) -> Path:
    write(tmp_path / "classes.txt", CLASSES)
    write(
        tmp_path / "train.csv",
        "path,labels,actor,start,end\n"
        "videos/a.mp4,run;wave hand,dog,,\n"
        "videos/b.mp4,1,cat,2.5,7\n"
        "videos/c.mp4,,bird,,\n"
        '"videos/d, with comma.mp4",0;2;run,human,,\n',
    )
    write(
        tmp_path / "test.jsonl",
        '{"path": "videos/a.mp4", "labels": ["jump", 0], "id": "clip-a", "meta": {"actor": "dog", "n": 2}}\n'
        "\n"
        '{"path": "frames/e", "labels": [], "start": 1.0}\n',
    )
    return tmp_path


def cfg(ann: Path | str, **kw) -> DataConfig:
    return DataConfig("generic", annotations=str(ann), **kw)


def test_csv_labels_by_name_or_id_with_meta_and_segments(ds: Path) -> None:
    data = load_split(cfg(ds), "train")
    assert data.class_names == ["run", "jump", "wave hand"] and data.multi_label
    assert [(r.uid, r.labels, r.start, r.end, dict(r.meta)) for r in data.records] == [
        ("videos/a.mp4", (0, 2), None, None, {"actor": "dog"}),
        ("videos/b.mp4@2.5-7", (1,), 2.5, 7.0, {"actor": "cat"}),
        ("videos/c.mp4", (), None, None, {"actor": "bird"}),
        ("videos/d, with comma.mp4", (0, 2), None, None, {"actor": "human"}),
    ]


def test_paths_are_relative_to_the_annotation_folder_by_default_or_to_root(ds: Path, tmp_path: Path) -> None:
    assert load_split(cfg(ds), "train").records[0].source == str(ds / "videos" / "a.mp4")
    assert load_split(cfg(ds, root="/srv/data"), "train").records[0].source == "/srv/data/videos/a.mp4"


def test_jsonl_split_with_ids_meta_and_open_ended_segment(ds: Path) -> None:
    data = load_split(cfg(ds), "test")
    assert [(r.uid, r.labels, r.start, r.end, dict(r.meta)) for r in data.records] == [
        ("clip-a", (0, 1), None, None, {"actor": "dog", "n": "2"}),
        ("frames/e@1-", (), 1.0, None, {}),
    ]


def test_splits_are_the_annotation_files_of_the_folder(ds: Path) -> None:
    assert available_splits(cfg(ds)) == ["test", "train"]
    assert available_splits(cfg(ds / "train.csv")) == ["train"]
    assert len(load_split(cfg(ds / "train.csv"), "train").records) == 4
    with pytest.raises(ConfigError, match="names the file .*train.csv .* but split 'test' was asked for"):
        load_split(cfg(ds / "train.csv"), "test")
    with pytest.raises(FileNotFoundError, match="no val.csv or val.jsonl .* splits found: \\['test', 'train'\\]"):
        load_split(cfg(ds), "val")


def test_classes_json_gives_names_and_descriptions(ds: Path) -> None:
    (ds / "classes.txt").unlink()
    write(ds / "classes.json", json.dumps([{"name": "run", "description": "moves fast"}, {"name": "jump"}, "wave hand"]))
    data = load_split(cfg(ds), "train")
    assert data.class_names == ["run", "jump", "wave hand"]
    assert data.class_descriptions == ["moves fast", "", ""]


def test_single_label_option_requires_exactly_one_label(ds: Path) -> None:
    with pytest.raises(AnnotationError, match=r"train.csv:2: 2 labels in a single-label dataset; expected exactly one label"):
        load_split(cfg(ds, options={"multi_label": False}), "train")


@pytest.mark.parametrize(
    "row, message",
    [
        ("v.mp4,fly,,", "unknown class name 'fly'; expected a name from the class list or an id"),
        ("v.mp4,3,,", "unknown class id 3; expected an id in 0..2"),
        ("v.mp4,run;;jump,,", "empty label in 'run;;jump'"),
        ("../outside.mp4,run,,", "path '../outside.mp4' escapes the dataset root"),
        ("/etc/passwd,run,,", "path '/etc/passwd' escapes the dataset root"),
        ("v.mp4,run,abc,", "bad start 'abc'; expected a time in seconds or empty"),
        ("v.mp4,run,5,2", "end 2.0 is not after start 5.0; expected start < end"),
        ("v.mp4,run,-1,", "bad start '-1'; expected a finite time >= 0 seconds"),
        ("v.mp4,run,1", "3 fields, the header has 4"),
    ],
)
def test_bad_csv_row_names_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    write(tmp_path / "classes.txt", CLASSES)
    f = write(tmp_path / "train.csv", f"path,labels,start,end\nok.mp4,run,,\n{row}\n")
    with pytest.raises(AnnotationError) as err:
        load_split(cfg(tmp_path), "train")
    assert str(err.value).startswith(f"{f}:3: {message}")
    assert err.value.problem.line == 3


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    write(tmp_path / "classes.txt", CLASSES)
    f = write(tmp_path / "train.csv", "id,path,labels\nx,a.mp4,run\ny,b.mp4,run\nx,c.mp4,jump\n")
    with pytest.raises(AnnotationError, match=rf"^{f}:4: duplicate clip id 'x' \(first on line 2\)"):
        load_split(cfg(tmp_path), "train")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "annotation file is empty"),
        ("path,labels\n", "annotation file has no clips"),
        ("path,label\na.mp4,run\n", ":1: missing column 'labels'"),
    ],
)
def test_unusable_files_raise_even_when_skipping(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "classes.txt", CLASSES)
    write(tmp_path / "train.csv", text)
    with pytest.raises(AnnotationError, match=message):
        load_split(cfg(tmp_path, on_error="skip"), "train")


def test_bad_jsonl_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    write(tmp_path / "classes.txt", CLASSES)
    write(
        tmp_path / "val.jsonl",
        '{"path": "a.mp4", "labels": ["run"]}\n'
        '{"path": "b.mp4", "labels": "run"}\n'
        "{not json\n"
        '{"path": "c.mp4", "labels": [], "actor": "dog"}\n'
        '{"path": "a.mp4", "labels": ["jump"]}\n'
        '{"path": "d.mp4", "labels": [true]}\n',
    )
    data = load_split(cfg(tmp_path, on_error="skip"), "val")
    assert [r.uid for r in data.records] == ["a.mp4"]
    assert [p.line for p in data.problems] == [2, 3, 4, 5, 6]
    assert data.problems[0].message == "labels is a str; expected a list of class names or ids"
    assert data.problems[2].message.startswith("unknown keys ['actor']")
    assert data.problems[3].message.startswith("duplicate clip id 'a.mp4' (first on line 1)")


def test_class_list_problems(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", "path,labels\na.mp4,run\n")
    with pytest.raises(FileNotFoundError, match="no class list; expected classes.txt"):
        load_split(cfg(tmp_path), "train")
    write(tmp_path / "classes.txt", "run\njump\nrun\n")
    with pytest.raises(AnnotationError, match=r"classes.txt:3: duplicate class name 'run' \(first on line 1\)"):
        load_split(cfg(tmp_path), "train")
    write(tmp_path / "classes.txt", "run\n\njump\n")
    with pytest.raises(AnnotationError, match="classes.txt:2: blank line inside the class list"):
        load_split(cfg(tmp_path), "train")


def test_config_requires_annotations_and_a_root_outside_generic() -> None:
    with pytest.raises(ConfigError, match="annotations: required"):
        DataConfig("generic")
    with pytest.raises(ConfigError, match="root: required for format 'hmdb51'"):
        DataConfig("hmdb51", annotations="x")


def test_a_split_whose_clips_each_have_one_label_reads_as_single_label(tmp_path: Path) -> None:
    write(tmp_path / "classes.txt", CLASSES)
    write(tmp_path / "train.csv", "path,labels\na.mp4,run\nb.mp4,jump\n")
    split = load_split(cfg(tmp_path), "train")
    assert split.multi_label is False and split.multi_label_inferred is True


def test_one_clip_with_several_or_no_labels_makes_the_split_multi_label(tmp_path: Path) -> None:
    write(tmp_path / "classes.txt", CLASSES)
    for name, rows in (("two", "a.mp4,run;jump\nb.mp4,jump\n"), ("none", "a.mp4,\nb.mp4,jump\n")):
        write(tmp_path / f"{name}.csv", "path,labels\n" + rows)
        split = load_split(cfg(tmp_path), name)
        assert split.multi_label is True and split.multi_label_inferred is False


def test_an_explicit_multi_label_option_wins_over_the_clips(tmp_path: Path) -> None:
    write(tmp_path / "classes.txt", CLASSES)
    write(tmp_path / "train.csv", "path,labels\na.mp4,run\nb.mp4,jump\n")
    split = load_split(cfg(tmp_path, options={"multi_label": True}), "train")
    assert split.multi_label is True and split.multi_label_inferred is False


def test_reading_a_multi_label_split_as_single_label_names_the_clip(tmp_path: Path) -> None:
    write(tmp_path / "classes.txt", CLASSES)
    write(tmp_path / "test.csv", "path,labels,id\na.mp4,run,a\nb.mp4,run;jump,b\n")
    with pytest.raises(ValueError, match=r"split 'test': clip 'b' has 2 labels, but the training split is single-label"):
        load_split(cfg(tmp_path), "test").as_label_kind(False)


def test_holding_out_by_group_keeps_every_group_on_one_side(tmp_path: Path) -> None:
    write(tmp_path / "classes.txt", CLASSES)
    write(tmp_path / "train.csv", "path,labels,source\n" + "".join(f"c{i}.mp4,run,rec{i % 5}\n" for i in range(20)))
    split = load_split(cfg(tmp_path), "train")
    kept, held = split.hold_out(0.2, seed=1, name="val", group_by="source")
    assert len(held.records) == 4 and len({r.meta["source"] for r in held.records}) == 1
    assert not {r.meta["source"] for r in held.records} & {r.meta["source"] for r in kept.records}
    assert split.group_key(["group", "source"]) == "source" and split.group_key(["group"]) is None
