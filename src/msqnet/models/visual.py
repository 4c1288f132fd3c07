"""Frozen video-specific embedders: a pretrained image encoder run on every frame, averaged over time.

MSQNet fuses this embedding into every class query, so each query knows what the clip looks like.
The paper uses CLIP ViT-B/16 vision (``pooler_output``: the post-LayerNorm CLS state, without
``visual_projection``); the CPU preset uses ImageNet EfficientNet-Lite0 (global-pooled 1280-d head
features). Both stay frozen and in eval mode whatever the parent module does.
"""
from __future__ import annotations

import logging
import typing

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from ..config_loader import ConfigError
from ..precision import to_param_dtype
from ..utils import quote
from .config import CLIP_MEAN, VisualEmbedderConfig, VisualEmbedderKind
from .efficientnet_lite import EFFICIENTNET_LITE_MEAN, EfficientNetLite, efficientnet_lite0
from .normalize import Normalize

__all__ = ["VisualEmbedder", "ClipVisualEmbedder", "EfficientNetVisualEmbedder", "build_visual_embedder"]

log = logging.getLogger(__name__)


class VisualEmbedder(nn.Module):
    """Frozen per-frame image encoder: clip (B, T, 3, H, W) -> mean over T of frame embeddings (B, out_dim).

    Subclasses say how a batch of normalised images becomes embeddings (:meth:`encode_images`).

    Args:
        encoder: the image model; its parameters are frozen here.
        out_dim: embedding size.
        image_size: frames are resized (bilinear, antialiased) to ``image_size`` x ``image_size``
            first; ``None`` = use them as they come.
        mean: per-channel mean applied to [0, 1] frames; ``None`` = feed them as-is (reference parity).
        std: per-channel std.
        max_images: encode at most this many frames per encoder call, to bound activation memory.
    """

    def __init__(self, encoder: nn.Module, out_dim: int, *, image_size: int | None = None,
                 mean: tuple[float, float, float] | None = None, std: tuple[float, float, float] | None = None,
                 max_images: int = 256):
        super().__init__()
        self.encoder = encoder
        self.out_dim = out_dim
        self.image_size = image_size
        self.max_images = max_images
        self.normalize = Normalize(mean, std)
        self.encoder.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> VisualEmbedder:
        """Stay in eval mode: frozen BatchNorm statistics and no dropout, whatever the parent does."""
        return super().train(False)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, 3, H, W) -> embeddings (N, out_dim)."""
        raise NotImplementedError

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Clip (B, T, 3, H, W), uint8 or float in [0, 1] -> time-averaged frame embedding (B, out_dim)."""
        return self.embed_frames(video).mean(dim=1)

    @torch.no_grad()
    def embed_frames(self, video: torch.Tensor) -> torch.Tensor:
        """Clip (B, T, 3, H, W), uint8 or float in [0, 1] -> one embedding per frame (B, T, out_dim)."""
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"visual embedder expects a clip (B, T, 3, H, W), got shape {tuple(video.shape)}")
        b = video.shape[0]
        frames = rearrange(video, "b t c h w -> (b t) c h w")
        if frames.dtype == torch.uint8:
            frames = frames.float().div_(255.0)
        if self.image_size is not None and frames.shape[-2:] != (self.image_size, self.image_size):
            frames = F.interpolate(frames, size=(self.image_size, self.image_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        frames = to_param_dtype(self.normalize(frames), self.encoder)
        feats = torch.cat([self.encode_images(chunk) for chunk in frames.split(self.max_images)])  # ((b t), d)
        return rearrange(feats, "(b t) d -> b t d", b=b)

    def extra_repr(self) -> str:
        return f"out_dim={self.out_dim}, image_size={self.image_size}, frozen"


class ClipVisualEmbedder(VisualEmbedder):
    """CLIP vision tower: ``pooler_output`` (post-LayerNorm CLS), no ``visual_projection``."""

    encoder: CLIPVisionModel

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        expected = self.encoder.config.image_size
        if images.shape[-2:] != (expected, expected):
            raise ValueError(
                f"CLIP vision model expects {expected}x{expected} frames, got {images.shape[-2]}x{images.shape[-1]}; "
                f"set visual_embedder.image_size: {expected} to resize them"
            )
        return self.encoder(pixel_values=images).pooler_output


class EfficientNetVisualEmbedder(VisualEmbedder):
    """EfficientNet-Lite: global average pool of the 1280-d head features (the classifier is not used)."""

    encoder: EfficientNetLite

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_features(images)


def _load_clip_vision(cfg: VisualEmbedderConfig) -> CLIPVisionModel:
    """CLIP vision model from a hub id / local folder, or randomly initialised from ``cfg.config``."""
    if cfg.pretrained is None:
        return CLIPVisionModel(CLIPVisionConfig(**cfg.config))
    try:
        return CLIPVisionModel.from_pretrained(cfg.pretrained, **cfg.config)
    except OSError as e:
        raise FileNotFoundError(
            f"visual_embedder.pretrained: cannot load a CLIP vision model from {quote(cfg.pretrained)} "
            f"(a local folder written by save_pretrained, or a hub id available offline): {e}"
        ) from e


def build_visual_embedder(cfg: VisualEmbedderConfig) -> VisualEmbedder | None:
    """Build the frozen visual embedder ``cfg`` describes; ``None`` for ``kind: none`` and ``video_encoder``
    (the video embedding then comes from the trained video encoder, inside the model)."""
    if cfg.kind in ("none", "video_encoder"):
        return None
    common = dict(image_size=cfg.image_size, mean=cfg.mean, std=cfg.std)
    if cfg.kind == "clip":
        model = _load_clip_vision(cfg)
        return ClipVisualEmbedder(model, model.config.hidden_size, **common)
    if cfg.kind == "efficientnet_lite0":
        if cfg.config:
            raise ConfigError(f"visual_embedder.config: efficientnet_lite0 takes no config fields, got {sorted(cfg.config)}")
        if cfg.mean is not None and tuple(cfg.mean) == tuple(CLIP_MEAN):
            log.warning("visual_embedder: efficientnet_lite0 with CLIP's mean/std; its ImageNet weights were "
                        "trained with mean %s (set visual_embedder.mean/std)", EFFICIENTNET_LITE_MEAN)
        model = efficientnet_lite0(pretrained=cfg.pretrained or True)
        return EfficientNetVisualEmbedder(model, model.num_features, **common)
    raise ConfigError(f"visual_embedder.kind: expected one of {list(typing.get_args(VisualEmbedderKind))}, "
                      f"got {quote(cfg.kind)}")
