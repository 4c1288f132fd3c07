"""Dataset statistics and the ``datasheet.md`` written beside the generated data.

Its chance levels are the exact expected mAP of random scores (``msqnet.metrics.chance``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["label_matrix", "render_datasheet"]


def label_matrix(label_sets: Sequence[Sequence[str]], classes: Sequence[str]) -> np.ndarray:
    """(N, C) 0/1 matrix of which clip carries which class."""
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(label_sets), len(classes)), dtype=np.int64)
    for row, labels in enumerate(label_sets):
        for name in labels:
            y[row, index[name]] = 1
    return y


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def render_datasheet(
    *,
    command: str,
    versions: Mapping[str, str],
    classes: Sequence[tuple[str, str]],
    unseen_classes: Sequence[str],
    morphologies: Sequence[tuple[str, str]],
    unseen_actors: Sequence[str],
    splits: Mapping[str, list[dict]],
    chance: Mapping[str, Mapping[str, float | None]],
) -> str:
    """The markdown datasheet: what is in the dataset, how it was made, and its chance levels.

    ``splits`` maps a split name to its rows, each with ``labels`` (list of names), ``actors``
    (list of morphologies) and ``background`` (str).
    """
    names = [c for c, _ in classes]
    lines = [
        "# Synthetic actor-agnostic multi-label action dataset",
        "",
        "Procedurally rendered by `msqnet synth` (`msqnet.synth`). Regenerate it exactly with:",
        "",
        f"    {command}",
        "",
        "Library versions used: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        "## What it tests",
        "",
        "Every class is a *motion*: 1-3 articulated actors of different body plans act at once, so a clip",
        "carries the union of their actions. Actors also hold still poses that equal single frames of",
        "actions (a raised limb held still, a lowered head, lying still, a frozen stride, a tilt), so one",
        "frame cannot tell e.g. waving from a raised limb, eating from a lowered head, falling down from",
        "getting up, or approaching from moving away: only the change over time does.",
        "",
        "- `train`: seen morphologies, seen classes only (no train clip shows an unseen action at all).",
        "- `test_seen`: new clips of the seen morphologies, all classes.",
        "- `test_unseen_actor`: only the held-out morphologies, all classes.",
        "- `splits/zero_shot.json`: the seen/unseen class split; score unseen classes on the test splits.",
        "",
        "## Classes",
        "",
        "| id | name | description | split |",
        "|---:|---|---|---|",
    ]
    for i, (name, desc) in enumerate(classes):
        lines.append(f"| {i} | {name} | {desc} | {'unseen' if name in unseen_classes else 'seen'} |")
    lines += ["", "## Actor morphologies", "", "| morphology | body | in train |", "|---|---|---|"]
    for name, desc in morphologies:
        lines.append(f"| {name} | {desc} | {'no (unseen actor)' if name in unseen_actors else 'yes'} |")

    split_names = list(splits)
    lines += ["", "## Splits", "", "| split | clips | actors/clip | labels/clip | clips with moving background |",
              "|---|---:|---:|---:|---:|"]
    for s in split_names:
        rows = splits[s]
        n = len(rows)
        apc = np.mean([len(r["actors"]) for r in rows]) if n else 0.0
        lpc = np.mean([len(r["labels"]) for r in rows]) if n else 0.0
        moving = sum(1 for r in rows if r["background"].endswith("moving"))
        lines.append(f"| {s} | {n} | {apc:.2f} | {lpc:.2f} | {moving} |")

    lines += ["", "## Clips per class", "", "| class | " + " | ".join(split_names) + " |",
              "|---|" + "---:|" * len(split_names)]
    ys = {s: label_matrix([r["labels"] for r in splits[s]], names) for s in split_names}
    for i, name in enumerate(names):
        cells = []
        for s in split_names:
            n = len(splits[s])
            k = int(ys[s][:, i].sum())
            cells.append(f"{k} ({100.0 * k / n:.1f}%)" if n else "0")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    lines += ["", "## Actors per morphology", "", "| morphology | " + " | ".join(split_names) + " |",
              "|---|" + "---:|" * len(split_names)]
    for name, _ in morphologies:
        cells = [str(sum(r["actors"].count(name) for r in splits[s])) for s in split_names]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    everything = np.concatenate([ys[s] for s in split_names]) if split_names else np.zeros((0, len(names)))
    co = everything.T @ everything
    lines += ["", "## Co-occurrence (all splits)", "",
              "Clips in which both classes occur; the diagonal is the class count. Columns are class ids.", "",
              "| class | " + " | ".join(str(i) for i in range(len(names))) + " |",
              "|---|" + "---:|" * len(names)]
    for i, name in enumerate(names):
        lines.append(f"| {i} {name} | " + " | ".join(str(int(v)) for v in co[i]) + " |")

    lines += ["", "## Chance level", "",
              "Expected macro mAP of random scores, computed exactly (see `msqnet.synth.datasheet`): the mean",
              "over classes with at least one positive of E[AP] for m positives among n clips,",
              "(H_n + (m-1)/(n-1) (n - H_n)) / n, which is close to each class's prevalence.", "",
              "| split | all classes | seen classes | unseen classes |", "|---|---:|---:|---:|"]
    for s in split_names:
        c = chance[s]
        lines.append(f"| {s} | {_fmt(c['all'])} | {_fmt(c['seen'])} | {_fmt(c['unseen'])} |")
    lines.append("")
    return "\n".join(lines)
