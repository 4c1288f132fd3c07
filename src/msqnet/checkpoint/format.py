"""The model folder format: its file names, its error, and reading its validated ``config.json``.

The lowest part of :mod:`msqnet.checkpoint`: the card, the hub and saving/loading all build on it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..config_loader import ConfigError, from_dict
from ..data.config import SamplingConfig, TransformConfig
from ..data.views import TestView
from ..metrics.thresholds import DecisionThresholds
from ..models.config import ModelConfig
from ..models.msqnet import check_class_names
from ..utils import FolderMark, InputFileError, quote, read_json, read_text
from .run_dir import RunDir

CHECKPOINT_FORMAT = "msqnet-model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CLASSES_NAME = "classes.txt"
CARD_NAME = "README.md"
# The files of a model checkpoint: what is published to and fetched from the hub.
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME, CLASSES_NAME, CARD_NAME)
# What save_model replaces: only a folder it wrote (an empty one, or a checkpoint), never a user's.
CHECKPOINT_MARK = FolderMark(CONFIG_NAME, "format", CHECKPOINT_FORMAT, "a model checkpoint")

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint folder is missing, truncated, corrupt or of another format."""


def read_checkpoint_config(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    """The validated ``config.json`` of a checkpoint folder, with ``model`` as a ModelConfig."""
    ckpt_dir = Path(ckpt_dir)
    path = ckpt_dir / CONFIG_NAME
    meta = read_folder_document(ckpt_dir, CONFIG_NAME, kind="checkpoint", file_format=CHECKPOINT_FORMAT,
                                holds=f"{CONFIG_NAME}, {WEIGHTS_NAME} and {CLASSES_NAME}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {meta['format_version']} is newer than this msqnet supports ({FORMAT_VERSION})")
    missing = [k for k in ("model", "class_names", "text_dim") if k not in meta]
    if missing:
        raise CheckpointError(f"{path}: missing key(s) {missing}; the checkpoint is incomplete or was edited")
    try:
        meta["model"] = from_dict(ModelConfig, meta["model"], where="model")
    except ConfigError as e:
        raise CheckpointError(f"{path}: invalid model config: {e}") from None
    names = meta["class_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{path}: class_names must be a non-empty list of strings")
    try:
        check_class_names(names)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}; the checkpoint was edited or written by an older msqnet") from None
    text_dim = meta["text_dim"]
    if not isinstance(text_dim, int) or isinstance(text_dim, bool) or text_dim < 1:
        raise CheckpointError(f"{path}: text_dim: expected a positive int (the label embedding width), got {quote(text_dim)}")
    by_ref = meta.get("by_reference", [])
    if not isinstance(by_ref, list) or not all(isinstance(p, str) for p in by_ref):
        raise CheckpointError(f"{path}: by_reference: expected a list of state-dict prefixes, got {quote(by_ref)}")
    if not isinstance(meta.get("train_config", {}), dict):
        raise CheckpointError(f"{path}: train_config: expected an object (the training config), got {quote(meta['train_config'])}")
    if not isinstance(meta.get("multi_label", True), bool):
        raise CheckpointError(f"{path}: multi_label: expected true/false, got {quote(meta['multi_label'])}")
    _check_class_file(ckpt_dir / CLASSES_NAME, names, path)
    meta["test_view"] = _recorded_test_view(meta, path)
    meta["clip_seconds"], meta["decision_thresholds"] = _recorded_decisions(meta, path)
    return meta


