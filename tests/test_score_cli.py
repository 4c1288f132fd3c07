"""Specification of ``msqnet score``: Charades submissions and generic CSV predictions scored against
ground-truth files written here, checked against msqnet.metrics on matrices built independently."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from msqnet.cli import main
from msqnet.metrics import charades_map, compute_metrics, mean_average_precision
from msqnet.metrics.prediction_files import read_charades_submission, write_charades_submission

CHARADES_HEADER = ["id", "subject", "scene", "quality", "relevance", "verified", "script", "objects", "descriptions",
                   "actions", "length"]


def write_charades_gt(path: Path, rows: list[tuple[str, list[int]]]) -> None:
    """A Charades-format CSV: every field quoted, free text with commas and quotes, some empty actions."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(CHARADES_HEADER)
        for i, (vid, classes) in enumerate(rows):
            actions = ";".join(f"c{c:03d} {1.5 * k:.2f} {1.5 * k + 4:.2f}" for k, c in enumerate(classes))
            w.writerow([vid, "HR43", "Kitchen", "6", "7", "Yes", f'A person says "hi", then, sits #{i}.',
                        "chair;cup", "Someone sits, then drinks.", actions, "30.1"])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    code = main(["score", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def charades_case(tmp_path):
    """Ground truth of 12 videos over 6 classes (2 without actions), tied rounded scores, 1 video missing."""
    rng = np.random.default_rng(0)
    num_classes = 6
    ids = [f"V{i:02d}X" for i in range(12)]
    labels = [sorted(rng.choice(num_classes, size=rng.integers(1, 4), replace=False).tolist()) for _ in ids]
    labels[3] = labels[8] = []
    labels[0] = list(range(num_classes))  # every class has a positive
    scores = np.round(rng.random((12, num_classes)), 1)
    gt = tmp_path / "Charades_v1_test.csv"
    write_charades_gt(gt, list(zip(ids, labels)))
    pred = tmp_path / "submission.txt"
    lines = [f"{vid} " + " ".join(f"{v:.1f}" for v in row) for vid, row in zip(ids, scores) if vid != "V05X"]
    pred.write_text("\n".join(lines[::-1]) + "\n")  # submission order must not matter
    targets = np.zeros((12, num_classes), dtype=int)
    for r, cs in enumerate(labels):
        targets[r, cs] = 1
    expected_scores = scores.copy()
    expected_scores[5] = -np.inf
    return gt, pred, targets, expected_scores


def test_charades_submission_is_scored_as_the_official_script(capsys, charades_case):
    gt, pred, targets, scores = charades_case
    code, out, err = run(capsys, pred, "--ground-truth", gt, "--json")
    assert code == 0
    result = json.loads(out)
    expected = charades_map(scores, targets)
    assert result["metrics"]["charades_map"] == pytest.approx(expected.map, abs=1e-12)
    assert result["metrics"]["charades_wap"] == pytest.approx(expected.wap, abs=1e-12)
    assert (result["rows"], result["rows_without_labels"], result["rows_missing"], result["classes"]) == (12, 2, 1, 6)
    assert "1 of 12 ground-truth ids have no predictions (first: 'V05X')" in err


def test_charades_map_by_hand_on_the_cli_fixture(capsys, tmp_path):
    # 3 videos, 2 classes; v2 has no actions and the top scores, so the script scores it -inf.
    # class 0: v0 0.4(+), v1 0.4(-) tied -> the CSV's row order keeps v0 first -> AP 1
    # class 1: v1 0.7(+), v0 0.1(-), v2 -inf(-) -> AP 1
    gt = tmp_path / "gt.csv"
    write_charades_gt(gt, [("v0", [0]), ("v1", [1]), ("v2", [])])
    pred = tmp_path / "pred.txt"
    pred.write_text("v1 0.4 0.7\nv0 0.4 0.1\nv2 0.9 0.9\n")
    code, out, _ = run(capsys, pred, "-g", gt, "--json", "-m", "charades_map,map")
    metrics = json.loads(out)["metrics"]
    assert metrics["charades_map"] == pytest.approx(1.0)
    # sklearn-style mAP reads v2's scores: class 0 ranks v2 (0.9, -) first, then the v0/v1 tie -> AP 1/3
    # by sklearn's tie rule (threshold 0.4: precision 1/3, recall 1); class 1: v2 (-) then v1 (+) -> 1/2
    assert metrics["map"] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_charades_table_output_names_each_metric_with_its_value(capsys, charades_case):
    gt, pred, targets, scores = charades_case
    code, out, _ = run(capsys, pred, "-g", gt, "-m", "charades_map", "-m", "map")
    assert code == 0
    expected = mean_average_precision(scores, targets).map
    assert any(line.split()[:2] == ["map", f"{expected:.4f}"] for line in out.splitlines())
    assert "2 without labels, 1 missing from the predictions" in out


def test_charades_class_list_fixes_the_number_of_classes(capsys, charades_case, tmp_path):
    gt, pred, _, _ = charades_case
    classes = tmp_path / "Charades_v1_classes.txt"
    classes.write_text("".join(f"c{i:03d} Doing thing {i}\n" for i in range(7)))
    code, _, err = run(capsys, pred, "-g", gt, "--classes", classes)
    assert code == 2
    assert f"{pred}:1: expected id and 7 scores, got 6 scores" in err


def test_prediction_id_absent_from_the_ground_truth_is_an_error_naming_the_line(capsys, charades_case):
    gt, pred, _, _ = charades_case
    pred.write_text(pred.read_text() + "ZZZZZ 0 0 0 0 0 0\n")
    code, _, err = run(capsys, pred, "-g", gt)
    assert code == 2
    assert f"{pred}:12: id 'ZZZZZ' is not in the ground truth" in err


def test_duplicated_prediction_id_is_an_error_naming_both_lines(capsys, charades_case):
    gt, pred, _, _ = charades_case
    first = pred.read_text().splitlines()[0]
    pred.write_text(pred.read_text() + first + "\n")
    code, _, err = run(capsys, pred, "-g", gt)
    assert code == 2
    assert f"{pred}:12: id '{first.split()[0]}' already given on line 1" in err


def test_nan_or_non_numeric_scores_are_errors_naming_line_and_column(capsys, charades_case):
    gt, pred, _, _ = charades_case
    lines = pred.read_text().splitlines()
    lines[2] = lines[2].split()[0] + " 0.1 0.2 nan 0.4 0.5 0.6"
    pred.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, pred, "-g", gt)
    assert code == 2 and f"{pred}:3: score 2 is NaN" in err
    lines[2] = lines[2].split()[0] + " 0.1 0.2 abc 0.4 0.5 0.6"
    pred.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, pred, "-g", gt)
    assert code == 2 and f"{pred}:3: score 2 'abc' is not a number" in err


