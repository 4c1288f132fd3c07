"""The generated folder follows the generic annotation format and the split contract: disjoint
splits, held-out morphologies only in test_unseen_actor, zero-shot classes never in train."""
from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from msqnet.data.config import DataConfig
from msqnet.data.datasets import available_splits, load_split
from msqnet.synth import CLASS_NAMES, CSV_COLUMNS, FORMAT_VERSION, MORPHOLOGIES, SPLITS, SynthConfig
from msqnet.metrics.chance import chance_map, expected_random_ap
from msqnet.synth.datasheet import label_matrix
from msqnet.synth.generate import DEFAULT_UNSEEN_ACTORS, DEFAULT_UNSEEN_CLASSES, sample_split_clip


def _rows(out: Path, split: str) -> list[dict[str, str]]:
    with open(out / f"{split}.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def test_class_lists_name_at_least_twelve_described_classes(tiny_dataset: Path) -> None:
    classes = json.loads((tiny_dataset / "classes.json").read_text())
    names = [c["name"] for c in classes]
    assert names == list(CLASS_NAMES)
    assert len(names) >= 12 and len(set(names)) == len(names)
    for c in classes:
        assert set(c) == {"name", "description"}
        assert c["description"].endswith(".") and len(c["description"].split()) >= 6
    assert len(MORPHOLOGIES) >= 5


def test_csv_rows_follow_the_documented_schema(tiny_dataset: Path) -> None:
    for split in SPLITS:
        for row in _rows(tiny_dataset, split):
            assert row["id"].startswith(split + "_")
            assert (tiny_dataset / row["path"]).is_file() and row["path"] == f"videos/{row['id']}.mp4"
            labels = row["labels"].split(";")
            assert labels and set(labels) <= set(CLASS_NAMES)
            actors = row["actors"].split(";")
            assert set(actors) <= set(MORPHOLOGIES) and int(row["num_actors"]) == len(actors)
            assert len(row["actor_actions"].split(";")) == len(actors)
            assert row["seed"] == "0"


def test_splits_are_disjoint(tiny_dataset: Path) -> None:
    ids = {s: {r["id"] for r in _rows(tiny_dataset, s)} for s in SPLITS}
    paths = {s: {r["path"] for r in _rows(tiny_dataset, s)} for s in SPLITS}
    assert [len(ids[s]) for s in SPLITS] == [16, 8, 8]
    for a, b in itertools.combinations(SPLITS, 2):
        assert not ids[a] & ids[b] and not paths[a] & paths[b]


def test_held_out_morphologies_appear_only_in_test_unseen_actor(tiny_dataset: Path) -> None:
    held_out = set(json.loads((tiny_dataset / "splits/actors.json").read_text())["unseen"])
    assert held_out == set(DEFAULT_UNSEEN_ACTORS)
    for split in ("train", "test_seen"):
        assert not {a for r in _rows(tiny_dataset, split) for a in r["actors"].split(";")} & held_out
    assert {a for r in _rows(tiny_dataset, "test_unseen_actor") for a in r["actors"].split(";")} <= held_out


def test_zero_shot_classes_never_occur_in_train(tiny_dataset: Path) -> None:
    split = json.loads((tiny_dataset / "splits/zero_shot.json").read_text())
    assert split["unseen"] == DEFAULT_UNSEEN_CLASSES
    assert split["seen"] + split["unseen"] == [c for c in CLASS_NAMES if c in split["seen"]] + split["unseen"]
    assert set(split["seen"]) | set(split["unseen"]) == set(CLASS_NAMES)
    cfg = SynthConfig()
    train = [sample_split_clip(cfg, "train", i) for i in range(300)]
    performed = {a for spec in train for actor in spec.actors for a in actor.actions}
    assert not performed & set(split["unseen"]), "no train clip even shows an unseen action"
    tests = {a for i in range(300) for a in sample_split_clip(cfg, "test_seen", i).labels}
    assert set(split["unseen"]) <= tests, "the test splits do score the unseen classes"


def test_the_generic_reader_loads_every_split_from_the_folder_alone(tiny_dataset: Path) -> None:
    cfg = DataConfig(format="generic", annotations=str(tiny_dataset))
    assert sorted(available_splits(cfg)) == sorted(SPLITS)
    for split in SPLITS:
        data = load_split(cfg, split)
        rows = _rows(tiny_dataset, split)
        assert [r.uid for r in data.records] == [r["id"] for r in rows]
        for record, row in zip(data.records, rows):
            assert [CLASS_NAMES[i] for i in record.labels] == row["labels"].split(";")
            assert Path(record.source) == tiny_dataset / row["path"]
            assert record.meta["actors"] == row["actors"]
        assert data.class_descriptions and len(data.class_descriptions) == len(CLASS_NAMES)


def test_datasheet_reports_counts_and_the_exact_chance_level(tiny_dataset: Path) -> None:
    sheet = (tiny_dataset / "datasheet.md").read_text()
    for name in (*CLASS_NAMES, *MORPHOLOGIES, *SPLITS):
        assert name in sheet
    rows = _rows(tiny_dataset, "test_seen")
    y = label_matrix([r["labels"].split(";") for r in rows], CLASS_NAMES)
    assert f"| test_seen | {chance_map(y):.3f} |" in sheet
    meta = json.loads((tiny_dataset / "generator.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["arguments"]["seed"] == 0
    assert meta["counts"] == {"train": 16, "test_seen": 8, "test_unseen_actor": 8}
    assert meta["command"].startswith("msqnet synth OUT_DIR --clips 16")


def test_expected_random_ap_equals_the_exact_average_over_all_rankings() -> None:
    from sklearn.metrics import average_precision_score

    for n, m in ((5, 1), (5, 2), (6, 3), (4, 4)):
        aps = []
        for positives in itertools.combinations(range(n), m):
            y = np.zeros(n)
            y[list(positives)] = 1
            aps.append(average_precision_score(y, -np.arange(n)))  # rank = position
        assert expected_random_ap(n, m) == pytest.approx(np.mean(aps), abs=1e-12)


def test_expected_random_ap_matches_monte_carlo_on_larger_sets() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    for n, m in ((60, 6), (200, 40)):
        y = np.zeros(n)
        y[:m] = 1
        mc = np.mean([average_precision_score(y, rng.random(n)) for _ in range(800)])
        assert expected_random_ap(n, m) == pytest.approx(mc, abs=0.015)  # MC std ~0.004
