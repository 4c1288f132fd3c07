"""Trainable video backbones: adapters over HF ``TimesformerModel`` and ``VideoMAEModel``.

Each adapter takes a clip ``(B, T, 3, H, W)`` in [0, 1], applies the backbone's own normalisation and
returns its spatio-temporal tokens together with the layout needed to pool them per frame.

TimeSformer checkpoints are trained on a fixed frame count (8 for K400). For another T, the
pretrained time embeddings are linearly interpolated (default) or, as the MSQNet reference does,
dropped and started at zero (``time_embeddings: zero``).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn
from transformers import TimesformerConfig, TimesformerModel, VideoMAEConfig, VideoMAEModel

from ..precision import to_param_dtype
from .config import VideoEncoderConfig
from .frame_transformer import FrameTransformer
from .normalize import Normalize
from .tokens import VideoTokens

__all__ = ["VideoTokens", "VideoEncoder", "build_video_encoder", "interpolate_time_embeddings"]

log = logging.getLogger(__name__)


class VideoEncoder(nn.Module):
    """A HF video transformer with its normalisation, returning :class:`VideoTokens`."""

    def __init__(self, cfg: VideoEncoderConfig, backbone: TimesformerModel | VideoMAEModel, num_frames: int):
        super().__init__()
        self.kind = cfg.kind
        self.num_frames = num_frames
        self.normalize = Normalize(cfg.mean, cfg.std)
        self.backbone = backbone
        self.hidden_size: int = backbone.config.hidden_size
        if cfg.gradient_checkpointing:
            backbone.gradient_checkpointing_enable()

    def forward(self, video: torch.Tensor) -> VideoTokens:
        """Encode a clip (B, T, 3, H, W) in [0, 1] into backbone tokens."""
        b, t, _, h, w = video.shape
        if t != self.num_frames:
            raise ValueError(f"video encoder was built for T={self.num_frames} frames, got a clip with T={t}")
        x = self.backbone(pixel_values=to_param_dtype(self.normalize(video), self.backbone)).last_hidden_state  # (B, L, D)
        patch = self.backbone.config.patch_size
        num_space = (h // patch) * (w // patch)
        if self.kind == "timesformer":
            return VideoTokens(x, has_cls=True, num_time=t, num_space=num_space, time_innermost=True)
        tubelet = self.backbone.config.tubelet_size
        return VideoTokens(x, has_cls=False, num_time=t // tubelet, num_space=num_space, time_innermost=False)


def interpolate_time_embeddings(time_embed: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Resample time embeddings (1, T0, D) to (1, T, D) by linear interpolation along time."""
    if time_embed.shape[1] == num_frames:
        return time_embed
    x = time_embed.transpose(1, 2)  # (1, D, T0)
    x = F.interpolate(x, size=num_frames, mode="linear", align_corners=False)
    return x.transpose(1, 2).contiguous()  # (1, T, D)


def _from_pretrained(cls, source: str, *, allow_mismatch: tuple[str, ...] = (), **kwargs):
    """``cls.from_pretrained`` that fails when weights are missing (HF only warns and re-initialises)."""
    model, info = cls.from_pretrained(source, output_loading_info=True, **kwargs)
    missing = sorted(info["missing_keys"])
    mismatched = sorted(k[0] for k in info.get("mismatched_keys", ()) if k[0] not in allow_mismatch)
    if missing or mismatched:
        raise ValueError(
            f"{source}: not a {cls.__name__} checkpoint for this config: missing weights {missing[:5]}, "
            f"mismatched {mismatched[:5]} (they would be silently re-initialised)"
        )
    return model


def _build_timesformer(cfg: VideoEncoderConfig, num_frames: int, image_size: int) -> TimesformerModel:
    if cfg.pretrained is None:
        config = TimesformerConfig(**{**cfg.config, "num_frames": num_frames, "image_size": image_size})
        return TimesformerModel(config)
    if cfg.time_embeddings == "zero":
        # The reference: mismatched time embeddings are dropped and start at zero.
        model = _from_pretrained(
            TimesformerModel, cfg.pretrained, num_frames=num_frames, ignore_mismatched_sizes=True,
            allow_mismatch=("embeddings.time_embeddings",), **cfg.config,
        )
        if model.embeddings.time_embeddings.shape[1] != TimesformerConfig.from_pretrained(cfg.pretrained).num_frames:
            nn.init.zeros_(model.embeddings.time_embeddings)
        return model
    source = _from_pretrained(TimesformerModel, cfg.pretrained, **cfg.config)
    if source.config.num_frames == num_frames:
        return source
    log.info("interpolating TimeSformer time embeddings %d -> %d frames", source.config.num_frames, num_frames)
    config = TimesformerConfig.from_dict({**source.config.to_dict(), "num_frames": num_frames})
    model = TimesformerModel(config)
    state = source.state_dict()
    state["embeddings.time_embeddings"] = interpolate_time_embeddings(state["embeddings.time_embeddings"], num_frames)
    model.load_state_dict(state)
    return model


def _build_videomae(cfg: VideoEncoderConfig, num_frames: int, image_size: int) -> VideoMAEModel:
    if cfg.pretrained is None:
        config = VideoMAEConfig(**{**cfg.config, "num_frames": num_frames, "image_size": image_size})
        return VideoMAEModel(config)
    # VideoMAE's position table is sinusoidal and rebuilt from num_frames: nothing to interpolate.
    return _from_pretrained(VideoMAEModel, cfg.pretrained, num_frames=num_frames, **cfg.config)


def build_video_encoder(cfg: VideoEncoderConfig, *, num_frames: int, image_size: int) -> nn.Module:
    """Build the video backbone: HF TimeSformer / VideoMAE from a hub id, a local folder
    (``from_pretrained``) or a config, or the frozen-CNN ``frame_transformer``."""
    if cfg.kind == "frame_transformer":
        return FrameTransformer(cfg, num_frames=num_frames, image_size=image_size)
    if cfg.kind == "timesformer":
        backbone = _build_timesformer(cfg, num_frames, image_size)
    else:
        backbone = _build_videomae(cfg, num_frames, image_size)
        if num_frames % backbone.config.tubelet_size:
            raise ValueError(f"VideoMAE needs T divisible by tubelet_size={backbone.config.tubelet_size}, got T={num_frames}")
    if image_size % backbone.config.patch_size:
        raise ValueError(f"image_size ({image_size}) must be a multiple of the video encoder's patch_size "
                         f"({backbone.config.patch_size}); the pixels past the last whole patch would be dropped")
    return VideoEncoder(cfg, backbone, num_frames)
