"""TensorBoard logging, read back: the event file holds every number of ``metrics.jsonl``."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="tensorboard is in the test extra: pip install -e '.[test]'")


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    acc = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_holds_loss_lr_and_eval_metrics_of_every_logged_step(tiny_run):
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    scalars = _scalars(tiny_run)
    assert len(train) == 2 and [r["split"] for r in evals] == ["val", "test_seen"]
    assert scalars["train/loss"] == [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in train]
    assert scalars["train/lr"] == [(r["step"], pytest.approx(r["lr"], rel=1e-6)) for r in train]
    assert scalars["eval/val/map"] == [(2, pytest.approx(evals[0]["map"], rel=1e-6))]
    assert scalars["eval/test_seen/map"] == [(2, pytest.approx(evals[1]["map"], rel=1e-6))]
