"""Checkpoints on the Hugging Face hub: a repo id (``user/msqnet-ak``, optional ``@revision``) as a checkpoint.

Downloads go through ``huggingface_hub``'s cache (``HF_HUB_CACHE`` / ``HF_HOME``), so a model fetched once
loads offline afterwards (``HF_HUB_OFFLINE=1``); revisions are branches, tags or commit hashes. Only the
model files are fetched or published (``msqnet.checkpoint.CHECKPOINT_FILES``): frozen pretrained parts stay
stored by reference, never uploaded. A string names a local folder when that folder exists, else a repo id.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .._version import __version__
from ..utils import quote
from .card import model_card
from .format import CARD_NAME, CHECKPOINT_FILES, CheckpointError, local_model_folder, read_checkpoint_config

__all__ = ["RepoRef", "parse_repo_ref", "resolve_source", "download_checkpoint", "push_checkpoint"]

# ``namespace/name`` with an optional ``@revision`` (branch, tag or commit hash). A bare name is not
# taken for a repo id: it is far more often a mistyped local folder.
_REPO_REF = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[^\s@]+))?$")


@dataclass(frozen=True)
class RepoRef:
    """A hub model repo and an optional revision (None = the default branch)."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


def parse_repo_ref(spec: str) -> RepoRef | None:
    """``RepoRef`` for ``user/name`` or ``user/name@revision``; None when ``spec`` cannot be a repo id."""
    match = _REPO_REF.match(spec)
    if match is None:
        return None
    try:
        validate_repo_id(match["repo"])
    except HFValidationError:
        return None
    return RepoRef(match["repo"], match["revision"])


def _offline() -> bool:
    return bool(constants.HF_HUB_OFFLINE)


def download_checkpoint(ref: RepoRef, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """The local snapshot folder of a hub checkpoint (from the cache, downloading what is missing when online)."""
    try:
        folder = snapshot_download(
            ref.repo_id, revision=ref.revision, cache_dir=cache_dir, allow_patterns=list(CHECKPOINT_FILES),
            library_name="msqnet", library_version=__version__,
        )
    except LocalEntryNotFoundError:
        where = "offline mode (HF_HUB_OFFLINE=1)" if _offline() else "the hub could not be reached"
        raise CheckpointError(f"hub repo {ref}: not in the local hub cache and {where}") from None
    except HfHubHTTPError as e:
        reason = str(e).splitlines()[0]
        raise CheckpointError(f"hub repo {ref}: {reason}") from None
    return Path(folder)


def resolve_source(source: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """The local folder meant by ``source``: an existing folder as is, else the hub snapshot of a repo id.

    A ``Path`` is always a folder; a string is a folder when it exists and a repo id otherwise. A
    string that is neither gives an error naming both readings.
    """
    if isinstance(source, os.PathLike) or os.path.exists(source):
        return Path(source)
    ref = parse_repo_ref(source)
    if ref is None:
        return Path(source)  # not a repo id: the caller reports the missing folder
    try:
        return download_checkpoint(ref, cache_dir=cache_dir)
    except CheckpointError as e:
        raise CheckpointError(f"{source}: no such local folder, and as a hub repo id: {e}") from None


def push_checkpoint(
    checkpoint: str | os.PathLike,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Publish a checkpoint's model files and model card to a hub model repo; returns the commit URL.

    ``checkpoint`` is a model folder, a training state or a run folder (its best model); the repo is
    created when missing, ``revision`` names a branch (created from the default branch when missing).
    """
    if parse_repo_ref(repo_id) is None or "@" in repo_id:
        raise ValueError(f"{quote(repo_id)}: expected a hub repo id user/name (the branch goes in --revision)")
    folder = local_model_folder(checkpoint)
    meta = read_checkpoint_config(folder)  # refuses a folder that is not a valid checkpoint
    operations = [CommitOperationAdd(name, folder / name) for name in CHECKPOINT_FILES
                  if name != CARD_NAME and (folder / name).is_file()]
    # The card as generated names the repo in its usage lines; a card edited by hand goes up as it is.
    card = folder / CARD_NAME
    edited = card.is_file() and card.read_text(encoding="utf-8") != model_card(meta)
    card_text = card.read_text(encoding="utf-8") if edited else model_card(meta, source=repo_id)
    operations.append(CommitOperationAdd(CARD_NAME, card_text.encode("utf-8")))
    api = HfApi(token=token, library_name="msqnet", library_version=__version__)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.create_commit(repo_id, operations, revision=revision,
                                 commit_message=commit_message or f"Upload msqnet checkpoint {folder.name}")
    except Exception as e:  # HTTP, connection and offline-mode errors alike end as one readable line
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(f"push to {repo_id}: {type(e).__name__}: {first_line}") from None
    return info.commit_url
