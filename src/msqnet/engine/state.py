"""Training states: everything a run needs to continue bit for bit, in one verified folder.

A training state is a folder that is also a model checkpoint (``load_model`` and ``msqnet
evaluate`` read it), with the optimiser, gradient scaler, RNG states, data position and best-N
bookkeeping beside the weights::

    config.json  model.safetensors  classes.txt     (msqnet.checkpoint.save_model)
    optimizer.safetensors                           optimiser tensors (Adam moments, steps)
    rng.safetensors                                 torch / CUDA / loader generator states, per rank
    trainer_state.json                              the rest, a SHA-256 of every file and of itself

Nothing is pickled: tensors go to safetensors, everything else to JSON. ``trainer_state.json`` carries
the SHA-256 of its own content (canonical JSON without that field), so an edited or bit-flipped
document is refused like a corrupt weight file, and a document with unknown or missing keys is
refused too. Which states a run keeps (``checkpoints/last`` and ``previous``), how they replace each
other atomically and which one ``--resume auto`` picks is ``msqnet.engine.checkpoint_keeper``'s job.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..checkpoint import (
    CheckpointError,
    check_weight_shapes,
    read_checkpoint_config,
    read_folder_document,
    read_weights,
    save_model,
    weight_shapes,
    write_safetensors,
)
from ..config_loader import ConfigError, from_dict
from ..utils import fsync_dir, quote

__all__ = [
    "TrainingState",
    "RNGState",
    "STATE_FORMAT",
    "capture_rng",
    "restore_rng",
    "write_training_state",
    "load_training_state",
    "verify_training_state",
    "state_position",
]

log = logging.getLogger(__name__)

STATE_FORMAT = "msqnet-training-state"
STATE_VERSION = 2  # 2: the document's own checksum; 1 had none
STATE_NAME = "trainer_state.json"
OPTIM_NAME = "optimizer.safetensors"
RNG_NAME = "rng.safetensors"
MODEL_FILES = ("config.json", "model.safetensors", "classes.txt")


@dataclass
class TrainingState:
    """Where a run stands, besides its tensors.

    Args:
        epoch: the epoch in progress (the next one to run when ``step_in_epoch`` is 0).
        step_in_epoch: micro-batches of ``epoch`` each process has consumed.
        global_step: optimiser steps taken.
        world_size: processes of the run that wrote the state (the data position is per process).
        best: the kept best models, best first: ``{"value", "epoch", "global_step", "path"}``.
        log_records: lines of ``metrics.jsonl`` written when the state was saved (a resumed run
            drops later lines, which the interrupted run wrote but will write again).
        config: the training config of the run, as plain data.
        nonfinite_steps: optimiser steps skipped for a non-finite loss or gradient (``nonfinite: skip``).
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    world_size: int = 1
    best: list[dict[str, Any]] = field(default_factory=list)
    log_records: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    nonfinite_steps: int = 0


@dataclass
class RNGState:
    """One process's random generators: python, numpy, torch CPU and CUDA."""

    python: list[Any]
    numpy: dict[str, Any]
    torch: torch.Tensor
    cuda: list[torch.Tensor]