def _recorded_decisions(meta: dict[str, Any], path: Path) -> tuple[float | None, DecisionThresholds | None]:
    """The checkpoint's training-clip seconds and decision thresholds (``None`` where it records none:
    checkpoints written before they were, or models not trained with ``msqnet train``)."""
    seconds = meta.get("clip_seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                or not seconds > 0 or seconds == float("inf")):
        raise CheckpointError(f"{path}: clip_seconds: expected a positive number of seconds or null, "
                              f"got {quote(seconds)}")
    decisions = meta.get("decision_thresholds")
    if decisions is not None:
        try:
            decisions = from_dict(DecisionThresholds, decisions, where="decision_thresholds")
        except ConfigError as e:
            raise CheckpointError(f"{path}: invalid decision thresholds: {e}") from None
        unknown = sorted(set(decisions.thresholds) - set(meta["class_names"]))
        if unknown:
            raise CheckpointError(f"{path}: decision_thresholds: thresholds for classes it does not have: {unknown[:5]}")
    return (None if seconds is None else float(seconds)), decisions


def read_folder_document(folder: Path, name: str, *, kind: str, file_format: str, holds: str) -> dict[str, Any]:
    """The JSON document ``name`` of a ``kind`` folder (a checkpoint, a training state) that ``holds``
    those files and says it is of ``file_format``; a missing folder or document, one that is not JSON
    or of another format, is a CheckpointError naming it."""
    path = folder / name
    if folder.is_file():
        raise CheckpointError(f"{folder}: is a file; expected a {kind} folder (holding {holds})")
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: {kind} folder not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; an msqnet {kind} folder holds {holds}")
    try:
        doc = read_json(path, f"{kind} document")
    except InputFileError as e:
        raise CheckpointError(f"{e} (the {kind} is corrupt or truncated)") from None
    given = doc.get("format") if isinstance(doc, dict) else None
    if given != file_format:
        raise CheckpointError(f"{path}: not an msqnet {kind} (format={quote(given)}, expected {quote(file_format)})")
    return doc


def _recorded_test_view(meta: dict[str, Any], path: Path) -> TestView:
    """The checkpoint's ``test_view``; for checkpoints written before it was recorded, the one its
    training config implies, else the default view (both logged)."""
    model_cfg: ModelConfig = meta["model"]
    try:
        if "test_view" in meta:
            view = from_dict(TestView, meta["test_view"], where="test_view")
        else:
            view = _legacy_test_view(meta, path)
        view.transform_config(model_cfg.image_size)
    except ConfigError as e:
        raise CheckpointError(f"{path}: invalid test view: {e}") from None
    return view


def _legacy_test_view(meta: dict[str, Any], path: Path) -> TestView:
    """The test view of a checkpoint written before ``test_view`` was recorded."""
    model_cfg: ModelConfig = meta["model"]
    trained = meta.get("train_config") or {}
    if "sampling" in trained and "transform" in trained:
        view = TestView.from_configs(from_dict(SamplingConfig, trained["sampling"], where="train_config.sampling"),
                                     from_dict(TransformConfig, trained["transform"], where="train_config.transform"))
        source = "its training config's sampling and transform"
    else:
        view = TestView()
        source = "the default view"
    log.warning("%s: no test_view recorded (written by an older msqnet); using %s: %s", path, source,
                view.describe(model_cfg.num_frames, model_cfg.image_size))
    return view


def _check_class_file(classes: Path, names: list[str], config: Path) -> None:
    """``classes.txt`` must list the config's class names, one per line, in the same order."""
    try:
        listed = [line.strip() for line in read_text(classes, "class list").splitlines() if line.strip()]
    except FileNotFoundError:
        raise CheckpointError(f"{classes}: missing; an msqnet checkpoint folder holds {CONFIG_NAME}, {WEIGHTS_NAME} "
                              f"and {CLASSES_NAME}") from None
    except InputFileError as e:
        raise CheckpointError(str(e)) from None
    if listed != names:
        diff = next((i for i, (a, b) in enumerate(zip(listed, names)) if a != b), min(len(listed), len(names)))
        what = (f"class {diff} is {quote(listed[diff])} there but {quote(names[diff])} in {config.name}"
                if diff < min(len(listed), len(names)) else
                f"it lists {len(listed)} classes, {config.name} {len(names)}")
        raise CheckpointError(f"{classes}: disagrees with {config}: {what}; the checkpoint was edited or mixed up")


def local_model_folder(path: str | os.PathLike) -> Path:
    """The model folder in a local ``path``: itself, else a training run folder's ``best`` or last state
    (``path`` unchanged when nothing in it holds a checkpoint, so the caller's check reports it)."""
    path = Path(path)
    if (path / CONFIG_NAME).is_file():
        return path
    return RunDir(path).model_folder() or path
