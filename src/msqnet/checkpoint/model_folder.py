"""Model checkpoints: a folder with ``config.json``, ``model.safetensors``, ``classes.txt`` and ``README.md``.

``config.json`` also records the model's test-time view (``test_view``: frame sampling, short side,
crops, multi-view settings; ``msqnet.data.views.TestView``), which evaluation and prediction read
back, so every consumer builds the same clips.

Loading never unpickles: the config is JSON validated against the typed schema and the weights are
safetensors. Frozen encoders that have a pretrained source (a hub id, a local folder, or weights a
package ships) are stored by reference, not copied, so a checkpoint holds what training changed.
Writes are atomic: the folder is written under a temporary name and renamed into place. ``README.md``
is the model card (``msqnet.checkpoint.card``). Where a folder is expected, a hub repo id (``user/name@revision``)
works too (``msqnet.checkpoint.hub``).
"""
from __future__ import annotations

import copy
import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .._version import __version__
from ..config_loader import to_dict
from ..data.views import TestView
from ..models.config import ModelConfig
from ..models.msqnet import MSQNet, check_class_names
from ..utils import atomic_folder, read_text
from .card import model_card
from .format import (
    CARD_NAME,
    CHECKPOINT_FORMAT,
    CHECKPOINT_MARK,
    CLASSES_NAME,
    CONFIG_NAME,
    FORMAT_VERSION,
    WEIGHTS_NAME,
    CheckpointError,
    local_model_folder,
    read_checkpoint_config,
)
from .hub import push_checkpoint, resolve_source

__all__ = [
    "save_model",
    "checkpoint_state",
    "load_model",
    "model_folder_of",
    "require_model_folder",
    "weight_shapes",
    "read_weights",
    "check_weight_shapes",
    "write_safetensors",
    "read_card",
]


log = logging.getLogger(__name__)

# Weight names of checkpoints written before the query builder was renamed (``queries`` with its
# ``query_embed``), read under today's names.
_RENAMED_WEIGHTS = (("queries.query_embed", "query_builder.label_embeddings"), ("queries.", "query_builder."))



def _frozen_by_reference(cfg: ModelConfig) -> list[str]:
    """State-dict prefixes of frozen parts reloaded from their pretrained source, not saved."""
    prefixes = []
    vis = cfg.visual_embedder
    if vis.kind == "efficientnet_lite0" or (vis.kind == "clip" and vis.pretrained is not None):
        prefixes.append("visual_embedder.")
    if cfg.video_encoder.kind == "frame_transformer":  # its frozen CNN reloads from the shipped weights
        prefixes.append("video_encoder.backbone.")
    return prefixes


def checkpoint_state(model: MSQNet) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint of ``model`` holds (on the CPU): its state less the frozen parts that
    are reloaded from their source (the label embedder built for new class names is outside the module
    tree, so a model that has scored new labels saves the same checkpoint as one that has not)."""
    excluded = tuple(_frozen_by_reference(model.cfg))
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith(excluded)}


def _self_contained_config(model: MSQNet) -> ModelConfig:
    """The model config with the video backbone described by its full HF config (no hub needed)."""
    cfg = copy.deepcopy(model.cfg)
    if cfg.video_encoder.kind == "frame_transformer":
        return cfg  # our own module: its config is complete as it is
    backbone_cfg = model.video_encoder.backbone.config.to_dict()
    for key in ("_name_or_path", "transformers_version", "architectures", "id2label", "label2id", "dtype", "torch_dtype"):
        backbone_cfg.pop(key, None)
    cfg.video_encoder.pretrained = None
    cfg.video_encoder.config = backbone_cfg
    return cfg


def write_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """``safetensors.torch.save_file``, its I/O failures (a full disk, ...) raised as the OSError they are."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as e:  # e.g. "Error while serializing: I/O error: No space left on device (os error 28)"
        code = re.search(r"os error (\d+)", str(e))
        if code is None:
            raise
        number = int(code.group(1))
        raise OSError(number, os.strerror(number), str(path)) from None