def test_malformed_charades_action_is_an_error_naming_the_ground_truth_line(capsys, tmp_path):
    gt = tmp_path / "gt.csv"
    write_charades_gt(gt, [("v0", [0]), ("v1", [1])])
    gt.write_text(gt.read_text().replace("c001 0.00 4.00", "c001"))
    pred = tmp_path / "pred.txt"
    pred.write_text("v0 0.1 0.2\nv1 0.3 0.4\n")
    code, _, err = run(capsys, pred, "-g", gt)
    assert code == 2 and f"{gt}:3: expected actions like 'c092 11.90 21.20', got 'c001'" in err


def test_written_submission_reads_back_exactly(tmp_path):
    scores = np.array([[0.1, -np.inf], [1 / 3, 2.5e-12]])
    path = tmp_path / "sub.txt"
    write_charades_submission(path, ["a", "b"], scores)
    back = read_charades_submission(path)
    np.testing.assert_array_equal(np.stack([back.scores["a"], back.scores["b"]]), scores)


# ----------------------------------------------------------------------------------------- generic CSV


CLASS_NAMES = ["run", "jump", "eat food", "sleep"]


@pytest.fixture
def generic_case(tmp_path):
    """Generic annotations (names and ids mixed, one row without labels) and an independent target matrix."""
    (tmp_path / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    (tmp_path / "classes.json").write_text(json.dumps([{"name": n, "description": f"a clip of {n}"} for n in CLASS_NAMES]))
    labels = {"a.mp4": "run;eat food", "b.mp4": "1", "c.mp4": "", "d.mp4": "sleep;0", "e.mp4": "jump;3", "f.mp4": "2"}
    with open(tmp_path / "annotations.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels"])
        w.writerows(labels.items())
    targets = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0]])
    scores = np.round(np.random.default_rng(1).random((6, 4)), 1)
    return tmp_path, list(labels), targets, scores


