"""Model cards: the ``README.md`` of every checkpoint folder, with the Hugging Face hub's YAML metadata.

``model_card(meta)`` writes the card from the checkpoint's own data (its ``config.json`` document):
the preset, what it was trained on (dataset, split, zero-shot split), the latest evaluation with the
chance level of every metric, the label set, the test-time view, intended use and limits, and how to
load it. ``msqnet.checkpoint.save_model`` writes it beside the weights; the trainer adds what the card
needs to the checkpoint through ``training_card_data``.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from huggingface_hub import EvalResult, ModelCardData

from ..config_loader import from_dict, to_dict
from ..data.views import TestView
from ..metrics import metric_title

__all__ = ["model_card", "training_card_data", "latest_evaluation", "is_open_vocabulary"]

LICENSE = "apache-2.0"
# Labels listed in the card; longer label sets show the first ones and point at classes.txt.
MAX_LISTED_LABELS = 60
# Record keys of an evaluation line in metrics.jsonl that are bookkeeping, not metrics.
_EVAL_BOOKKEEPING = {"kind", "epoch", "step", "split", "num_clips", "skipped", "time", "chance"}


def training_card_data(train_config: Mapping[str, Any], log_records: Sequence[Mapping[str, Any]], *,
                       epochs_done: int, step: int) -> dict[str, Any]:
    """What the trainer stores in a checkpoint's ``config.json`` for its card: config, progress, latest evaluation."""
    return {
        "train_config": dict(train_config),
        "epochs_done": epochs_done,
        "global_step": step,
        "evaluation": latest_evaluation(log_records),
    }


