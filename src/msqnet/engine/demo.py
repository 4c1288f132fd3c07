"""``msqnet demo``: the whole system on a laptop CPU in minutes.

1. Render the synthetic actor-agnostic benchmark (``msqnet.synth``) unless it is already there.
2. Train ``msqnet-lite`` with the open-vocabulary head on the seen classes (the recipe ``demo``).
3. Evaluate the best model on ``test_seen`` (actors of the training morphologies) and
   ``test_unseen_actor`` (morphologies never seen in training): mAP of the seen classes, and of the
   unseen classes scored from their names alone, each beside its chance level.
4. Print the table and write a report folder per split.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..checkpoint import load_model
from ..checkpoint.run_dir import RunDir
from ..data.class_splits import load_zero_shot_split
from ..data.datasets import load_split
from ..data.records import multi_hot
from ..metrics import chance_levels, chance_map
from ..synth import SynthConfig, generate_dataset
from ..utils import atomic_write_text, json_text, read_json
from .config import load_train_config
from .metrics_log import read_metrics_log
from .report import print_table, write_report
from .trainer import train
from .zero_shot import evaluate_zero_shot

__all__ = ["DemoResult", "run_demo", "DEMO_SPLITS", "DEMO_RECIPE"]

log = logging.getLogger("msqnet.demo")

DEMO_SPLITS = ("test_seen", "test_unseen_actor")
# The packaged training recipe of the demo's run (``msqnet/presets/recipes/demo.yaml``).
DEMO_RECIPE = "demo"


@dataclass
class DemoResult:
    """What the demo measured: one row per test split, timings, and where things were written."""

    rows: list[dict]
    unseen_rows: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    run_dir: Path | None = None
    report_dir: Path | None = None

    def table(self) -> str:
        """The results as a plain-text table."""
        return print_table(self.rows, ["split", "clips", "mAP seen", "chance seen", "mAP unseen (zero-shot)",
                                       "chance unseen", "harmonic"])

    def unseen_table(self) -> str:
        """Per-class AP of the unseen (zero-shot) classes, beside each class's chance AP."""
        return print_table(self.unseen_rows, ["unseen class", *(k for k in self.unseen_rows[0] if k != "unseen class")])


def _ensure_data(data_dir: Path, clips: int, test_clips: int, size: int, progress: bool) -> float:
    """Generate the synthetic benchmark into ``data_dir`` unless a complete one is there."""
    if (data_dir / "generator.json").is_file():
        log.info("using the synthetic benchmark in %s (delete it to regenerate)", data_dir)
        made = read_json(data_dir / "generator.json").get("arguments", {})
        asked = {"clips": clips, "test_clips": test_clips, "size": size}
        differs = {k: made.get(k) for k, v in asked.items() if made.get(k) != v}
        if differs:
            log.warning("%s was rendered with %s, not the demo's %s: its figures will differ from the README's; "
                        "delete the folder to render the demo's data", data_dir, differs, asked)
        return 0.0
    start = time.perf_counter()
    log.info("rendering the synthetic benchmark into %s (%d train + 2 x %d test clips)", data_dir, clips, test_clips)
    cfg = SynthConfig(clips=clips, test_clips=test_clips, size=size, overwrite=data_dir.exists())
    summary = generate_dataset(data_dir, cfg, progress=progress)
    log.info("%s", summary.format() if hasattr(summary, "format") else summary)
    return time.perf_counter() - start


def run_demo(
    data_dir: str | Path = "data/synth",
    out_dir: str | Path = "runs/demo",
    *,
    clips: int = 2400,
    test_clips: int = 300,
    size: int = 64,
    overrides: Sequence[str] = (),
    fresh: bool = False,
    progress: bool = True,
) -> DemoResult:
    """Generate (if needed), train, evaluate and report; see the module docstring."""

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    zs_file = data_dir / "splits" / "zero_shot.json"
    # The config is checked before minutes of rendering, so a bad override fails at once.
    cfg = load_train_config(DEMO_RECIPE, [
        f"data.annotations={data_dir}", f"output_dir={out_dir / 'run'}", f"zero_shot={zs_file}", *overrides,
    ])
    seconds: dict[str, float] = {}
    seconds["render"] = _ensure_data(data_dir, clips, test_clips, size, progress)
    if fresh and cfg.output_dir and Path(cfg.output_dir).exists():
        shutil.rmtree(cfg.output_dir)
    start = time.perf_counter()
    result = train(cfg, resume="auto", progress=progress)
    seconds["cache"] = result.cache_seconds
    seconds["train"] = time.perf_counter() - start - result.cache_seconds
    log.info("%s", result.summary())

    start = time.perf_counter()
    model = load_model(result.best_model or result.last_state)
    rows, unseen_ap = [], {}
    for split_name in DEMO_SPLITS:
        split = load_split(cfg.data, split_name)
        zs = load_zero_shot_split(zs_file, split.class_names)
        r = evaluate_zero_shot(model, split, zs, batch_size=cfg.effective_eval_batch_size,
                               progress=progress)  # clips of the model's recorded test view
        rows.append({"split": split_name, "clips": r.num_clips, "mAP seen": r.map_seen, "chance seen": r.chance_seen,
                     "mAP unseen (zero-shot)": r.map_unseen, "chance unseen": r.chance_unseen, "harmonic": r.harmonic})
        targets = multi_hot(split.records, split.num_classes)
        for c in zs.unseen:
            name = split.class_names[c]
            unseen_ap.setdefault(name, {"unseen class": name})
            unseen_ap[name][f"AP {split_name}"] = r.per_class_ap[name]
            unseen_ap[name][f"chance {split_name}"] = chance_map(targets, [c])
        metrics = {"map": _nanmean([r.per_class_ap[n] for n in split.class_names]), "map_seen": r.map_seen,
                   "map_unseen_zero_shot": r.map_unseen, "harmonic": r.harmonic}
        chance = {**chance_levels(["map"], targets), "map_seen": r.chance_seen,
                  "map_unseen_zero_shot": r.chance_unseen}
        history = _history(RunDir(cfg.output_dir))
        write_report(out_dir / "report" / split_name, metrics=metrics, scores=r.scores, targets=targets,
                     class_names=split.class_names, history=history, split_name=split_name,
                     chance={k: v for k, v in chance.items() if v is not None},
                     extra={"zero_shot": {"seen": list(zs.names(split.class_names)[0]),
                                          "unseen": list(zs.names(split.class_names)[1])},
                            "checkpoint": str(result.best_model or result.last_state)})
    seconds["evaluate"] = time.perf_counter() - start
    unseen_rows = list(unseen_ap.values())
    demo = DemoResult(rows=rows, unseen_rows=unseen_rows, seconds=seconds, run_dir=Path(cfg.output_dir),
                      report_dir=out_dir / "report")
    atomic_write_text(out_dir / "demo.json",
                      json_text({"rows": rows, "unseen_classes": unseen_rows, "seconds": seconds}, indent=2) + "\n")
    return demo


def _nanmean(values) -> float:
    """The mean of the finite values (NaN when there is none)."""
    arr = np.asarray(values, dtype=float)
    return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")


def _history(run: RunDir) -> list[dict] | None:
    """The run's training history, for the report's training curves."""
    return read_metrics_log(run.metrics_log) if run.metrics_log.is_file() else None
