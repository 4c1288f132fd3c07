"""Checkpoints and sharing: the model folder format, saving and loading, model cards, the hub, reference conversion.

- :mod:`msqnet.checkpoint.format`: the folder's file names and its validated ``config.json``.
- :mod:`msqnet.checkpoint.card`: the model card (``README.md``) written from the checkpoint's own data.
- :mod:`msqnet.checkpoint.hub`: a hub repo id (``user/name@revision``) as a checkpoint; publishing one.
- :mod:`msqnet.checkpoint.model_folder`: :func:`save_model` / :func:`load_model` and the weight checks.
- :mod:`msqnet.checkpoint.convert`: the MSQNet reference code's checkpoints into this format.
- :mod:`msqnet.checkpoint.run_dir`: a training run folder's layout (``best``, ``checkpoints/last``).
"""
from .card import model_card
from .format import (
    CARD_NAME,
    CHECKPOINT_FILES,
    CHECKPOINT_FORMAT,
    CHECKPOINT_MARK,
    CheckpointError,
    read_checkpoint_config,
    read_folder_document,
)
from .hub import RepoRef, parse_repo_ref, push_checkpoint, resolve_source
from .model_folder import (
    check_weight_shapes,
    checkpoint_state,
    load_model,
    model_folder_of,
    read_card,
    read_weights,
    require_model_folder,
    save_model,
    weight_shapes,
    write_safetensors,
)
from .run_dir import RunDir

__all__ = [
    "CARD_NAME", "CHECKPOINT_FILES", "CHECKPOINT_FORMAT", "CHECKPOINT_MARK", "CheckpointError",
    "read_checkpoint_config", "read_folder_document",
    "model_card", "read_card",
    "RepoRef", "parse_repo_ref", "push_checkpoint", "resolve_source",
    "save_model", "load_model", "checkpoint_state", "model_folder_of", "require_model_folder",
    "check_weight_shapes", "read_weights", "weight_shapes", "write_safetensors",
    "RunDir",
]
