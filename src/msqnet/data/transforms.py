"""Clip transforms in plain torch (no torchvision): uint8 ``(T, 3, H, W)`` in, uint8 ``(T, 3, S, S)`` out.

Training augmentation is **clip-consistent**: one crop box, one flip decision and one set of colour
jitter factors are drawn per clip and applied to all T frames (the reference draws the jitter per
frame, which makes the clip flicker and destroys temporal cues). All randomness comes from the
``torch.Generator`` passed in, so a clip's augmentation is a pure function of the generator's seed.

Output stays uint8 so DataLoader workers ship 4x fewer bytes; normalisation is not done here because
each encoder applies its own mean/std inside the model. Colour jitter runs in float internally and is
rounded back.
"""
from __future__ import annotations

import math
import typing
from typing import Callable

import torch
import torch.nn.functional as F

from .config import Crops, TransformConfig

__all__ = [
    "build_train_transform",
    "build_test_transform",
    "resize_short_side",
    "center_crop",
    "three_crop",
    "multiscale_crop_box",
    "random_resized_crop_box",
    "color_jitter",
    "to_grayscale",
]

TrainTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
TestTransform = Callable[[torch.Tensor], torch.Tensor]


# --- geometry ------------------------------------------------------------------------------------


def _check_clip(clip: torch.Tensor) -> None:
    if clip.ndim != 4 or clip.shape[1] != 3:
        raise ValueError(f"expected a clip of shape (T, 3, H, W), got {tuple(clip.shape)}")


