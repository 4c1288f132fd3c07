"""A video encoder sized for a CPU: frozen CNN features of every frame, read by a small space-time transformer.

The CNN is ImageNet EfficientNet-Lite0; the transformer is trained.

    clip (B, T, 3, H, W) -> frozen EfficientNet-Lite0 trunk, per frame, up to stage k -> (B, T, C, h, w)
                           (the part that can be computed once and cached: ``frozen_features``)
    -> tokens (B, T, N=h*w, C) -> LayerNorm -> [x_t ; x_t - x_(t-1)] -> Linear -> (B, T, N, D)
    -> + space and time embeddings -> L pre-norm transformer blocks over all T*N tokens -> LayerNorm
    -> VideoTokens (B, T*N, D), time-major

With ``pixel_patch: p``, the frozen part also hands on each frame's grayscale pixels (p x p per token,
stored as p*p extra channels of the feature map), and a small trainable CNN reads every frame beside
its difference to the previous one, one stride-2 convolution per halving from p down to 1, into a
D-vector per token that is added to the token (``PixelMotionStream``). With ``backbone: none`` there is
no CNN and the tokens come from the pixels alone.

Why this shape: a transformer trained from pixels (the TimeSformer of the earlier ``msqnet-lite``)
learns too slowly for minutes of CPU training, while the frozen ImageNet trunk gives every patch a
strong appearance code for free. What it cannot give is motion; the frame-to-frame difference of the
codes, concatenated to each token, hands the trainable part a direct motion signal, and joint
attention over all space-time tokens relates actors across frames.

Why the pixel stream: the CNN's codes at stride 16 carry appearance well and small motions less well, and
appearance includes what an actor looks like. On the synthetic benchmark (drawn actors, classes that are
motions) the ImageNet codes cost transfer to unseen body plans and unseen class names; grayscale pixels
and their differences, read by a CNN trained with the rest, transfer (README, "Results").
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch
from einops import rearrange
from torch import nn

from ..config_loader import from_dict
from ..precision import to_param_dtype
from .config import FrameTransformerConfig, VideoEncoderConfig
from .efficientnet_lite import efficientnet_lite0, feature_size, fuse_batchnorm
from .normalize import Normalize
from .tokens import VideoTokens

__all__ = ["FrozenFrameBackbone", "FrameTransformer", "PixelMotionStream", "mirror_frame_features"]


def mirror_frame_features(feats: torch.Tensor, *, channels: int, pixel_patch: int | None) -> torch.Tensor:
    """The frozen part's output (..., C [+ p*p], h, w) of the left-right mirrored frames (CNN maps mirrored
    approximately: the filters are not mirror-symmetric; pixel channels exactly)."""
    if not pixel_patch:
        return feats.flip(-1)
    cnn, pixels = feats[..., :channels, :, :], feats[..., channels:, :, :]
    # (..., p, p, h, w): flip the pixel columns within each token (-3) and the token columns (-1)
    pixels = pixels.unflatten(-3, (pixel_patch, pixel_patch)).flip(-3, -1).flatten(-4, -3)
    return torch.cat([cnn.flip(-1), pixels], dim=-3)


class PixelMotionStream(nn.Module):
    """A small trainable CNN over grayscale frames and their differences: (B, T, p*p, h, w) -> (B, T, h*w, D)."""

    def __init__(self, pixel_patch: int, dim: int, width: int = 16):
        super().__init__()
        self.patch = pixel_patch
        layers, cin = [], 2  # the frame and its difference to the previous frame
        for i in range(pixel_patch.bit_length() - 1):  # log2(p) stride-2 convolutions: p x p pixels -> 1 token
            cout = width * 2**i
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        layers.append(nn.Conv2d(cin, dim, 1))
        self.net = nn.Sequential(*layers).to(memory_format=torch.channels_last)  # the CPU's faster conv layout

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Token vectors (B, T, h*w, D) from grayscale pixels in [0, 1], p*p channels per token (B, T, p*p, h, w)."""
        b = pixels.shape[0]
        pixels = to_param_dtype(pixels, self.net)
        frames = rearrange(pixels, "b t (i j) h w -> b t (h i) (w j)", i=self.patch) - 0.5  # (B, T, H, W)
        previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # frame 0 differs from itself: zero
        x = torch.stack([frames, frames - previous], dim=2)  # (B, T, 2, H, W)
        x = rearrange(x, "b t c hh ww -> (b t) c hh ww").contiguous(memory_format=torch.channels_last)
        x = self.net(x)  # ((B T), D, h, w)
        return rearrange(x, "(b t) d h w -> b t (h w) d", b=b)


