"""Rasterise a :class:`ClipSpec` into frames with PIL, deterministically.

Each frame is drawn at ``supersample`` times the output size and box-filtered down, which
anti-aliases edges and lets small motions (a shaking body, a wave) move by sub-pixel amounts.
Polygon vertices are rounded to the supersampled pixel grid before drawing, so a last-bit difference
in a platform's sin/cos changes a pixel only in the vanishingly rare case that it lands exactly on a
rounding boundary; with the same numpy, Pillow and PyAV versions the frames are identical.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from .actors import MORPHOLOGIES, Pose, actor_polygons
from .background import BackgroundPainter
from .scene import ActorSpec, ClipSpec, ground_y, screen_scale

__all__ = ["RenderedClip", "render_clip", "actor_outline"]

_MIN_FACING = 0.12  # a body seen exactly edge-on still shows as a sliver


@dataclass
class RenderedClip:
    """Frames of a clip and where each actor was drawn.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        boxes: (A, T, 4) actor bounding boxes ``x0, y0, x1, y1`` as fractions of the frame.
    """

    frames: np.ndarray
    boxes: np.ndarray


def _pose_at(actor: ActorSpec, t: int) -> Pose:
    tr = actor.track
    return Pose(
        gait_phase=float(tr.gait_phase[t]),
        gait_amp=float(tr.gait_amp[t]),
        limb=float(tr.limb[t]),
        swing=float(tr.swing[t]),
        head=float(tr.head[t]),
        tuck=float(tr.tuck[t]),
        limp=float(tr.limp[t]),
        crouch=float(tr.crouch[t]),
    )


def actor_outline(actor: ActorSpec, t: int, horizon: float) -> list[tuple[tuple[int, int, int], np.ndarray]]:
    """Polygons of ``actor`` at frame ``t`` in frame coordinates (fractions of the frame size).

    Body-unit polygons are mirrored/squeezed by the facing (a turn about the vertical axis),
    rotated about the body centre, set down on the ground (their lowest point on it), lifted by a
    jump, then scaled and moved to the actor's ground point.
    """
    morph = MORPHOLOGIES[actor.morphology]
    tr = actor.track
    polys = actor_polygons(morph, actor.look, _pose_at(actor, t))
    facing = float(tr.facing[t])
    if abs(facing) < _MIN_FACING:
        facing = math.copysign(_MIN_FACING, facing if facing != 0 else tr.direction)
    # When turned past side-on the far side faces the camera: draw the layers in reverse.
    if facing * tr.direction < 0:
        polys = sorted(polys, key=lambda p: -p[0])
    sizes = [len(p) for _, _, p in polys]
    pts = np.concatenate([p for _, _, p in polys])  # (N, 2) body units, y up
    pts[:, 0] *= facing
    rad = math.radians(float(tr.angle[t]))
    c, s = math.cos(rad), math.sin(rad)
    px, py = pts[:, 0], pts[:, 1] - morph.pivot
    pts = np.stack([c * px - s * py, s * px + c * py + morph.pivot], axis=1)
    pts[:, 1] += float(tr.lift[t]) - pts[:, 1].min()
    k = float(screen_scale(tr.depth[t : t + 1], actor.look)[0]) / morph.extent
    y0 = float(ground_y(tr.depth[t : t + 1], horizon)[0])
    screen = np.stack([float(tr.x[t]) + k * pts[:, 0], y0 - k * pts[:, 1]], axis=1)
    out, start = [], 0
    for (_, colour, _), n in zip(polys, sizes):
        out.append((colour, screen[start : start + n]))
        start += n
    return out


def render_clip(spec: ClipSpec, size: int, supersample: int = 2) -> RenderedClip:
    """Draw every frame of ``spec`` at ``size`` x ``size`` pixels."""
    big = size * supersample
    painter = BackgroundPainter(spec.background, big, big)
    frames = np.empty((spec.frames, size, size, 3), dtype=np.uint8)
    boxes = np.zeros((len(spec.actors), spec.frames, 4), dtype=np.float64)
    horizon = spec.background.horizon
    for t in range(spec.frames):
        u = t / max(1, spec.frames - 1)
        img = painter.frame(u)
        draw = ImageDraw.Draw(img)
        # Farther actors (higher ground point, i.e. smaller depth) are drawn first.
        order = sorted(range(len(spec.actors)), key=lambda i: (spec.actors[i].track.depth[t], i))
        for i in order:
            polys = actor_outline(spec.actors[i], t, horizon)
            allpts = np.concatenate([p for _, p in polys])
            boxes[i, t] = [allpts[:, 0].min(), allpts[:, 1].min(), allpts[:, 0].max(), allpts[:, 1].max()]
            for colour, p in polys:
                xy = np.rint(p * big).astype(np.int64)
                draw.polygon([tuple(v) for v in xy.tolist()], fill=colour)
        frames[t] = np.asarray(img.reduce(supersample) if supersample > 1 else img)
    return RenderedClip(frames=frames, boxes=boxes)