def _resize(clip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Anti-aliased bilinear resize of ``(T, 3, H, W)``; uint8 stays uint8 (torch's fast path)."""
    if clip.shape[-2:] == (height, width):
        return clip
    return F.interpolate(clip, size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def resize_short_side(clip: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize ``(T, 3, H, W)`` so that ``min(H, W) == short_side``, keeping the aspect ratio."""
    _check_clip(clip)
    h, w = clip.shape[-2:]
    if h <= w:
        return _resize(clip, short_side, max(1, round(w * short_side / h)))
    return _resize(clip, max(1, round(h * short_side / w)), short_side)


def center_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size x size`` window of ``(T, 3, H, W)`` (frames must be at least that big)."""
    h, w = clip.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot centre-crop {size}x{size} from frames of {w}x{h}")
    top, left = (h - size) // 2, (w - size) // 2
    return clip[..., top : top + size, left : left + size]


def three_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Three ``size x size`` crops spread along the long side: ``(T, 3, H, W) -> (3, T, 3, S, S)``.

    Left / centre / right for landscape frames, top / centre / bottom for portrait ones, centred
    on the short side: together they see the whole long side for multi-view testing.
    """
    _check_clip(clip)
    h, w = clip.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot take {size}x{size} crops from frames of {w}x{h}")
    crops = []
    for part in range(3):  # start, centre (as center_crop), end of the long side
        if w >= h:
            top, left = (h - size) // 2, part * (w - size) // 2
        else:
            top, left = part * (h - size) // 2, (w - size) // 2
        crops.append(clip[..., top : top + size, left : left + size])
    return torch.stack(crops)  # (3, T, 3, S, S)


def _uniform(g: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator, high: int) -> int:
    """Uniform integer in ``[0, high)``."""
    return int(torch.randint(high, (), generator=g))


def multiscale_crop_box(
    height: int, width: int, scales: tuple[float, ...], max_distort: int, g: torch.Generator
) -> tuple[int, int, int, int]:
    """TSN multi-scale crop ``(top, left, h, w)``: sides from ``scales`` x short side, corner or centre."""
    base = min(height, width)
    sizes = [int(base * s) for s in scales]
    pairs = [(ih, iw) for ih in range(len(sizes)) for iw in range(len(sizes)) if abs(ih - iw) <= max_distort]
    ih, iw = pairs[_randint(g, len(pairs))]
    crop_h, crop_w = sizes[ih], sizes[iw]
    dy, dx = height - crop_h, width - crop_w
    # Five fixed positions: the four corners and the centre.
    positions = [(0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2)]
    top, left = positions[_randint(g, len(positions))]
    return top, left, crop_h, crop_w


def random_resized_crop_box(
    height: int, width: int, area: tuple[float, float], ratio: tuple[float, float], g: torch.Generator
) -> tuple[int, int, int, int]:
    """Inception-style crop ``(top, left, h, w)`` of random area fraction and log-uniform aspect."""
    total = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = total * _uniform(g, *area)
        aspect = math.exp(_uniform(g, log_lo, log_hi))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return _randint(g, height - h + 1), _randint(g, width - w + 1), h, w
    # Fallback after ten misses: the largest centred crop within the aspect range.
    aspect = min(max(width / height, ratio[0]), ratio[1])
    w, h = (width, round(width / aspect)) if width / height < aspect else (round(height * aspect), height)
    w, h = min(w, width), min(h, height)
    return (height - h) // 2, (width - w) // 2, h, w


# --- colour --------------------------------------------------------------------------------------

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as PIL and torchvision use


def to_grayscale(clip: torch.Tensor) -> torch.Tensor:
    """Luma of float ``(T, 3, H, W)`` repeated to 3 channels."""
    r, g, b = clip.unbind(dim=1)
    gray = _GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b  # (T, H, W)
    return gray.unsqueeze(1).expand_as(clip).contiguous()


def _rotate_hue(clip: torch.Tensor, turns: float) -> torch.Tensor:
    """Rotate chroma by ``turns`` of a full circle in YIQ space (a linear stand-in for an HSV hue shift)."""
    theta = 2 * math.pi * turns
    c, s = math.cos(theta), math.sin(theta)
    to_yiq = clip.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    rot = clip.new_tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    m = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # (3, 3) acting on RGB
    return torch.einsum("ij,tjhw->tihw", m, clip)


def color_jitter(
    clip: torch.Tensor, brightness: float, contrast: float, saturation: float, hue: float, order: list[int]
) -> torch.Tensor:
    """Apply the given jitter factors to float ``(T, 3, H, W)`` in [0, 1], in ``order`` (0..3 = b, c, s, h).

    Contrast blends towards the mean luma of the whole clip (not of each frame), so every frame gets
    exactly the same colour mapping.
    """
    for op in order:
        if op == 0:
            clip = clip * brightness
        elif op == 1:
            mean = to_grayscale(clip)[:, 0].mean()
            clip = mean + contrast * (clip - mean)
        elif op == 2:
            gray = to_grayscale(clip)
            clip = gray + saturation * (clip - gray)
        elif op == 3 and hue != 0:
            clip = _rotate_hue(clip, hue)
        clip = clip.clamp(0.0, 1.0)
    return clip


def _to_uint8(clip: torch.Tensor) -> torch.Tensor:
    return (clip * 255.0).round_().clamp_(0, 255).to(torch.uint8)


# --- pipelines -----------------------------------------------------------------------------------


def build_train_transform(cfg: TransformConfig) -> TrainTransform:
    """Training transform ``(clip uint8 (T, 3, H, W), generator) -> uint8 (T, 3, S, S)``, one draw per clip."""
    b_s, c_s, s_s, h_s = cfg.color_jitter

    def transform(clip: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        _check_clip(clip)
        clip = resize_short_side(clip, cfg.resize_to)
        h, w = clip.shape[-2:]
        if cfg.train_crop == "center":
            clip = center_crop(clip, cfg.size)
        else:
            if cfg.train_crop == "multiscale":
                top, left, ch, cw = multiscale_crop_box(h, w, cfg.scales, cfg.max_distort, g)
            else:
                top, left, ch, cw = random_resized_crop_box(h, w, cfg.area, cfg.ratio, g)
            clip = _resize(clip[..., top : top + ch, left : left + cw], cfg.size, cfg.size)
        if cfg.hflip and _uniform(g) < 0.5:
            clip = clip.flip(-1)
        jitter = any(cfg.color_jitter) and _uniform(g) < cfg.color_jitter_prob
        gray = _uniform(g) < cfg.grayscale_prob
        if not (jitter or gray):
            return clip.contiguous()
        x = clip.float() / 255.0
        if jitter:
            factors = (_uniform(g, max(0.0, 1 - b_s), 1 + b_s), _uniform(g, max(0.0, 1 - c_s), 1 + c_s),
                       _uniform(g, max(0.0, 1 - s_s), 1 + s_s), _uniform(g, -h_s, h_s))
            order = torch.randperm(4, generator=g).tolist()
            x = color_jitter(x, *factors, order=order)
        if gray:
            x = to_grayscale(x)
        return _to_uint8(x)

    return transform


def build_test_transform(cfg: TransformConfig, *, num_crops: Crops = 1) -> TestTransform:
    """Test transform: short side to ``cfg.resize_to``, then a centre crop ``(T, 3, S, S)``, or three
    crops along the long side ``(3, T, 3, S, S)`` when ``num_crops`` is 3."""
    if num_crops not in typing.get_args(Crops):
        raise ValueError(f"num_crops: expected one of {list(typing.get_args(Crops))}, got {num_crops}")

    def transform(clip: torch.Tensor) -> torch.Tensor:
        clip = resize_short_side(clip, cfg.resize_to)
        if num_crops == 3:
            return three_crop(clip, cfg.size).contiguous()
        return center_crop(clip, cfg.size).contiguous()

    return transform