class FrozenFrameBackbone(nn.Module):
    """The frozen per-frame part: clip (B, T, 3, H, W) in [0, 1] or uint8 -> per-frame maps (B, T, C [+ p*p], h, w):
    the CNN's feature maps (``backbone``), then the grayscale pixels (``pixel_patch``), as channels."""

    def __init__(self, cfg: FrameTransformerConfig, enc: VideoEncoderConfig, max_frames: int = 128):
        super().__init__()
        # At most this many frames per CNN call (about 2 GB of activations at 224 px); a training batch
        # (16 clips x 8 frames) is one call, many test views are several.
        self.max_frames = max_frames
        self.frame_size = cfg.frame_size
        self.pixel_patch = cfg.pixel_patch
        self.stages: list | None = None
        self.out_channels = 0
        if cfg.backbone != "none":
            # Frozen for good: BatchNorm folded into the convolutions and channels-last layout, which
            # together make this part 2.5x faster on a CPU (benchmarks/frozen_backbone_speed.py).
            net = fuse_batchnorm(efficientnet_lite0(pretrained=enc.pretrained or True))
            net = net.to(memory_format=torch.channels_last)
            self.stages = net.stages[: cfg.stage]
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
        """Side of the token grid for square frames of ``image_size``: the CNN's map, or one token per p x p pixels."""
        return feature_size(image_size, self.stages) if self.stages is not None else image_size // self.pixel_patch

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame maps (B, T, C [+ p*p], h, w) of every frame of ``video`` (B, T, 3, H, W)."""
        b = video.shape[0]
        frames = rearrange(video, "b t c h w -> (b t) c h w")
        if frames.shape[0] > self.max_frames:  # 32 clips x 6 test views x 8 frames at 224 px: over 20 GB at once
            feats = torch.cat([self.frame_maps(chunk) for chunk in frames.split(self.max_frames)])
        else:
            feats = self.frame_maps(frames)
        return rearrange(feats, "(b t) c h w -> b t c h w", b=b)

    def frame_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """Maps (N, C [+ p*p], h, w) of frames (N, 3, H, W), uint8 or in [0, 1]."""
        frames = frames.float() / 255 if frames.dtype == torch.uint8 else frames  # [0, 1] for the CNN and the pixels
        if self.frame_size is not None and frames.shape[-2:] != (self.frame_size, self.frame_size):
            frames = nn.functional.interpolate(frames, size=(self.frame_size, self.frame_size), mode="bilinear",
                                               align_corners=False, antialias=True)
        maps = []
        if self.stages is not None:
            x = to_param_dtype(self.normalize(frames), self.stem).contiguous(memory_format=torch.channels_last)
            maps.append(self.blocks(self.stem(x)).contiguous())  # (N, C, h, w)
        if self.pixel_patch:
            grid = self.feature_size(frames.shape[-1])
            maps.append(self.pixels(frames, (grid, grid)))  # (N, p*p, h, w)
        return torch.cat([m.to(maps[0].dtype) for m in maps], dim=1) if len(maps) > 1 else maps[0]

    def pixels(self, frames: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Grayscale frames at p pixels per token, as channels: (N, 3, H, W) in [0, 1] -> (N, p*p, h, w)."""
        gray = frames.float().mean(dim=1, keepdim=True)  # ((b t), 1, H, W)
        size = (grid[0] * self.pixel_patch, grid[1] * self.pixel_patch)
        if gray.shape[-2:] != size:
            gray = nn.functional.interpolate(gray, size=size, mode="bilinear", align_corners=False, antialias=True)
        return nn.functional.pixel_unshuffle(gray, self.pixel_patch)  # ((b t), p*p, h, w)


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
        self.channels = c
        self.in_norm = nn.LayerNorm(c) if c else None
        self.in_proj = nn.Linear(2 * c if cfg.temporal_difference else c, d) if c else None
        # |change of each frame's mean feature|: >= 0, of a different scale per channel, so standardised first
        self.motion_norm = nn.BatchNorm1d(c, affine=False) if c and cfg.frame_motion else None
        self.motion_proj = nn.Linear(c, d) if self.motion_norm is not None else None
        self.pixel_stream = PixelMotionStream(cfg.pixel_patch, d, cfg.pixel_width) if cfg.pixel_patch else None
        self.space_embed = nn.Parameter(torch.zeros(1, 1, self.num_space, d))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, 1, d))
        nn.init.trunc_normal_(self.space_embed, std=0.02)
        nn.init.trunc_normal_(self.time_embed, std=0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, cfg.num_heads, int(d * cfg.mlp_ratio), cfg.dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(cfg.num_layers)
        )
        if cfg.attention_dropout is not None:
            for block in self.blocks:
                block.self_attn.dropout = cfg.attention_dropout  # read by the attention at every call
        self.norm = nn.LayerNorm(d)

    def frozen_config(self) -> dict[str, Any]:
        """What the frozen part's outputs depend on besides its weights: a cache of them is keyed on this, so
        changing the trainable transformer (width, depth, dropout) keeps the cache."""
        return {"kind": self.enc.kind, "backbone": self.cfg.backbone, "pretrained": self.enc.pretrained,
                "mean": self.enc.mean, "std": self.enc.std, "stage": self.cfg.stage, "frame_size": self.cfg.frame_size,
                "pixel_patch": self.cfg.pixel_patch}

    def mirror_frozen(self) -> partial:
        """A function mirroring the frozen part's outputs left-right (for cached training clips)."""
        return partial(mirror_frame_features, channels=self.channels, pixel_patch=self.cfg.pixel_patch)

    def frozen_features(self, video: torch.Tensor) -> torch.Tensor:
        """The frozen part: per-frame feature maps (B, T, C, h, w) of a clip (B, T, 3, H, W)."""
        return self.backbone(video)

    def forward_features(self, feats: torch.Tensor) -> VideoTokens:
        """The trainable part: feature maps (B, T, C, h, w) -> tokens (B, T*N, D), time-major."""
        b, t, c, h, w = feats.shape
        expected = self.channels + (self.cfg.pixel_patch or 0) ** 2
        if t != self.num_frames or h * w != self.num_space or c != expected:
            raise ValueError(f"frame features of shape {tuple(feats.shape)}: expected T={self.num_frames} frames of "
                             f"{expected} x {self.grid} x {self.grid} maps (num_frames / image_size / pixel_patch "
                             "of the model)")
        x = self.space_embed + self.time_embed  # (1, T, N, D)
        if self.in_proj is not None:
            cnn = rearrange(to_param_dtype(feats[:, :, : self.channels], self.in_norm), "b t c h w -> b t (h w) c")
            cnn = self.in_norm(cnn)  # (B, T, N, C)
            if self.cfg.temporal_difference:
                previous = torch.cat([cnn[:, :1], cnn[:, :-1]], dim=1)  # frame 0 differs from itself: zero
                cnn = torch.cat([cnn, cnn - previous], dim=-1)  # (B, T, N, 2C)
            x = x + self.in_proj(cnn)  # (B, T, N, D)
        if self.motion_proj is not None:
            x = x + self.motion_proj(self.frame_motion(feats[:, :, : self.channels]))[:, :, None]  # (B, T, 1, D)
        if self.pixel_stream is not None:
            x = x + self.pixel_stream(feats[:, :, self.channels :])  # (B, T, N, D)
        x = rearrange(x, "b t n d -> b (t n) d")
        for block in self.blocks:
            x = block(x)
        return VideoTokens(self.norm(x), has_cls=False, num_time=t, num_space=h * w, time_innermost=False)

    def frame_motion(self, cnn: torch.Tensor) -> torch.Tensor:
        """Standardised |change of each frame's mean feature| (B, T, C) from CNN maps (B, T, C, h, w)."""
        frames = to_param_dtype(cnn, self.motion_proj).mean(dim=(-2, -1))  # (B, T, C)
        if frames.shape[1] == 1:  # one frame: nothing moves
            return torch.zeros_like(frames)
        previous = torch.cat([frames[:, 1:2], frames[:, :-1]], dim=1)  # frame 0 takes frame 1's change
        change = (frames - previous).abs()  # (B, T, C)
        return self.motion_norm(change.flatten(0, 1)).view_as(change)  # (B*T, C) -> (B, T, C)

    def forward(self, video: torch.Tensor) -> VideoTokens:
        """Clip (B, T, 3, H, W) -> tokens (B, T*N, D)."""
        return self.forward_features(self.frozen_features(video))

