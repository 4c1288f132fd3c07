"""MSQNet: "Actor-agnostic Multi-label Action Recognition with Multi-modal Query" (arXiv 2307.10763).

A video transformer's spatio-temporal tokens are pooled to one token per temporal position (or, with
``pooling: spatiotemporal``, all kept, T' x N tokens) and read by a transformer decoder whose queries are one per action class, each built from the class name's
text embedding fused with a video-level visual embedding; each decoded query is scored for its class.

    clip (B,T,3,H,W) -> VideoEncoder -> tokens (B,L,Hv) -> pool (B,T',Hv) -> Linear -> +PE -> (B,T',D)
    class names -> LabelEmbedder (frozen) -> (C,E) ┐
    clip -> VisualEmbedder (frozen) -> (B,V) ------┴-> QueryBuilder -> queries (B,C,D)
    nn.Transformer(tokens, queries) -> (B,C,D) -> head -> logits (B,C)

Credits: the MSQNet authors (model), Query2Label (group-wise linear head), HF transformers (encoders).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from ..config_loader import ConfigError
from ..data.views import TestView
from ..utils import quote
from .attention import set_attention
from .config import ModelConfig
from .decoder import QueryDecoder, SinusoidalPositionalEncoding
from .heads import GroupWiseLinear, TextConditionedHead
from .pooling import build_pooling
from .query import QueryBuilder
from .text import build_label_embedder
from .video_encoder import build_video_encoder
from .visual import build_visual_embedder

__all__ = ["MSQNet", "MSQNetOutput", "EncodedClip", "FrozenFrames", "check_class_names", "check_clips",
           "mix_label_embeddings"]

# How far outside [0, 1] a float clip's values may stray (resampling overshoot) before it is refused.
CLIP_RANGE_TOLERANCE = 1e-3

log = logging.getLogger(__name__)


def _not_installed(method: str) -> RuntimeError:
    """The error of ``model.<method>`` before :mod:`msqnet.inference`, which provides it, was imported."""
    return RuntimeError(f"model.{method} is provided by msqnet.inference: `import msqnet.inference` (or call "
                        f"msqnet.{method}(model, ...)) first")


def check_class_names(names: Sequence[str], what: str = "class names") -> list[str]:
    """The one rule for a label set, checked where one is created (a model, a checkpoint, labels to score):
    a non-empty list of unique, non-empty strings without surrounding whitespace or line breaks.

    Scores are keyed by name (a repeated name collapses in JSON output), and ``classes.txt`` stores one
    stripped name per line, so any other name would save but not load back. Raises ValueError naming
    ``what`` and the first bad name.
    """
    if isinstance(names, str) or not len(names):
        raise ValueError(f"{what}: expected a non-empty list of class names, got {quote(names)}")
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{what}: class {i} is {quote(name)}; expected a non-empty name")
        if name != name.strip():
            raise ValueError(f"{what}: class {i} {quote(name)} has surrounding whitespace; expected the name "
                             f"without it ({quote(name.strip())})")
        if len(name.splitlines()) != 1:  # what reading classes.txt back splits on
            raise ValueError(f"{what}: class {i} {quote(name)} holds a line break; expected one line of text")
        if name in first:
            raise ValueError(f"{what}: class {i} {quote(name)} duplicates class {first[name]}; expected unique names")
        first[name] = i
    return list(names)


def check_clips(clips: torch.Tensor, num_frames: int, image_size: int, where: str = "<tensor>") -> torch.Tensor:
    """The one check of a clip tensor given from outside (``predict``, ``model.predict``): shape
    (T, 3, S, S) or (B, T, 3, S, S) with the model's T and S, dtype uint8 (0..255) or floating point in
    [0, 1], every value finite. Returns it as (B, T, 3, S, S); raises ValueError naming what is wrong.

    A float clip of 0..255 pixels would otherwise be scored as saturated frames: wrong numbers, no error.
    """
    shape = tuple(clips.shape)
    if clips.ndim not in (4, 5) or shape[-4:] != (num_frames, 3, image_size, image_size):
        raise ValueError(f"{where}: clip tensor of shape {list(shape)}; expected (T, 3, S, S) or (B, T, 3, S, S) "
                         f"with T={num_frames} frames, 3 channels (RGB) and S={image_size} px (the model's)")
    if clips.dtype == torch.uint8:
        return clips if clips.ndim == 5 else clips.unsqueeze(0)
    if not clips.is_floating_point():
        raise ValueError(f"{where}: clip tensor of dtype {str(clips.dtype).removeprefix('torch.')}; expected uint8 "
                         f"(0..255) or a floating-point type (0..1)")
    if clips.numel() and not bool(torch.isfinite(clips).all()):
        raise ValueError(f"{where}: clip tensor holds NaN or infinite values; expected pixel values in [0, 1]")
    if clips.numel():
        low, high = float(clips.min()), float(clips.max())
        if low < -CLIP_RANGE_TOLERANCE or high > 1 + CLIP_RANGE_TOLERANCE:
            hint = " (0..255 pixels: divide by 255, or pass them as uint8)" if high > 1.5 else ""
            raise ValueError(f"{where}: float clip values span [{low:g}, {high:g}]; expected [0, 1]{hint}")
    return clips if clips.ndim == 5 else clips.unsqueeze(0)


def mix_label_embeddings(
    names: Sequence[str], class_names: Sequence[str], trained: torch.Tensor,
    embed_new: Callable[[list[str]], torch.Tensor],
) -> torch.Tensor:
    """Label embeddings (C', E) for ``names``: the ``trained`` (C, E) row of each training class name,
    ``embed_new`` (the frozen text embedder) for the others."""
    index = {n: i for i, n in enumerate(class_names)}
    known = [index.get(n) for n in names]
    out = torch.empty(len(names), trained.shape[1], device=trained.device)
    new = [i for i, k in enumerate(known) if k is None]
    if new:
        out[new] = embed_new([names[i] for i in new]).to(out)
    old = [i for i, k in enumerate(known) if k is not None]
    if old:
        out[old] = trained[[known[i] for i in old]].to(out)
    return out


def _check_memory_fits(video_encoder: nn.Module, cfg: ModelConfig) -> None:
    """Refuse a ``spatiotemporal`` memory longer than the decoder's position table, naming the key to change."""
    if hasattr(video_encoder, "num_space"):  # frame_transformer: one token per grid cell per frame
        num_time, num_space = video_encoder.num_frames, video_encoder.num_space
    else:  # HF TimeSformer / VideoMAE: patches of the model's frames, tubelets of its frames
        config = video_encoder.backbone.config
        num_time = cfg.num_frames // getattr(config, "tubelet_size", 1)
        num_space = (cfg.image_size // config.patch_size) ** 2
    if num_time * num_space > cfg.decoder.max_len:
        raise ConfigError(f"pooling: 'spatiotemporal' gives the decoder {num_time} x {num_space} = "
                          f"{num_time * num_space} memory tokens, more than decoder.max_len ({cfg.decoder.max_len}); "
                          f"raise decoder.max_len to at least {num_time * num_space} or use pooling: temporal")


@dataclass
class FrozenFrames:
    """What the model's frozen encoders compute from a clip's frames: computed once, reusable (training caches it).

    Args:
        features: (B, T, C, h, w) per-frame feature maps of a ``frame_transformer`` video encoder's
            frozen CNN; ``None`` for video encoders trained end to end.
        visual: (B, T, V) per-frame embeddings of the frozen visual embedder; ``None`` without one.
    """

    features: torch.Tensor | None = None
    visual: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "FrozenFrames":
        """The same outputs on ``device``."""
        return FrozenFrames(*(None if t is None else t.to(device, non_blocking=True) for t in (self.features, self.visual)))

    @property
    def num_views(self) -> int:
        """V for test views stacked as (B, V, T, ...); 0 for clips without a view axis (B, T, ...)."""
        if self.features is not None:
            return self.features.shape[1] if self.features.ndim == 6 else 0
        return self.visual.shape[1] if self.visual is not None and self.visual.ndim == 4 else 0

    def flatten_views(self) -> "FrozenFrames":
        """Test views (B, V, T, ...) as clips of their own (B*V, T, ...)."""
        return FrozenFrames(*(None if t is None else t.flatten(0, 1) for t in (self.features, self.visual)))


@dataclass
class MSQNetOutput:
    """Model output: ``logits`` (B, C), the decoded class features (B, C, D) and, only when asked
    (``decode(..., return_attention=True)``), each decoder layer's cross-attention of the class queries
    over the clip's M memory tokens, (B, layers, C, M) averaged over heads: M = T' temporal tokens, or
    T' x N time-major space-time tokens with ``pooling: spatiotemporal``."""

    logits: torch.Tensor
    class_features: torch.Tensor
    cross_attention: torch.Tensor | None = None


@dataclass
class EncodedClip:
    """A clip's label-independent encoding: decoder-ready ``tokens`` (B, M, D) (M = T', or T' x N with
    ``pooling: spatiotemporal``), the
    ``visual_embedding`` (B, V) its queries fuse (``None`` for models without one) and its own
    ``video_embedding`` (B, D), the memory averaged over time."""

    tokens: torch.Tensor
    visual_embedding: torch.Tensor | None
    video_embedding: torch.Tensor


class MSQNet(nn.Module):
    """The MSQNet model for a fixed training label set (other label sets via ``embed_labels``).

    Args:
        cfg: the architecture.
        class_names: the C training class names, in class-id order.
        label_embed: (C, E) label embeddings of ``class_names`` from the label embedder; ``None``
            only when ``text_dim`` is given and the weights will be loaded from a checkpoint.
        text_dim: E, when ``label_embed`` is not given.
        multi_label: clips carry any number of the classes (scores are sigmoid probabilities), or
            exactly one (softmax); the training data decides, and checkpoints record it.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        class_names: Sequence[str],
        *,
        label_embed: torch.Tensor | None = None,
        text_dim: int | None = None,
        multi_label: bool = True,
    ):
        super().__init__()
        self.cfg = cfg
        self.class_names = check_class_names(class_names)
        num_classes = len(self.class_names)
        if label_embed is None and cfg.query != "learned":
            if text_dim is None:
                raise ValueError("give label_embed (C, E) or text_dim")
            label_embed = torch.zeros(num_classes, text_dim)
        d = cfg.decoder.d_model

        self.video_encoder = build_video_encoder(cfg.video_encoder, num_frames=cfg.num_frames, image_size=cfg.image_size)
        hidden = self.video_encoder.hidden_size
        self.pool = build_pooling(cfg.pooling, num_frames=cfg.num_frames, add_cls=cfg.pool_cls)
        if cfg.pooling == "spatiotemporal":
            _check_memory_fits(self.video_encoder, cfg)
        # The reference's VideoMAE variant normalises pooled tokens (VideoMAE has no final norm here).
        self.token_norm = nn.LayerNorm(hidden) if cfg.video_encoder.kind == "videomae" else nn.Identity()
        self.token_proj = nn.Linear(hidden, d, bias=False)
        # input_norm: the clip's tokens at unit scale before the unit-amplitude position code is added.
        self.memory_norm = nn.LayerNorm(d) if cfg.input_norm else nn.Identity()
        self.pos_encoding = SinusoidalPositionalEncoding(d, dropout=cfg.decoder.pos_dropout, max_len=cfg.decoder.max_len)

        self.visual_embedder = build_visual_embedder(cfg.visual_embedder)
        visual_dim = self.visual_embedder.out_dim if self.visual_embedder is not None else 0
        if cfg.visual_embedder.kind == "video_encoder":
            visual_dim = d  # the clip's own video embedding: its memory tokens, averaged
        self.query_builder = QueryBuilder(
            mode=cfg.query,
            label_embed=label_embed,
            visual_dim=visual_dim,
            d_model=d,
            trainable=cfg.trainable_label_embeddings,
            num_classes=num_classes,
            input_norm=cfg.input_norm,
        )
        self.decoder = QueryDecoder(cfg.decoder)
        if cfg.head == "group_linear":
            self.head: nn.Module = GroupWiseLinear(num_classes, d)
        else:
            self.head = TextConditionedHead(self.query_builder.text_dim, d)
        self._label_embedder = None  # built on demand (frozen, not part of the state dict)
        self.multi_label = multi_label
        # How clips are built at test time (saved with the weights; the trainer sets the one it used).
        self.test_view = TestView()
        # What predictions are read with (saved with the weights; the trainer sets them from its data):
        # the seconds of a training clip (None: unknown, one clip per video) and the per-class
        # decision thresholds (a metrics.thresholds.DecisionThresholds; None: uncalibrated scores).
        self.clip_seconds: float | None = None
        self.decision_thresholds = None
        set_attention(self, cfg.attention)

    @property
    def num_classes(self) -> int:
        """C, the number of training classes."""
        return len(self.class_names)

    def label_embedder(self):
        """The frozen label (text) embedder, built on first use, in fp32 on the model's device.

        Held outside the module tree: not in the state dict (a checkpoint saved after scoring new
        names loads), and not cast with the model's weights (it returns fp32 embeddings, which the
        query builder and the text head cast to their own dtype: ``msqnet.precision``)."""
        if self._label_embedder is None:
            object.__setattr__(self, "_label_embedder", build_label_embedder(self.cfg.label_embedder))
        return self._label_embedder.to(self.query_builder.proj.weight.device)

    def embed_labels(self, names: Sequence[str]) -> torch.Tensor:
        """Label embeddings (C', E) for any class names: trained rows for known names, text for new ones."""
        if self.cfg.query == "learned" or self.cfg.head == "group_linear":
            unknown = [n for n in names if n not in self.class_names]
            if unknown:
                raise ValueError(
                    f"this model (query={self.cfg.query}, head={self.cfg.head}) can only score its training classes; "
                    f"unknown: {unknown[:5]}. Open-vocabulary scoring needs head: text"
                )
        return mix_label_embeddings(names, self.class_names, self.query_builder.label_embeddings,
                                    lambda new: self.label_embedder()(new))

    @property
    def has_frozen_frames(self) -> bool:
        """Whether part of the forward is frozen per-frame work that ``frozen_frames`` can precompute."""
        return self.visual_embedder is not None or hasattr(self.video_encoder, "frozen_features")

    @torch.no_grad()
    def frozen_frames(self, video: torch.Tensor) -> FrozenFrames:
        """The frozen encoders' per-frame outputs for a clip (B, T, 3, H, W), to pass back as ``frozen=``."""
        features = self.video_encoder.frozen_features(video) if hasattr(self.video_encoder, "frozen_features") else None
        visual = self.visual_embedder.embed_frames(video) if self.visual_embedder is not None else None
        return FrozenFrames(features=features, visual=visual)

    def encode(self, video: torch.Tensor | None = None, *, frozen: FrozenFrames | None = None) -> EncodedClip:
        """The label-independent part of the forward: clip (B, T, 3, H, W) -> :class:`EncodedClip`.

        Encode a clip once and :meth:`decode` it for as many label sets as needed. ``frozen`` (the
        frozen encoders' outputs, see :meth:`frozen_frames`) replaces what it holds of the clip.
        """
        if video is None and frozen is None:
            raise ValueError("give the clip, or its frozen per-frame outputs (frozen=)")
        frozen = frozen or FrozenFrames()
        if frozen.features is not None:
            tokens = self.video_encoder.forward_features(frozen.features)
        elif video is not None:
            tokens = self.video_encoder(video)
        else:
            raise ValueError("frozen= holds no frame features: this video encoder needs the clip")
        x = self.pool(tokens)  # (B, M, Hv): M = T', or T' x N (spatiotemporal)
        x = self.memory_norm(self.token_proj(self.token_norm(x)))  # (B, M, D)
        video_embedding = x.mean(dim=1)  # (B, D): the clip's own, trained, video-level embedding
        x = self.pos_encoding(x)
        visual_embedding = None
        if self.cfg.visual_embedder.kind == "video_encoder":
            visual_embedding = video_embedding
        elif self.query_builder.visual_dim:
            visual = frozen.visual if frozen.visual is not None else self.visual_embedder.embed_frames(video)
            visual_embedding = visual.mean(dim=1)  # (B, V): the frozen embedder's time-averaged frame embedding
        return EncodedClip(tokens=x, visual_embedding=visual_embedding, video_embedding=video_embedding)

    def decode(self, clip: EncodedClip, *, label_embed: torch.Tensor | None = None,
               return_attention: bool = False) -> MSQNetOutput:
        """Score an encoded clip for the training classes, or for ``label_embed`` (C', E); with
        ``return_attention`` also the decoder's cross-attention (see :class:`MSQNetOutput`)."""
        queries = self.query_builder(clip.tokens.shape[0], clip.visual_embedding, label_embed)  # (B, C, D)
        attention = None
        if return_attention:
            h, attention = self.decoder(clip.tokens, queries, return_attention=True)  # (B, C, D), (B, layers, C, M)
        else:
            h = self.decoder(clip.tokens, queries)  # (B, C, D)
        if self.cfg.video_residual:  # every class feature starts from the clip's embedding
            h = h + clip.video_embedding.unsqueeze(1)
        logits = self.head(h, self.query_builder.labels(label_embed))  # (B, C)
        return MSQNetOutput(logits=logits, class_features=h, cross_attention=attention)

    def forward(
        self,
        video: torch.Tensor | None = None,
        *,
        frozen: FrozenFrames | None = None,
        label_embed: torch.Tensor | None = None,
    ) -> MSQNetOutput:
        """Score a clip (B, T, 3, H, W), uint8 or float in [0, 1], for the training classes.

        Args:
            video: the clip; each encoder normalises it with its own statistics. May be omitted
                when ``frozen`` holds everything the encoders need (a ``frame_transformer`` model).
            frozen: the frozen encoders' per-frame outputs (``frozen_frames``), e.g. cached during
                training; what it holds is not computed again.
            label_embed: (C', E) embeddings of other class names (see ``embed_labels``).
        """
        return self.decode(self.encode(video, frozen=frozen), label_embed=label_embed)

    def predict(self, inputs, labels: Sequence[str] | None = None, **kwargs):
        """Per-label probabilities for videos, frame folders or clip tensors (``msqnet.predict``).

        Installed by :mod:`msqnet.inference` (the network does not import the layers above it);
        ``import msqnet`` installs it on first use of its API.
        """
        raise _not_installed("predict")

    def explain(self, video, labels: Sequence[str] | None = None, **kwargs):
        """Where and when the model looked for each label (``msqnet.explain``; installed like ``predict``)."""
        raise _not_installed("explain")

    def train(self, mode: bool = True) -> "MSQNet":
        """Set train/eval mode; frozen embedders always stay in eval mode."""
        super().train(mode)
        if self.visual_embedder is not None:
            self.visual_embedder.eval()
        return self
