"""Hockey (ETS NHL) adapter on a tiny dataset built here in its frame-folder format."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from msqnet.config_loader import ConfigError
from msqnet.data.config import DataConfig
from msqnet.data.datasets import AnnotationError, load_split
from msqnet.data.datasets.hockey import HOCKEY_CLASSES
from msqnet.data.decode import probe, read_frames, segment_frame_range

SHOT, SAVE, PLAY = HOCKEY_CLASSES.index("Shot"), HOCKEY_CLASSES.index("Save"), HOCKEY_CLASSES.index("Play")


def make_video(root: Path, name: str, flags: list[list[int]]) -> None:
    """Frame folder ``name/`` of tiny grey JPEGs (brightness = frame index) and ``name-label.txt``."""
    folder = root / name
    folder.mkdir()
    for i in range(len(flags)):
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(folder / f"{i:06d}.jpg", quality=100)
    (root / f"{name}-label.txt").write_text("".join(",".join(map(str, f)) + "\n" for f in flags))


def flags_with(active: dict[int, range], n: int) -> list[list[int]]:
    """Per-frame 12-flag rows: class c on for the frames in ``active[c]``."""
    return [[int(i in active.get(c, ())) for c in range(12)] for i in range(n)]


@pytest.fixture()
def hockey(tmp_path: Path) -> Path:
    make_video(tmp_path, "period1-1-gray", flags_with({PLAY: range(0, 100), SHOT: range(35, 38)}, 100))
    make_video(tmp_path, "period2-1-gray", flags_with({PLAY: range(0, 40)}, 40))
    make_video(tmp_path, "period1-6-gray", flags_with({SAVE: range(60, 70)}, 95))
    return tmp_path


def test_train_windows_are_30_frames_every_10_over_the_other_parts(hockey: Path) -> None:
    data = load_split(DataConfig("hockey", str(hockey), str(hockey)), "train")
    assert data.class_names == list(HOCKEY_CLASSES) and data.multi_label
    # period1-1: 100 frames -> starts 0..70 (8 windows); period2-1: 40 frames -> starts 0, 10 (2 windows)
    assert [r.uid for r in data.records] == [f"period1-1-gray@{s}" for s in range(0, 71, 10)] + [
        "period2-1-gray@0", "period2-1-gray@10",
    ]
    labels = {r.uid: r.labels for r in data.records}
    assert labels["period1-1-gray@0"] == (PLAY,)
    assert labels["period1-1-gray@10"] == tuple(sorted((PLAY, SHOT)))  # frames 10-39 include the shot at 35-37
    assert labels["period1-1-gray@40"] == (PLAY,)


def test_test_split_is_part_6_with_stride_45(hockey: Path) -> None:
    data = load_split(DataConfig("hockey", str(hockey), str(hockey)), "test")
    assert [(r.uid, r.labels) for r in data.records] == [("period1-6-gray@0", ()), ("period1-6-gray@45", (SAVE,))]
    rec = data.records[1]
    assert rec.meta["frame_start"] == "45" and rec.meta["frame_end"] == "75"
    assert rec.source == str(hockey / "period1-6-gray")


def test_window_seconds_map_back_to_exactly_its_frames(hockey: Path) -> None:
    rec = load_split(DataConfig("hockey", str(hockey), str(hockey)), "test").records[1]
    info = probe(rec.source, fps=float(rec.meta["fps"]))
    assert segment_frame_range(info, rec.start, rec.end) == (45, 75)
    first = read_frames(rec.source, [45])
    assert torch.allclose(first.float().mean(), torch.tensor(45.0), atol=2)  # frame 45 has brightness 45


def test_fold_selects_the_held_out_part(hockey: Path) -> None:
    data = load_split(DataConfig("hockey", str(hockey), str(hockey), fold=1), "test")
    assert {r.uid.split("@")[0] for r in data.records} == {"period1-1-gray", "period2-1-gray"}
    with pytest.raises(ConfigError, match=r"test part 3 has no videos .*parts found: \[1, 6\]"):
        load_split(DataConfig("hockey", str(hockey), str(hockey), fold=3), "test")


def test_malformed_label_line_names_file_and_line(hockey: Path) -> None:
    label = hockey / "period1-6-gray-label.txt"
    lines = label.read_text().splitlines()
    lines[49] = "0,0,1"
    label.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=rf"^{label}:50: bad frame labels '0,0,1'; expected 12 comma-separated 0/1"):
        load_split(DataConfig("hockey", str(hockey), str(hockey)), "test")
    data = load_split(DataConfig("hockey", str(hockey), str(hockey), on_error="skip"), "test")
    # the window 45-74 holds the bad frame: dropped; the problem is counted
    assert [r.uid for r in data.records] == ["period1-6-gray@0"] and len(data.problems) == 1


def test_label_lines_not_matching_the_frames_on_disk_are_reported(hockey: Path) -> None:
    (hockey / "period2-1-gray" / "000039.jpg").unlink()
    data = load_split(DataConfig("hockey", str(hockey), str(hockey), on_error="skip"), "train")
    assert [p.message for p in data.problems] == [
        f"40 label lines but 39 frames in {hockey / 'period2-1-gray'}; expected one label line per frame"
    ]
