"""Zero-shot class splits: shipped files, the reference's Charades splits, validation of user files."""
from __future__ import annotations

import json

import pytest

from msqnet.data.class_splits import harmonic_mean, list_zero_shot_splits, load_zero_shot_split, random_split

CHARADES = [f"c{i:03d} action {i}" for i in range(157)]


def test_reference_charades_splits_are_the_deterministic_ranges():
    s = load_zero_shot_split("charades_50_50", CHARADES)
    assert s.seen == tuple(range(78)) and s.unseen == tuple(range(78, 157))
    s = load_zero_shot_split("charades_75_25", CHARADES)
    assert s.seen == tuple(range(117)) and s.unseen == tuple(range(117, 157))


@pytest.mark.parametrize("name", list_zero_shot_splits())
def test_every_shipped_split_partitions_its_classes(name):
    from importlib import resources

    n = json.loads((resources.files("msqnet") / "splits" / f"{name}.json").read_text())["num_classes"]
    s = load_zero_shot_split(name, [f"class {i}" for i in range(n)])
    assert sorted(s.seen + s.unseen) == list(range(n)) and s.seen and s.unseen


def test_random_splits_are_seeded_and_sized():
    assert random_split(51, 0.5, seed=0) == random_split(51, 0.5, seed=0)
    assert random_split(51, 0.5, seed=0) != random_split(51, 0.5, seed=1)
    seen, unseen = random_split(20, 0.75, seed=3)
    assert len(seen) == 15 and len(unseen) == 5 and not set(seen) & set(unseen)


def test_user_split_by_class_name_is_case_insensitive(tmp_path):
    path = tmp_path / "z.json"
    path.write_text(json.dumps({"seen": ["Walking", "eating"], "unseen": ["flying"]}))
    s = load_zero_shot_split(path, ["walking", "flying", "eating"])
    assert s.seen == (0, 2) and s.unseen == (1,) and s.names(["walking", "flying", "eating"]) == (["walking", "eating"], ["flying"])


@pytest.mark.parametrize("content, message", [
    ({"seen": ["walking"], "unseen": ["swimming"]}, "unknown class name 'swimming'"),
    ({"seen": [0], "unseen": [7]}, "class id 7 out of range"),
    ({"seen": [0, 1], "unseen": [1]}, "both seen and unseen"),
    ({"seen": [0], "unseen": []}, "'unseen' must be a non-empty list"),
    ({"seen": [0], "unseen": [1], "num_classes": 5}, "written for 5 classes"),
])
def test_bad_split_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=message) as e:
        load_zero_shot_split(path, ["walking", "flying", "eating"])
    assert str(path) in str(e.value)


def test_harmonic_mean():
    assert harmonic_mean(0.5, 0.5) == pytest.approx(0.5)
    assert harmonic_mean(0.8, 0.2) == pytest.approx(0.32)
    assert harmonic_mean(0.8, 0.0) == 0.0