def save_model(model: MSQNet, out_dir: str | os.PathLike, *, extra: dict[str, Any] | None = None,
               push_to_hub: str | None = None) -> Path:
    """Write ``model`` as a checkpoint folder with its model card at ``out_dir`` (atomically replacing an old one).

    The folder records ``model.test_view``, the clips evaluation and prediction will build. Class names
    are checked as ``check_class_names`` says (what ``classes.txt`` can hold); a write that runs out of
    room (a full disk) is a WriteError naming ``out_dir``, whose earlier contents stay as they were.
    ``push_to_hub`` (a repo id ``user/name``) then publishes it (``msqnet.checkpoint.hub.push_checkpoint``).
    """
    out_dir = Path(out_dir)
    check_class_names(model.class_names)  # the names may have been reassigned since the model was built
    view: TestView = model.test_view
    view.transform_config(model.cfg.image_size)  # a view the model cannot use is an error now, not at load
    excluded = _frozen_by_reference(model.cfg)
    state = checkpoint_state(model)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "msqnet_version": __version__,
        "model": to_dict(_self_contained_config(model)),
        "class_names": model.class_names,
        "text_dim": model.query_builder.text_dim,
        "multi_label": model.multi_label,
        "test_view": to_dict(view),
        "clip_seconds": model.clip_seconds,
        "decision_thresholds": None if model.decision_thresholds is None else to_dict(model.decision_thresholds),
        "by_reference": excluded,
        **(extra or {}),
    }
    with atomic_folder(out_dir, mark=CHECKPOINT_MARK) as tmp:
        write_safetensors(state, tmp / WEIGHTS_NAME, metadata={"format": CHECKPOINT_FORMAT})
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (tmp / CLASSES_NAME).write_text("\n".join(model.class_names) + "\n", encoding="utf-8")
        (tmp / CARD_NAME).write_text(model_card(meta), encoding="utf-8")
    if push_to_hub is not None:
        push_checkpoint(out_dir, push_to_hub)
    return out_dir


