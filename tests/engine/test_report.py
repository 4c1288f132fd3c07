"""The evaluation report folder: metrics JSON, Markdown summary, PNG plots, atomic replacement, input checks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score
from sklearn.metrics import precision_recall_curve as sk_precision_recall_curve

from msqnet.engine.report import precision_recall_curve, print_table, write_report

PLOTS = ("training_curves.png", "per_class_ap.png", "pr_curves.png")
CLASSES = [f"action_{i:02d}" for i in range(12)]
SEGMENTS = {"head": [0, 1, 2], "middle": [3, 4, 5, 6], "tail": [7, 8, 9, 10, 11]}


def _data(n: int = 80, c: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores that rank positives higher by a class-dependent margin, so per-class APs spread out."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, c)) < rng.uniform(0.1, 0.4, c)).astype(np.int64)
    targets[0] = 1  # every class has a positive
    margin = np.linspace(3.0, 0.0, c)  # class 0 easy, the last class random
    scores = targets * margin + rng.normal(size=(n, c))
    return scores, targets


def _history(epochs: int = 4, steps: int = 20) -> list[dict]:
    """A training log as the trainer writes it: per-step losses and per-epoch evaluations."""
    out: list[dict] = []
    for e in range(epochs):
        out += [{"epoch": e, "step": e * steps + s, "loss": 1.0 / (1 + e * steps + s)} for s in range(steps)]
        out.append({"epoch": e, "split": "val", "map": 0.2 + 0.1 * e})
    return out


def _sklearn_ap(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.array([average_precision_score(targets[:, c], scores[:, c]) for c in range(scores.shape[1])])


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    scores, targets = _data()
    out = tmp_path_factory.mktemp("reports") / "test"
    write_report(
        out, metrics={"map": 0.5, "top1": 0.25}, scores=scores, targets=targets, class_names=CLASSES,
        history=_history(), split_name="test-seen", segments=SEGMENTS, chance={"map": 0.125},
        extra={"checkpoint": "runs/demo/best", "seconds": np.float32(1.5)},
    )
    return out, scores, targets


def test_report_folder_holds_metrics_summary_and_all_plots(full_report):
    out, _, _ = full_report
    assert sorted(p.name for p in out.iterdir()) == sorted(["metrics.json", "summary.md", *PLOTS])


@pytest.mark.parametrize("name", PLOTS)
def test_each_plot_is_a_real_rendered_png(full_report, name):
    with Image.open(full_report[0] / name) as im:
        assert im.format == "PNG"
        assert im.width >= 600 and im.height >= 300
        colours = im.convert("RGB").getcolors(maxcolors=1_000_000)
        assert len(colours) > 50  # drawn content, not a blank canvas


def test_metrics_json_round_trips_with_per_class_ap_aligned_to_class_names(full_report):
    out, scores, targets = full_report
    report = json.loads((out / "metrics.json").read_text())
    assert report["split"] == "test-seen" and report["num_clips"] == 80 and report["num_classes"] == 12
    assert report["metrics"] == {"map": 0.5, "top1": 0.25}
    assert report["chance"] == {"map": 0.125}
    assert report["extra"] == {"checkpoint": "runs/demo/best", "seconds": 1.5}
    assert [p["name"] for p in report["per_class"]] == CLASSES
    np.testing.assert_allclose([p["ap"] for p in report["per_class"]], _sklearn_ap(scores, targets), atol=1e-12)
    assert [p["num_positives"] for p in report["per_class"]] == targets.sum(axis=0).tolist()


def test_metrics_json_has_segment_map_of_the_per_class_ap(full_report):
    out, scores, targets = full_report
    segments = json.loads((out / "metrics.json").read_text())["segments"]
    ap = _sklearn_ap(scores, targets)
    assert list(segments) == ["head", "middle", "tail"]
    for name, ids in SEGMENTS.items():
        assert segments[name]["map"] == pytest.approx(ap[ids].mean(), abs=1e-12)
        assert segments[name]["classes"] == ids


def test_summary_names_the_best_and_worst_classes(full_report):
    out, scores, targets = full_report
    summary = (out / "summary.md").read_text()
    ap = _sklearn_ap(scores, targets)
    best, worst = CLASSES[int(np.argmax(ap))], CLASSES[int(np.argmin(ap))]
    best_section = summary.split("## Best")[1].split("##")[0]
    worst_section = summary.split("## Worst")[1].split("##")[0]
    assert best.replace("_", "\\_") in best_section
    assert worst.replace("_", "\\_") in worst_section
    assert f"| {ap.max():.4f} | {targets[:, int(np.argmax(ap))].sum()} |" in best_section


def test_summary_puts_chance_beside_each_metric_and_counts_clips(full_report):
    summary = (full_report[0] / "summary.md").read_text()
    assert "| map | 0.5000 | 0.1250 |" in summary
    assert "| top1 | 0.2500 | - |" in summary
    assert "80 clips, 12 classes" in summary
    assert "| tail | 5 | 5 |" in summary


def test_report_without_history_skips_training_curves_and_says_so(tmp_path):
    scores, targets = _data()
    out = write_report(tmp_path / "r", metrics={"map": 0.5}, scores=scores, targets=targets, class_names=CLASSES)
    assert not (out / "training_curves.png").exists()
    assert (out / "per_class_ap.png").exists() and (out / "pr_curves.png").exists()
    assert "no training history" in (out / "summary.md").read_text()
    assert json.loads((out / "metrics.json").read_text())["plots"]["training_curves"] is None


def test_single_label_class_ids_are_scored_as_one_hot(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, size=50)
    labels[:6] = np.arange(6)
    scores = rng.normal(size=(50, 6)) + 2.0 * np.eye(6)[labels]
    names = CLASSES[:6]
    single = write_report(tmp_path / "ids", metrics={"top1": 0.9}, scores=scores, targets=labels, class_names=names)
    multi = write_report(tmp_path / "hot", metrics={"top1": 0.9}, scores=scores, targets=np.eye(6)[labels], class_names=names)
    a = json.loads((single / "metrics.json").read_text())
    b = json.loads((multi / "metrics.json").read_text())
    assert a["target_type"] == "single-label" and b["target_type"] == "multi-label"
    assert a["per_class"] == b["per_class"]
    assert (single / "pr_curves.png").exists()


def test_existing_report_is_replaced_wholly(tmp_path):
    scores, targets = _data()
    out = tmp_path / "report"
    write_report(out, metrics={"map": 0.1}, scores=scores, targets=targets, class_names=CLASSES, history=_history())
    (out / "notes-from-last-time.txt").write_text("stale")
    write_report(out, metrics={"map": 0.9}, scores=scores, targets=targets, class_names=CLASSES)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "per_class_ap.png", "pr_curves.png", "summary.md"]
    assert json.loads((out / "metrics.json").read_text())["metrics"] == {"map": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temp or old folders left behind


def test_failed_report_leaves_the_previous_one_untouched(tmp_path):
    scores, targets = _data()
    out = write_report(tmp_path / "report", metrics={"map": 0.1}, scores=scores, targets=targets, class_names=CLASSES)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match="extra: not JSON-serialisable"):
        write_report(out, metrics={"map": 0.9}, scores=scores, targets=targets, class_names=CLASSES, extra={"x": object()})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path):
    scores, targets = _data()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last.ckpt").write_bytes(b"weights")
    with pytest.raises(ValueError, match="refusing to replace"):
        write_report(run_dir, metrics={}, scores=scores, targets=targets, class_names=CLASSES)
    assert (run_dir / "last.ckpt").read_bytes() == b"weights"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s, t, n: (s, t[:-1], n), r"shape mismatch: scores \(80, 12\) vs targets \(79, 12\)"),
        (lambda s, t, n: (s[:, :-1], t, n[:-1]), r"shape mismatch: scores \(80, 11\) vs targets \(80, 12\)"),
        (lambda s, t, n: (s, t.argmax(1)[:-3], n), r"scores have 80 rows but targets \(class ids\) have 77"),
        (lambda s, t, n: (s, t, n[:-1]), r"class_names: expected 12 names .* got 11 names"),
        (lambda s, t, n: (s, np.full(80, 12), n), r"class id 12 at row 0 is out of range for 12 classes"),
        (lambda s, t, n: (s, t * 2, n), r"must be 0 or 1, found 2"),
        (lambda s, t, n: (np.where(np.eye(80, 12) > 0, np.nan, s), t, n), r"scores contain NaN in 12 row\(s\)"),
        (lambda s, t, n: (s[0], t[0], n), r"scores: expected a non-empty \(N clips, C classes\) array"),
    ],
    ids=["rows", "columns", "label-rows", "class-names", "label-range", "non-binary", "nan", "1-d-scores"],
)
def test_bad_input_raises_a_clear_value_error(tmp_path, change, message):
    scores, targets = _data()
    s, t, names = change(scores, targets, CLASSES)
    with pytest.raises(ValueError, match=message):
        write_report(tmp_path / "r", metrics={}, scores=s, targets=t, class_names=names)
    assert not (tmp_path / "r").exists()


def test_bad_segment_and_metric_values_are_rejected(tmp_path):
    scores, targets = _data()
    with pytest.raises(ValueError, match="segment 'tail': class id 12 out of range for 12 classes"):
        write_report(tmp_path / "r", metrics={}, scores=scores, targets=targets, class_names=CLASSES, segments={"tail": [11, 12]})
    with pytest.raises(ValueError, match=r"metrics\['map'\]: expected a number, got str"):
        write_report(tmp_path / "r", metrics={"map": "high"}, scores=scores, targets=targets, class_names=CLASSES)


def test_classes_without_positives_are_listed_and_kept_out_of_plots(tmp_path):
    scores, targets = _data()
    targets[:, [4, 9]] = 0
    out = write_report(tmp_path / "r", metrics={"map": 0.5}, scores=scores, targets=targets, class_names=CLASSES)
    report = json.loads((out / "metrics.json").read_text())
    assert report["num_classes_with_positives"] == 10
    assert report["per_class"][4]["ap"] is None and report["per_class"][9]["num_positives"] == 0
    assert "2 class(es) have no positive" in (out / "summary.md").read_text()


def test_a_split_without_any_positive_still_gets_a_report(tmp_path):
    scores, _ = _data()
    out = write_report(tmp_path / "r", metrics={}, scores=scores, targets=np.zeros((80, 12), int), class_names=CLASSES)
    assert not (out / "per_class_ap.png").exists()
    assert "no class has a positive" in (out / "summary.md").read_text()


def test_per_class_ap_plot_grows_to_give_each_of_160_classes_a_row(tmp_path):
    scores, targets = _data(n=200, c=160, seed=3)
    names = [f"class number {i}" for i in range(160)]
    out = write_report(tmp_path / "r", metrics={}, scores=scores, targets=targets, class_names=names)
    with Image.open(out / "per_class_ap.png") as im:
        assert im.height >= 160 * 12  # at least 12 pixels per labelled bar


def test_precision_recall_curve_matches_sklearn_and_its_area_is_the_ap():
    rng = np.random.default_rng(4)
    targets = rng.random(300) < 0.3
    scores = np.round(rng.normal(size=300) + targets, 1)  # rounding creates many ties
    precision, recall = precision_recall_curve(scores, targets)
    sk_p, sk_r, _ = sk_precision_recall_curve(targets, scores)
    np.testing.assert_allclose(precision, sk_p[::-1], atol=1e-12)
    np.testing.assert_allclose(recall, sk_r[::-1], atol=1e-12)
    area = np.sum(np.diff(recall) * precision[1:])
    assert area == pytest.approx(average_precision_score(targets, scores), abs=1e-12)


def test_precision_recall_curve_needs_a_positive():
    with pytest.raises(ValueError, match="no positive"):
        precision_recall_curve(np.zeros(4), np.zeros(4))


def test_print_table_aligns_columns_numbers_right_text_left():
    rows = [
        {"split": "test-seen", "clips": 120, "mAP": 0.43125, "chance mAP": 0.1},
        {"split": "test-unseen-actor", "clips": 80, "mAP": 0.3},
    ]
    assert print_table(rows, ["split", "clips", "mAP", "chance mAP"]) == (
        "split             | clips |    mAP | chance mAP\n"
        "------------------+-------+--------+-----------\n"
        "test-seen         |   120 | 0.4313 |     0.1000\n"
        "test-unseen-actor |    80 | 0.3000 |          -"
    )


def test_print_table_without_rows_prints_the_header_and_needs_columns():
    assert print_table([], ["split", "mAP"]).splitlines() == ["split | mAP", "------+----"]
    with pytest.raises(ValueError, match="at least one column"):
        print_table([{"a": 1}], [])


def test_the_report_uses_the_per_class_ap_the_evaluation_computed(tmp_path):
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.3]])
    targets = np.array([[1, 0], [0, 1], [0, 1]])
    given = np.array([0.125, 0.75])  # not these scores' AP: the report must show it as given
    report = json.loads((write_report(tmp_path / "r", metrics={"map": 0.4375}, scores=scores, targets=targets,
                                      class_names=["a", "b"], per_class_ap=given) / "metrics.json").read_text())
    assert [c["ap"] for c in report["per_class"]] == [0.125, 0.75]
    with pytest.raises(ValueError, match="per_class_ap: expected shape"):
        write_report(tmp_path / "s", metrics={}, scores=scores, targets=targets, class_names=["a", "b"],
                     per_class_ap=np.zeros(3))