def latest_evaluation(log_records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The newest evaluation of each split in a run's ``metrics.jsonl`` records, in first-evaluated order."""
    latest: dict[str, dict[str, Any]] = {}
    for record in log_records:
        if record.get("kind") != "eval":
            continue
        # A metric without a value on this split (NaN: no positives) is left out, not published as NaN.
        metrics = {k: float(v) for k, v in record.items()
                   if k not in _EVAL_BOOKKEEPING and isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(v)}
        latest[record["split"]] = {
            "split": record["split"], "epoch": record.get("epoch"), "num_clips": record.get("num_clips"),
            "metrics": metrics, "chance": dict(record.get("chance") or {}),
        }
    return list(latest.values())


def is_open_vocabulary(model_cfg: Mapping[str, Any]) -> bool:
    """Whether the model scores any class names (text-conditioned head), not only its training classes."""
    return model_cfg.get("head") == "text"


def _as_dict(value: Any) -> Any:
    """A config dataclass as plain data (checkpoint readers give the model as a ModelConfig)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    return value


def _dataset_name(data: Mapping[str, Any]) -> str:
    """A short name of the training data: the annotation folder for generic data, else the format."""
    if data.get("format") == "generic":
        return Path(str(data.get("annotations", "data"))).name or "data"
    return str(data.get("format", "unknown"))


def _test_view(meta: Mapping[str, Any]) -> str:
    """The test-time view recorded with the checkpoint (``test_view``), in words."""
    model = _as_dict(meta["model"])
    view = meta["test_view"]
    view = view if isinstance(view, TestView) else from_dict(TestView, view, where="test_view")
    T, S = model["num_frames"], model["image_size"]
    frames = {"tsn": f"the middle frame of each of {T} equal segments",
              "uniform": f"{T} evenly spaced frames (segment middles)",
              "dense": f"{T} consecutive frames {view.stride} apart, centred in the clip"}[view.strategy]
    crop = "centre crop" if view.crops == 1 else "crops along the long side"
    text = (f"{frames} ({view.strategy}); frames resized to a short side of {view.resize_to(S)} px, then "
            f"{view.crops} {crop} of {S} px; {view.clips} clip(s) x {view.crops} crop(s) per video")
    if view.num_views > 1:
        text += f", view scores combined by {view.aggregate}"
    if not meta.get("train_config") and view == TestView():
        text += " (no training record: the default single view)"
    return text[0].upper() + text[1:] + "."


def _long_videos(meta: Mapping[str, Any]) -> str:
    """How a video much longer than a training clip is scored (``clip_seconds``), in words."""
    seconds = meta.get("clip_seconds")
    if seconds is None:
        return ("No training-clip duration recorded: every video is scored as one clip over its whole length "
                "unless `--window` asks for a timeline.")
    return (f"Training clips last {seconds:.2f} s (median). A video more than twice as long is scored in windows "
            f"of {seconds:.2f} s, and its whole-video score per label is "
            + ("the maximum over the windows (present anywhere)." if meta.get("multi_label", True) else
               "the mean of the windows' softmax probabilities (the share of the video each label takes).")
            + " `--view whole` forces one clip over the whole video.")


def _decisions_section(meta: Mapping[str, Any]) -> list[str]:
    """The decision thresholds the model detects labels with, or that it has none."""
    decisions = _as_dict(meta.get("decision_thresholds"))
    if not decisions:
        return ["Uncalibrated: no decision thresholds recorded, so `msqnet predict` marks no label as detected "
                "unless `--threshold P` gives one."]
    lines = [f"Per-class thresholds ({decisions['rule']}) chosen on split `{decisions['split']}` "
             f"({decisions['num_clips']} clips) when training ended; a label is detected when its score is above "
             "its threshold (`--threshold P` overrides). Classes without a positive clip there have none.", "",
             "| class | threshold | F1 there |", "|---|---|---|"]
    lines += [f"| {name} | {t:.3f} | {decisions['f1'][name]:.3f} |" for name, t in decisions["thresholds"].items()]
    return lines


def _front_matter(meta: Mapping[str, Any], name: str, dataset: str | None) -> str:
    """The hub's YAML metadata block (between ``---`` lines)."""
    model = _as_dict(meta["model"])
    open_vocab = is_open_vocabulary(model)
    tags = ["msqnet", "video-classification", "action-recognition", "multi-label" if meta.get("multi_label", True)
            else "single-label", "open-vocabulary" if open_vocab else "closed-set", str(model.get("name", "msqnet"))]
    results = []
    metric_keys: list[str] = []
    for ev in meta.get("evaluation") or []:
        for key, value in ev["metrics"].items():
            if key not in metric_keys:
                metric_keys.append(key)
            results.append(EvalResult(
                task_type="video-classification", dataset_type=dataset or "unknown", dataset_name=dataset or "unknown",
                dataset_split=ev["split"], metric_type=key, metric_value=round(value, 6),
                metric_name=metric_title(key)))
    data = ModelCardData(
        library_name="msqnet", pipeline_tag="video-classification", license=LICENSE, tags=tags,
        datasets=[dataset] if dataset else None, metrics=metric_keys or None,
        model_name=name if results else None, eval_results=results or None,
    )
    return f"---\n{data.to_yaml()}\n---\n"


def _labels_section(names: Sequence[str]) -> list[str]:
    shown = ", ".join(f"`{n}`" for n in names[:MAX_LISTED_LABELS])
    hidden = len(names) - MAX_LISTED_LABELS
    more = f", ... and {hidden} more (all in `classes.txt`)" if hidden > 0 else ""
    return [f"{len(names)} classes, in score order (`classes.txt`): {shown}{more}."]


def _evaluation_section(meta: Mapping[str, Any]) -> list[str]:
    evaluation = meta.get("evaluation") or []
    if not evaluation:
        return ["Not evaluated: this checkpoint holds no evaluation (`msqnet evaluate` scores it on a split)."]
    lines = ["| split | clips | metric | value | chance |", "|---|---|---|---|---|"]
    for ev in evaluation:
        for key, value in ev["metrics"].items():
            chance = ev["chance"].get(key)
            lines.append(f"| {ev['split']} | {ev.get('num_clips', '')} | {metric_title(key)} | {value:.4f} | "
                         f"{'' if chance is None else f'{chance:.4f}'} |")
    epochs = sorted({ev.get("epoch") for ev in evaluation if ev.get("epoch") is not None})
    lines += ["", "Every figure is computed once over the whole split" + (
        f", after epoch {', '.join(map(str, epochs))}" if epochs else "") + ". *chance* is the expected value of the "
        "metric for random scores on the same clips (blank where it has no closed form)."]
    if (meta.get("train_config") or {}).get("zero_shot"):
        lines.append("With a zero-shot split, training and these figures cover the seen classes only; "
                     "`msqnet evaluate --zero-shot` scores the unseen ones.")
    return lines


def _training_section(meta: Mapping[str, Any], dataset: str | None) -> list[str]:
    trained = meta.get("train_config")
    if not trained:
        return ["No training record: this checkpoint was saved with `msqnet.save_model` outside `msqnet train` "
                "(for example freshly built from a preset), so its scores carry no trained meaning yet."]
    data = trained.get("data", {})
    optim = trained.get("optim", {})
    lines = [
        f"- data: `{dataset}` (format `{data.get('format')}`), trained on split `{trained.get('train_split')}`, "
        f"evaluated on {', '.join(f'`{s}`' for s in trained.get('eval_splits', [])) or 'no split'}",
    ]
    if trained.get("zero_shot"):
        split_name = Path(trained["zero_shot"]).name  # a shipped name, or a split file's name (no local paths)
        lines.append(f"- zero-shot split `{split_name}`: trained on its seen classes only (the label set "
                     "below); its unseen classes never appeared in training")
    progress = []
    if meta.get("epochs_done") is not None:
        progress.append(f"{meta['epochs_done']} of {trained.get('epochs')} epochs")
    if meta.get("global_step") is not None:
        progress.append(f"{meta['global_step']} optimiser steps")
    if progress:
        lines.append(f"- progress: {', '.join(progress)}" + (" (a training state: `checkpoints/last`)"
                                                              if meta.get("training_state") else ""))
    if meta.get("metric") is not None and meta.get("value") is not None:
        lines.append(f"- kept as a best model by `{meta['metric']}` = {meta['value']:.4f} on the first evaluation "
                     "split")
    lines.append(f"- recipe: {optim.get('name')} lr {optim.get('lr')} ({trained.get('schedule', {}).get('name')} "
                 f"schedule), batch {trained.get('batch_size')} x "
                 f"{trained.get('grad_accum', 1)} accumulation, {trained.get('precision', 'fp32')}, "
                 f"loss {trained.get('loss', {}).get('name', 'bce')}, seed {trained.get('seed')}")
    return lines


def _model_section(meta: Mapping[str, Any]) -> list[str]:
    model = _as_dict(meta["model"])
    open_vocab = is_open_vocabulary(model)
    head = ("`text`: open vocabulary, scores any class names from their text" if open_vocab
            else f"`{model.get('head')}`: closed set, scores only the classes below")
    by_ref = meta.get("by_reference") or []
    return [
        f"- preset `{model.get('name')}`: video encoder `{model['video_encoder']['kind']}`, label embedder "
        f"`{model['label_embedder']['kind']}`, visual embedder `{model['visual_embedder']['kind']}`, "
        f"queries `{model.get('query')}`, decoder d={model['decoder']['d_model']}",
        f"- input: {model['num_frames']} frames of {model['image_size']} px (uint8 or float in [0, 1]; the model "
        "normalises inside)",
        f"- head {head}; " + ("independent per-class probabilities (sigmoid)" if meta.get("multi_label", True)
                              else "one label per clip (softmax)"),
        "- frozen parts stored by reference (rebuilt from their pretrained source when loading, not in "
        f"`model.safetensors`): {', '.join(f'`{p.rstrip(chr(46))}`' for p in by_ref)}" if by_ref else
        "- every weight is in `model.safetensors`",
    ]


def model_card(meta: Mapping[str, Any], *, source: str | None = None) -> str:
    """The README.md model card of a checkpoint from its ``config.json`` document.

    ``source`` is how readers load it (a hub repo id or folder) in the usage lines; ``None`` writes a
    placeholder folder name.
    """
    model = _as_dict(meta["model"])
    trained = meta.get("train_config") or {}
    dataset = _dataset_name(trained["data"]) if trained.get("data") else None
    name = source or f"msqnet-{model.get('name', 'model')}"
    where = source or "path/to/this/folder"
    open_vocab = is_open_vocabulary(model)
    labels_arg = ' --labels "walking,a dog chasing a ball"' if open_vocab else ""
    py_labels = ', labels=["walking", "a dog chasing a ball"]' if open_vocab else ""
    lines = [
        f"# {name}",
        "",
        f"An [msqnet](https://arxiv.org/abs/2307.10763) checkpoint for actor-agnostic, multi-label video action "
        f"recognition (MSQNet): preset `{model.get('name')}`"
        + (f", trained on `{dataset}`." if dataset else ", not trained with `msqnet train`."),
        "",
        "## Model", "", *_model_section(meta), "",
        "## Training", "", *_training_section(meta, dataset), "",
        "## Evaluation", "", *_evaluation_section(meta), "",
        "## Labels", "", *_labels_section(list(meta["class_names"])), "",
        "## Test-time view", "", _test_view(meta), "", _long_videos(meta), "",
        "## Decisions", "", *_decisions_section(meta), "",
        "## Intended use and limits", "",
        "- Intended for research and for trying action recognition on your own clips: scoring which of the "
        + ("given class names (any text)" if open_vocab else "label set's actions") + " occur in a short video, by any "
        "actor (people, animals).",
        "- It knows what its training data showed: other domains, camera set-ups, actors or class vocabularies "
        "score worse than the figures above, which hold for the named split only.",
        "- Scores are independent per-class probabilities, not calibrated confidences; the thresholds above "
        "hold for data like the validation split, pick your own on your own validation data."
        if meta.get("multi_label", True) else
        "- Scores are a softmax over the label set: one action per clip; they are not calibrated confidences.",
        *(["- Class names outside the training set are scored from their text alone (zero-shot): expect them "
           "to be less reliable than trained classes."] if open_vocab else []),
        "- Not for decisions about individual people (surveillance, identification, assessment).",
        "- The weights carry the terms of their training data; check those before redistributing.",
        "",
        "## How to use", "",
        "```bash",
        "# with msqnet installed (its `app` extra for the web page)",
        f"msqnet predict clip.mp4 --checkpoint {where}{labels_arg}",
        f"msqnet app --checkpoint {where}",
        "```",
        "",
        "```python",
        "import msqnet",
        "",
        f'model = msqnet.load_model("{where}")',
        f'print(model.predict("clip.mp4"{py_labels}).top(5))',
        "```",
        "",
    ]
    return _front_matter(meta, name, dataset) + "\n" + "\n".join(lines)