@pytest.mark.parametrize("classes_file", ["classes.txt", "classes.json"])
def test_generic_wide_csv_is_scored_with_macro_map_equal_to_sklearn(capsys, generic_case, classes_file):
    root, ids, targets, scores = generic_case
    pred = root / "wide.csv"
    with open(pred, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "sleep", "run", "jump", "2"])  # columns in any order, by name or id
        for vid, row in zip(ids, scores):
            w.writerow([vid, row[3], row[0], row[1], row[2]])
    code, out, _ = run(capsys, pred, "-g", root / "annotations.csv", "--classes", root / classes_file, "--json")
    assert code == 0
    expected = np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in range(4)])
    assert json.loads(out)["metrics"] == {"map": pytest.approx(expected, abs=1e-12)}


def test_generic_long_csv_fills_missing_scores_with_minus_infinity(capsys, generic_case):
    root, ids, targets, scores = generic_case
    pred = root / "long.csv"
    with open(pred, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "class", "score"])
        for vid, row in zip(ids, scores):
            for c in range(4):
                if (vid, c) != ("b.mp4", 2):  # one score left out
                    w.writerow([vid, CLASS_NAMES[c] if c % 2 else c, row[c]])
    code, out, _ = run(capsys, pred, "-g", root / "annotations.csv", "--classes", root / "classes.txt",
                       "--json", "-m", "map,f1", "--threshold", "0.5")
    assert code == 0
    result = json.loads(out)
    expected_scores = scores.copy()
    expected_scores[1, 2] = -np.inf
    expected = compute_metrics("map,f1", expected_scores, targets, threshold=0.5)
    assert result["metrics"] == pytest.approx(expected, abs=1e-12)
    assert result["missing_scores"] == 1


def test_generic_unknown_label_is_an_error_naming_the_annotation_line(capsys, generic_case):
    root, ids, _, scores = generic_case
    ann = root / "annotations.csv"
    ann.write_text(ann.read_text().replace("sleep;0", "sleeping;0"))
    pred = root / "wide.csv"
    pred.write_text("id,run,jump,eat food,sleep\n" + "".join(f"{i},0,0,0,0\n" for i in ids))
    code, _, err = run(capsys, pred, "-g", ann, "--classes", root / "classes.txt")
    assert code == 2 and f"{ann}:5: unknown label 'sleeping'" in err


def test_csv_predictions_without_a_class_list_are_refused(capsys, generic_case):
    root, ids, _, _ = generic_case
    pred = root / "wide.csv"
    pred.write_text("id,run,jump,eat food,sleep\n" + "".join(f"{i},0,0,0,0\n" for i in ids))
    code, _, err = run(capsys, pred, "-g", root / "annotations.csv")
    assert code == 2 and "--classes FILE is required" in err


def test_single_label_csv_is_scored_with_top_k(capsys, tmp_path):
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    (tmp_path / "gt.csv").write_text("id,labels\nx,a\ny,b\nz,c\n")
    (tmp_path / "pred.csv").write_text("id,a,b,c\nx,0.9,0.1,0.0\ny,0.5,0.4,0.1\nz,0.2,0.3,0.1\n")
    # x: a ranks 1st; y: b ranks 2nd; z: c ranks 3rd -> top1 1/3, top2 2/3
    code, out, _ = run(capsys, tmp_path / "pred.csv", "-g", tmp_path / "gt.csv", "--classes",
                       tmp_path / "classes.txt", "-m", "top1,top2", "--json")
    assert code == 0
    assert json.loads(out)["metrics"] == pytest.approx({"top1": 1 / 3, "top2": 2 / 3})


def test_ak_segments_and_reference_micro_ap_take_their_files_and_batch_size(capsys, generic_case):
    root, ids, targets, scores = generic_case
    pred = root / "wide.csv"
    with open(pred, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", *CLASS_NAMES])
        w.writerows([vid, *row] for vid, row in zip(ids, scores))
    segments = root / "segments.json"
    segments.write_text(json.dumps({"head": ["run", "jump"], "tail": [2, "sleep"]}))
    code, out, _ = run(capsys, pred, "-g", root / "annotations.csv", "--classes", root / "classes.txt", "--json",
                       "-m", "map,ak_segments,reference_micro_ap", "--segments", segments, "--batch-size", 4)
    assert code == 0
    expected = compute_metrics("map,ak_segments,reference_micro_ap", scores, targets, batch_size=4,
                               segments={"head": [0, 1], "tail": [2, 3]})
    assert json.loads(out)["metrics"] == pytest.approx(expected, abs=1e-12)
    assert set(expected) == {"map", "map_head", "map_tail", "reference_micro_ap"}
