"""The metrics log: one strict-JSON record per line, resumed at a checkpoint's count, read back despite damage."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from msqnet.engine.metrics_log import MetricsLog, read_metrics_log


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_record_is_one_json_line_written_at_once(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, enabled=True)
    log.write({"kind": "train", "step": 1, "loss": 0.5})
    assert _lines(path) == [{"kind": "train", "step": 1, "loss": 0.5}]  # flushed before close
    log.write({"kind": "eval", "step": 1, "split": "val", "map": 0.25})
    log.close()
    assert [r["kind"] for r in _lines(path)] == ["train", "eval"] and log.count == 2


def test_non_finite_numbers_are_written_as_null(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, enabled=True)
    log.write({"kind": "train", "loss": float("nan")})
    log.close()
    assert path.read_text() == '{"kind": "train", "loss": null}\n'


def test_a_resumed_log_keeps_the_records_its_checkpoint_counted(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, enabled=True)
    for step in range(1, 5):
        log.write({"kind": "train", "step": step})
    log.close()
    resumed = MetricsLog(path, enabled=True, keep_records=2)  # the state was saved after two records
    resumed.write({"kind": "train", "step": 3})
    resumed.close()
    assert [r["step"] for r in _lines(path)] == [1, 2, 3]
    assert [r["step"] for r in resumed.records] == [1, 2, 3]


def test_a_new_run_starts_a_new_log(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "train", "step": 9}\n')
    MetricsLog(path, enabled=True).close()
    assert path.read_text() == ""


def test_a_disabled_log_writes_nothing(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, enabled=False)  # a process other than rank 0
    log.write({"kind": "train", "step": 1})
    log.close()
    assert not path.exists() and log.count == 0


def test_reading_drops_damaged_lines_with_a_warning_naming_them(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "train", "step": 1}\n{"kind": "tr\n\n[1, 2]\n{"kind": "eval", "step": 1}\n')
    with caplog.at_level(logging.WARNING):
        records = read_metrics_log(path)
    assert records == [{"kind": "train", "step": 1}, {"kind": "eval", "step": 1}]
    assert f"{path}:2: not a JSON record" in caplog.text and f"{path}:4: not a JSON record" in caplog.text


def test_reading_stops_at_the_limit(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": i}) + "\n" for i in range(5)))
    assert read_metrics_log(path, limit=3) == [{"step": 0}, {"step": 1}, {"step": 2}]