def _current_name(name: str) -> str:
    """A weight's name in today's model (checkpoints from before a rename hold the old one)."""
    for old, new in _RENAMED_WEIGHTS:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def weight_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors file's header (no tensor is read)."""
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing")
    try:
        with safe_open(str(weights), framework="pt") as f:
            return {_current_name(k): tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt headers
        raise CheckpointError(f"{weights}: cannot read weights ({e}); the file is corrupt or truncated") from None


def read_weights(weights: Path) -> dict[str, torch.Tensor]:
    """The tensors of a model's weights file, under today's names."""
    try:
        return {_current_name(k): v for k, v in load_file(str(weights)).items()}
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt data
        raise CheckpointError(f"{weights}: cannot read weights ({e}); the file is corrupt or truncated") from None


def check_weight_shapes(model: torch.nn.Module, weights: Path, shapes: dict[str, tuple[int, ...]],
                        by_reference: tuple[str, ...] = (), *, described_by: str) -> None:
    """The file's tensors are exactly the model's (less ``by_reference`` parts), shape for shape.

    Raises CheckpointError naming the file, the first wrong tensor and both shapes.
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith(by_reference)}
    wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]
    if wrong:
        k = wrong[0]
        more = f" (and {len(wrong) - 1} more tensor(s))" if len(wrong) > 1 else ""
        raise CheckpointError(f"{weights}: tensor {k} has shape {list(shapes[k])}, but {described_by} gives "
                              f"{list(expected[k])}{more}")
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{weights}: weights do not match {described_by}: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )


def _kind(t: torch.Tensor) -> str:
    return "floating-point" if t.is_floating_point() else "bool" if t.dtype == torch.bool else \
        "complex" if t.is_complex() else "integer"


def check_weight_kinds(model: torch.nn.Module, weights: Path, state: dict[str, torch.Tensor], *,
                       described_by: str) -> None:
    """Each stored tensor is of the model's kind of number (floating point, integer, bool): loading casts
    silently, so float weights stored as integers would load rounded. Another float width (bf16) is fine."""
    expected = model.state_dict()
    for k, t in state.items():
        if k in expected and _kind(t) != _kind(expected[k]):
            raise CheckpointError(f"{weights}: tensor {k} is stored as {str(t.dtype).removeprefix('torch.')}, but "
                                  f"{described_by} gives a {_kind(expected[k])} tensor "
                                  f"({str(expected[k].dtype).removeprefix('torch.')}); the file was edited or "
                                  f"written by another tool")


def model_folder_of(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """The model folder meant by ``path``: itself, or a training run folder's ``best``, else its last state.

    A string that is not an existing folder but a hub repo id (``user/name[@revision]``) means the
    repo's snapshot in the hub cache (``cache_dir``, default ``HF_HUB_CACHE``), downloaded when
    missing and online. Returns the folder unchanged when nothing in it holds a checkpoint, so the
    caller's check reports it.
    """
    return local_model_folder(resolve_source(path, cache_dir=cache_dir))


def require_model_folder(path: str | os.PathLike) -> Path:
    """:func:`model_folder_of`, which must hold a checkpoint (else a FileNotFoundError saying what was expected)."""
    folder = model_folder_of(path)
    if (folder / CONFIG_NAME).is_file():
        return folder
    raise FileNotFoundError(f"{folder}: not a model folder (config.json + model.safetensors) nor a run folder "
                            f"with best/ or checkpoints/last/")


def load_model(ckpt_dir: str | os.PathLike, *, device: str | torch.device = "cpu",
               cache_dir: str | os.PathLike | None = None) -> MSQNet:
    """Load a checkpoint folder, a training run folder (its ``best``, else its last state) or a hub repo id
    (``user/name[@revision]``, through the hub cache ``cache_dir``) in eval mode."""
    ckpt_dir = model_folder_of(ckpt_dir, cache_dir=cache_dir)
    meta = read_checkpoint_config(ckpt_dir)
    weights = ckpt_dir / WEIGHTS_NAME
    shapes = weight_shapes(weights)
    by_ref = tuple(meta.get("by_reference", []))
    described_by = str(ckpt_dir / CONFIG_NAME)
    vis = meta["model"].visual_embedder
    if not (vis.kind == "clip" and vis.pretrained is not None):  # HF cannot load pretrained weights on "meta"
        # Sizes first, on a weightless skeleton: a config.json that disagrees with the weights (or
        # asks for an absurd model) is named before anything is allocated.
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # frozen parts copying their shipped weights into meta tensors
            skeleton = MSQNet(meta["model"], meta["class_names"], text_dim=meta["text_dim"])
        check_weight_shapes(skeleton, weights, shapes, by_ref, described_by=described_by)
    state = read_weights(weights)
    bad = [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise CheckpointError(f"{weights}: tensor {bad[0]} holds NaN or infinite values ({len(bad)} tensor(s) do); "
                              f"the model diverged or the file is corrupt")
    model = MSQNet(meta["model"], meta["class_names"], text_dim=meta["text_dim"],
                   multi_label=meta.get("multi_label", True))
    check_weight_shapes(model, weights, shapes, by_ref, described_by=described_by)
    check_weight_kinds(model, weights, state, described_by=described_by)
    model.load_state_dict(state, strict=False)  # exactly the checked tensors (frozen parts come from their source)
    model.test_view = meta["test_view"]
    model.clip_seconds, model.decision_thresholds = meta["clip_seconds"], meta["decision_thresholds"]
    return model.to(device).eval()


def read_card(checkpoint: str | os.PathLike) -> str:
    """A checkpoint's model card: its README.md, or one made from its config.json when it has none."""
    folder = model_folder_of(checkpoint)
    meta = read_checkpoint_config(folder)
    card = folder / CARD_NAME
    return read_text(card, "model card") if card.is_file() else model_card(meta)
