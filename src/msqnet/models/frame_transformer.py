"""A video encoder sized for a CPU: frozen CNN features of every frame, read by a small space-time transformer.

The CNN is ImageNet EfficientNet-Lite0; the transformer is trained.

    clip (B, T, 3, H, W) -> frozen EfficientNet-Lite0 trunk, per frame, up to stage k -> (B, T, C, h, w)
                           (the part that can be computed once and cached: ``frozen_features``)
    -> tokens (B, T, N=h*w, C) -> LayerNorm -> [x_t ; x_t - x_(t-1)] -> Linear -> (B, T, N, D)
    -> + space and time embeddings -> L pre-norm transformer blocks over all T*N tokens -> LayerNorm
    -> VideoTokens (B, T*N, D), time-major

Why this shape: a transformer trained from pixels (the TimeSformer of the earlier ``msqnet-lite``)
learns too slowly for minutes of CPU training, while the frozen ImageNet trunk gives every patch a
strong appearance code for free. What it cannot give is motion; the frame-to-frame difference of the
codes, concatenated to each token, hands the trainable part a direct motion signal, and joint
attention over all space-time tokens relates actors across frames.
"""
from __future__ import annotations

from typing import Any

import torch
from einops import rearrange
from torch import nn

from ..config_loader import from_dict
from .config import FrameTransformerConfig, VideoEncoderConfig
from .efficientnet_lite import efficientnet_lite0, feature_size, fuse_batchnorm
from .normalize import Normalize
from .video_encoder import VideoTokens

__all__ = ["FrozenFrameBackbone", "FrameTransformer"]


class FrozenFrameBackbone(nn.Module):
    """The frozen per-frame trunk: clip (B, T, 3, H, W) in [0, 1] or uint8 -> feature maps (B, T, C, h, w)."""

    def __init__(self, cfg: FrameTransformerConfig, enc: VideoEncoderConfig):
        super().__init__()
        # Frozen for good: BatchNorm folded into the convolutions and channels-last layout, which
        # together make this part 2.5x faster on a CPU (benchmarks/frozen_backbone_speed.py).
        net = fuse_batchnorm(efficientnet_lite0(pretrained=enc.pretrained or True)).to(memory_format=torch.channels_last)
        self.stages = net.stages[: cfg.stage]
        self.frame_size = cfg.frame_size
        self.out_channels = net.stage_channels[cfg.stage - 1]
        # Only the stem and the blocks up to the chosen stage run; the rest is dropped.
        self.stem = net.stem
        self.blocks = net.blocks[: net.stage_ends[cfg.stage - 1]]
        self.normalize = Normalize(enc.mean, enc.std)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> "FrozenFrameBackbone":
        """Stay in eval mode (frozen BatchNorm statistics) whatever the parent does."""
        return super().train(False)

    def feature_size(self, image_size: int) -> int:
        """Side of the feature map for square frames of ``image_size``."""
        return feature_size(image_size, self.stages)

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Feature maps (B, T, C, h, w) of every frame of ``video`` (B, T, 3, H, W)."""
        b = video.shape[0]
        frames = self.normalize(rearrange(video, "b t c h w -> (b t) c h w"))
        if self.frame_size is not None and frames.shape[-2:] != (self.frame_size, self.frame_size):
            frames = nn.functional.interpolate(frames, size=(self.frame_size, self.frame_size), mode="bilinear",
                                               align_corners=False, antialias=True)
        frames = frames.to(self.stem.conv.weight.dtype).contiguous(memory_format=torch.channels_last)
        feats = self.blocks(self.stem(frames)).contiguous()  # ((b t), C, h, w)
        return rearrange(feats, "(b t) c h w -> b t c h w", b=b)


class FrameTransformer(nn.Module):
    """Frozen per-frame CNN features + a trainable pre-norm space-time transformer (see the module docstring).

    Args:
        enc: the video encoder config (``kind: frame_transformer``; ``config`` holds a
            :class:`FrameTransformerConfig`).
        num_frames: T.
        image_size: the clip's frame size, which fixes the token grid.
    """

    def __init__(self, enc: VideoEncoderConfig, *, num_frames: int, image_size: int):
        super().__init__()
        cfg = from_dict(FrameTransformerConfig, enc.config, where="video_encoder.config")
        self.cfg = cfg
        self.enc = enc
        self.num_frames = num_frames
        self.backbone = FrozenFrameBackbone(cfg, enc)
        self.grid = self.backbone.feature_size(cfg.frame_size or image_size)
        self.num_space = self.grid * self.grid
        c, d = self.backbone.out_channels, cfg.hidden_size
        self.hidden_size = d
        self.in_norm = nn.LayerNorm(c)
        self.in_proj = nn.Linear(2 * c if cfg.temporal_difference else c, d)
        self.space_embed = nn.Parameter(torch.zeros(1, 1, self.num_space, d))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, 1, d))
        nn.init.trunc_normal_(self.space_embed, std=0.02)
        nn.init.trunc_normal_(self.time_embed, std=0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, cfg.num_heads, int(d * cfg.mlp_ratio), cfg.dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(cfg.num_layers)
        )
        self.norm = nn.LayerNorm(d)

    def frozen_config(self) -> dict[str, Any]:
        """What the frozen part's outputs depend on besides its weights: a cache of them is keyed on this, so
        changing the trainable transformer (width, depth, dropout) keeps the cache."""
        return {"kind": self.enc.kind, "pretrained": self.enc.pretrained, "mean": self.enc.mean, "std": self.enc.std,
                "stage": self.cfg.stage, "frame_size": self.cfg.frame_size}

    def frozen_features(self, video: torch.Tensor) -> torch.Tensor:
        """The frozen part: per-frame feature maps (B, T, C, h, w) of a clip (B, T, 3, H, W)."""
        return self.backbone(video)

    def forward_features(self, feats: torch.Tensor) -> VideoTokens:
        """The trainable part: feature maps (B, T, C, h, w) -> tokens (B, T*N, D), time-major."""
        b, t, c, h, w = feats.shape
        if t != self.num_frames or h * w != self.num_space:
            raise ValueError(f"frame features of shape {tuple(feats.shape)}: expected T={self.num_frames} frames of "
                             f"{self.grid}x{self.grid} maps (num_frames / image_size of the model)")
        x = self.in_norm(rearrange(feats.float(), "b t c h w -> b t (h w) c"))  # (B, T, N, C)
        if self.cfg.temporal_difference:
            previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)  # frame 0 differs from itself: zero
            x = torch.cat([x, x - previous], dim=-1)  # (B, T, N, 2C)
        x = self.in_proj(x) + self.space_embed + self.time_embed  # (B, T, N, D)
        x = rearrange(x, "b t n d -> b (t n) d")
        for block in self.blocks:
            x = block(x)
        return VideoTokens(self.norm(x), has_cls=False, num_time=t, num_space=h * w, time_innermost=False)

    def forward(self, video: torch.Tensor) -> VideoTokens:
        """Clip (B, T, 3, H, W) -> tokens (B, T*N, D)."""
        return self.forward_features(self.frozen_features(video))