def capture_rng() -> RNGState:
    """The current process's RNG states."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return RNGState(
        python=[version, list(internal), gauss],
        numpy={"name": name, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        torch=torch.get_rng_state(),
        cuda=[s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    )


def restore_rng(state: RNGState) -> None:
    """Put the process's RNGs back to ``state``."""
    version, internal, gauss = state.python
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    n = state.numpy
    np.random.set_state((n["name"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state.torch)
    if state.cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state.cuda[: torch.cuda.device_count()])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _document_checksum(doc: dict[str, Any]) -> str:
    """SHA-256 of a state document's canonical JSON, without its own ``checksum`` field."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _split_optimizer_state(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimiser ``state_dict`` -> (tensors for safetensors, JSON-safe rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalar_state": scalars}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of ``_split_optimizer_state``."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, entry in meta.get("scalar_state", {}).items():
        state.setdefault(int(idx), {}).update(entry)
    # JSON has no tuples; optimisers keep hyper-parameter pairs (betas) as tuples.
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
              for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def write_training_state(
    folder: str | os.PathLike,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    state: TrainingState,
    rng: list[RNGState],
    loader_generator: torch.Generator | None = None,
    model_extra: dict[str, Any] | None = None,
) -> None:
    """Write a training state into the empty ``folder``, fsync it, read it back and verify it.

    ``rng`` holds every process's RNG states in rank order; ``model_extra`` goes into the model's
    ``config.json`` (what its model card is written from). A short write (full disk, ...) raises
    here; ``msqnet.engine.checkpoint_keeper`` writes into a staging folder, so nothing was replaced.
    """
    folder = Path(folder)
    save_model(model, folder, extra={**(model_extra or {}), "training_state": True})
    opt_tensors, opt_meta = _split_optimizer_state(optimizer.state_dict())
    write_safetensors(opt_tensors, folder / OPTIM_NAME, metadata={"format": STATE_FORMAT})
    rng_tensors: dict[str, torch.Tensor] = {}
    for r, s in enumerate(rng):
        rng_tensors[f"rank{r}.torch"] = s.torch
        for d, c in enumerate(s.cuda):
            rng_tensors[f"rank{r}.cuda{d}"] = c
    if loader_generator is not None:
        rng_tensors["loader_generator"] = loader_generator.get_state()
    write_safetensors(rng_tensors, folder / RNG_NAME, metadata={"format": STATE_FORMAT})
    files = {name: _sha256(folder / name) for name in (*MODEL_FILES, OPTIM_NAME, RNG_NAME)}
    doc = {
        "format": STATE_FORMAT,
        "format_version": STATE_VERSION,
        "state": asdict(state),
        "optimizer": opt_meta,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": [{"python": s.python, "numpy": s.numpy, "num_cuda": len(s.cuda)} for s in rng],
        "files": files,
    }
    doc["checksum"] = _document_checksum(doc)
    (folder / STATE_NAME).write_text(json.dumps(doc) + "\n", encoding="utf-8")
    for name in (*MODEL_FILES, OPTIM_NAME, RNG_NAME, STATE_NAME):
        _fsync_file(folder / name)
    fsync_dir(folder)
    verify_training_state(folder)


def verify_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Check a training-state folder (format, JSON, every file's checksum); returns its JSON document.

    Raises:
        CheckpointError: naming the folder, the bad file and what is wrong with it.
    """
    path = Path(path)
    doc_path = path / STATE_NAME
    doc = read_folder_document(path, STATE_NAME, kind="training state", file_format=STATE_FORMAT,
                               holds=f"{STATE_NAME} beside the model's files (a model folder alone cannot be resumed)")
    version = doc.get("format_version", 0)
    if not isinstance(version, int) or version > STATE_VERSION:
        raise CheckpointError(f"{doc_path}: format version {quote(version)} is not one this msqnet supports (1..{STATE_VERSION})")
    if version >= 2:
        if doc.get("checksum") != _document_checksum(doc):
            raise CheckpointError(f"{doc_path}: checksum of the document itself does not match; the file was edited "
                                  f"or corrupted (a training state must not be edited by hand)")
    else:
        log.warning("%s: written by an older msqnet without a checksum of its own; trusting it", doc_path)
    _check_document(doc, doc_path)
    files = doc.get("files")
    if not isinstance(files, dict) or set(files) != {*MODEL_FILES, OPTIM_NAME, RNG_NAME}:
        raise CheckpointError(f"{doc_path}: file list is missing or incomplete; the training state is corrupt")
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing from the training state")
        actual = _sha256(f)
        if actual != digest:
            raise CheckpointError(
                f"{f}: checksum mismatch (SHA-256 {actual[:12]}..., expected {digest[:12]}...); "
                f"the file is corrupt or truncated ({f.stat().st_size} bytes)"
            )
    return doc


_DOC_KEYS = {"format", "format_version", "state", "optimizer", "scaler", "rng", "files", "checksum"}
_ADDED_STATE_KEYS = {2: {"nonfinite_steps"}}  # TrainingState fields a version-1 document lacks


def _check_document(doc: dict[str, Any], doc_path: Path) -> None:
    """Every key a state document needs is there, with the right type, and none it should not hold."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{doc_path}: {what}; the training state is corrupt or from another msqnet version")

    unknown = sorted(set(doc) - _DOC_KEYS)
    missing = sorted(_DOC_KEYS - set(doc) - ({"checksum"} if doc["format_version"] < 2 else set()))
    if unknown or missing:
        raise bad(f"unknown keys {unknown}" if unknown else f"missing keys {missing}")
    state = doc["state"]
    if not isinstance(state, dict):
        raise bad("'state' is not an object")
    names = {f.name for f in fields(TrainingState)}
    optional = set().union(*(keys for v, keys in _ADDED_STATE_KEYS.items() if v > doc["format_version"]))
    absent = sorted(names - set(state) - optional)
    if absent:
        raise bad(f"state: missing keys {absent}")
    try:
        parsed = from_dict(TrainingState, state, where="state")
    except ConfigError as e:
        raise bad(str(e)) from None
    counts = ("epoch", "step_in_epoch", "global_step", "log_records", "nonfinite_steps")
    negative = [k for k in counts if getattr(parsed, k) < 0]
    if negative or parsed.world_size < 1:
        raise bad(f"state: {negative[0] if negative else 'world_size'} out of range")
    optimizer = doc["optimizer"]
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("param_groups"), list):
        raise bad("'optimizer' lacks its param_groups")
    rng = doc["rng"]
    if not isinstance(rng, list) or not rng or not all(
            isinstance(r, dict) and {"python", "numpy", "num_cuda"} <= set(r) for r in rng):
        raise bad("'rng' is not a list of per-process RNG states")
    if doc["scaler"] is not None and not isinstance(doc["scaler"], dict):
        raise bad("'scaler' is neither null nor an object")


def load_training_state(
    path: str | os.PathLike,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    loader_generator: torch.Generator | None = None,
    rank: int = 0,
    verified: dict[str, Any] | None = None,
) -> tuple[TrainingState, RNGState | None]:
    """Verify a training state and load it into ``model``, ``optimizer`` and ``scaler``.

    ``verified`` is the state's document when the caller has just verified it (skips hashing
    again). Returns the bookkeeping and this rank's RNG states (``None`` when the state was written
    by fewer processes). Raises ``CheckpointError`` for a corrupt, truncated or mismatched state.
    """
    path = Path(path)
    doc = verified if verified is not None else verify_training_state(path)
    meta = read_checkpoint_config(path)
    weights_file = path / MODEL_FILES[1]
    check_weight_shapes(model, weights_file, weight_shapes(weights_file), tuple(meta.get("by_reference", [])),
                        described_by="the model this run builds (was the model config changed since the run started?)")
    weights = read_weights(weights_file)
    try:
        opt_tensors = load_file(str(path / OPTIM_NAME))
        rng_tensors = load_file(str(path / RNG_NAME))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: cannot read the state's tensors ({e})") from None
    model.load_state_dict(weights, strict=False)  # exactly the checked tensors (frozen parts come from their source)
    model.decision_thresholds = meta["decision_thresholds"]  # chosen at the state's last evaluation, if any
    try:
        optimizer.load_state_dict(_join_optimizer_state(opt_tensors, doc["optimizer"]))
    except (ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{path / OPTIM_NAME}: does not fit this optimiser ({e})") from None
    if scaler is not None and scaler.is_enabled():
        if doc.get("scaler"):
            scaler.load_state_dict(doc["scaler"])
        else:
            log.warning("%s: no gradient-scaler state saved (the run used another precision); starting a fresh scaler", path)
    if loader_generator is not None and "loader_generator" in rng_tensors:
        loader_generator.set_state(rng_tensors["loader_generator"])
    state = from_dict(TrainingState, doc["state"])
    rng = None
    if rank < len(doc["rng"]):
        r = doc["rng"][rank]
        rng = RNGState(
            python=r["python"],
            numpy=r["numpy"],
            torch=rng_tensors[f"rank{rank}.torch"],
            cuda=[rng_tensors[f"rank{rank}.cuda{d}"] for d in range(r["num_cuda"])],
        )
    return state, rng


def state_position(doc: dict[str, Any]) -> tuple[int, int, int]:
    """How far a verified state document's run had got: ``(global step, epoch, step in the epoch)``."""
    s = doc["state"]
    return int(s["global_step"]), int(s["epoch"]), int(s["step_in_epoch"])
