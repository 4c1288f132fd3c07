"""Model checkpoints: a folder with ``config.json``, ``model.safetensors``, ``classes.txt`` and ``README.md``.

``config.json`` also records the model's test-time view (``test_view``: frame sampling, short side,
crops, multi-view settings; ``msqnet.data.views.TestView``), which evaluation and prediction read
back, so every consumer builds the same clips.

Loading never unpickles: the config is JSON validated against the typed schema and the weights are
safetensors. Frozen encoders that have a pretrained source (a hub id, a local folder, or weights a
package ships) are stored by reference, not copied, so a checkpoint holds what training changed.
Writes are atomic: the folder is written under a temporary name and renamed into place. ``README.md``
is the model card (``msqnet.card``). Where a folder is expected, a hub repo id (``user/name@revision``)
works too (``msqnet.hub``).
"""
from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from . import __version__
from .card import model_card
from .config import ConfigError, from_dict, to_dict
from .data.views import TestView
from .models.config import ModelConfig
from .models.msqnet import MSQNet

__all__ = ["CheckpointError", "save_model", "load_model", "model_folder_of", "read_checkpoint_config",
           "CHECKPOINT_FORMAT", "CHECKPOINT_FILES"]

CHECKPOINT_FORMAT = "msqnet-model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CLASSES_NAME = "classes.txt"
CARD_NAME = "README.md"
# The files of a model checkpoint: what is published to and fetched from the hub.
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME, CLASSES_NAME, CARD_NAME)

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint folder is missing, truncated, corrupt or of another format."""


def _frozen_by_reference(cfg: ModelConfig) -> list[str]:
    """State-dict prefixes of frozen parts reloaded from their pretrained source, not saved."""
    vis = cfg.visual_embedder
    if vis.kind == "efficientnet_lite0" or (vis.kind == "clip" and vis.pretrained is not None):
        return ["visual_embedder."]
    return []


def _self_contained_config(model: MSQNet) -> ModelConfig:
    """The model config with the video backbone described by its full HF config (no hub needed)."""
    cfg = copy.deepcopy(model.cfg)
    backbone_cfg = model.video_encoder.backbone.config.to_dict()
    for key in ("_name_or_path", "transformers_version", "architectures", "id2label", "label2id", "dtype", "torch_dtype"):
        backbone_cfg.pop(key, None)
    cfg.video_encoder.pretrained = None
    cfg.video_encoder.config = backbone_cfg
    return cfg


def save_model(model: MSQNet, out_dir: str | os.PathLike, *, extra: dict[str, Any] | None = None,
               push_to_hub: str | None = None) -> Path:
    """Write ``model`` as a checkpoint folder with its model card at ``out_dir`` (atomically replacing an old one).

    The folder records ``model.test_view``, the clips evaluation and prediction will build.
    ``push_to_hub`` (a repo id ``user/name``) then publishes it (``msqnet.hub.push_checkpoint``).
    """
    out_dir = Path(out_dir)
    view: TestView = model.test_view
    view.transform_config(model.cfg.image_size)  # a view the model cannot use is an error now, not at load
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    excluded = _frozen_by_reference(model.cfg)
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if not any(k.startswith(p) for p in excluded)
    }
    meta = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "msqnet_version": __version__,
        "model": to_dict(_self_contained_config(model)),
        "class_names": model.class_names,
        "text_dim": model.queries.text_dim,
        "multi_label": bool(getattr(model, "multi_label", True)),
        "test_view": to_dict(view),
        "by_reference": excluded,
        **(extra or {}),
    }
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": CHECKPOINT_FORMAT})
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (tmp / CLASSES_NAME).write_text("\n".join(model.class_names) + "\n", encoding="utf-8")
        (tmp / CARD_NAME).write_text(model_card(meta), encoding="utf-8")
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if push_to_hub is not None:
        from .hub import push_checkpoint

        push_checkpoint(out_dir, push_to_hub)
    return out_dir


def read_checkpoint_config(ckpt_dir: str | os.PathLike) -> dict[str, Any]:
    """The validated ``config.json`` of a checkpoint folder, with ``model`` as a ModelConfig."""
    ckpt_dir = Path(ckpt_dir)
    path = ckpt_dir / CONFIG_NAME
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"{ckpt_dir}: checkpoint folder not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; an msqnet checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); the checkpoint is corrupt or truncated") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an msqnet model checkpoint (format={meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {meta['format_version']} is newer than this msqnet supports ({FORMAT_VERSION})")
    try:
        meta["model"] = from_dict(ModelConfig, meta["model"], where="model")
    except (ConfigError, KeyError) as e:
        raise CheckpointError(f"{path}: invalid model config: {e}") from None
    names = meta.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{path}: class_names must be a non-empty list of strings")
    meta["test_view"] = _recorded_test_view(meta, path)
    return meta


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
    from .data.sampling import SamplingConfig
    from .data.transforms import TransformConfig

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


def model_folder_of(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """The model folder meant by ``path``: itself, or a training run folder's ``best``, else its last state.

    A string that is not an existing folder but a hub repo id (``user/name[@revision]``) means the
    repo's snapshot in the hub cache (``cache_dir``, default ``HF_HUB_CACHE``), downloaded when
    missing and online. Returns the folder unchanged when nothing in it holds a checkpoint, so the
    caller's check reports it.
    """
    from .hub import resolve_source

    path = resolve_source(path, cache_dir=cache_dir)
    for candidate in (path, path / "best", path / "checkpoints" / "last"):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    return path


def load_model(ckpt_dir: str | os.PathLike, *, device: str | torch.device = "cpu",
               cache_dir: str | os.PathLike | None = None) -> MSQNet:
    """Load a checkpoint folder, a training run folder (its ``best``, else its last state) or a hub repo id
    (``user/name[@revision]``, through the hub cache ``cache_dir``) in eval mode."""
    ckpt_dir = model_folder_of(ckpt_dir, cache_dir=cache_dir)
    meta = read_checkpoint_config(ckpt_dir)
    weights = ckpt_dir / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing")
    try:
        state = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt headers
        raise CheckpointError(f"{weights}: cannot read weights ({e}); the file is corrupt or truncated") from None
    model = MSQNet(meta["model"], meta["class_names"], text_dim=int(meta["text_dim"]))
    missing, unexpected = model.load_state_dict(state, strict=False)
    by_ref = tuple(meta.get("by_reference", []))
    missing = [k for k in missing if not k.startswith(by_ref)] if by_ref else list(missing)
    if missing or unexpected:
        raise CheckpointError(
            f"{weights}: weights do not match the config: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    model.multi_label = bool(meta.get("multi_label", True))
    model.test_view = meta["test_view"]
    return model.to(device).eval()
