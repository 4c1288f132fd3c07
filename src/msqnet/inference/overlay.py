"""Pictures of explanations: relevance maps over the frames, a contact sheet per label, an overlaid MP4.

``overlay_frames(explanation, label)`` gives the overlaid frames; ``label_overlay(model, video, label, folder)``
is the page's hook (``msqnet app``: explain the clicked label, get its contact sheet and MP4);
``contact_sheet`` and ``write_overlay_video`` are what ``msqnet explain`` writes.
"""
from __future__ import annotations

import io
import math
import os
import re

import numpy as np
from PIL import Image, ImageDraw

from ..synth.video import write_mp4
from ..utils import atomic_write_bytes
from .explain import Explanation, LabelExplanation, explain

__all__ = ["colorize", "overlay_frames", "contact_sheet", "write_overlay_video", "label_overlay", "label_slug"]

_MIN_SIDE = 160  # frames are shown at least this many pixels wide


def label_slug(label: str) -> str:
    """A file-name-safe form of a class name (``"falling down"`` -> ``falling_down``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_") or "label"


def _lut() -> np.ndarray:
    """(256, 3) uint8 colours of matplotlib's ``inferno`` map (dark: no relevance, yellow: the most)."""
    from matplotlib import colormaps  # matplotlib: 0.9 s of CPU to import, paid only where a map is drawn

    return (colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def colorize(heat: np.ndarray) -> np.ndarray:
    """Relevance (..., H, W) in [0, 1] -> (..., H, W, 3) uint8 colours."""
    return _lut()[np.clip(np.nan_to_num(heat) * 255, 0, 255).astype(np.uint8)]


def _scale(side: int) -> int:
    return max(1, math.ceil(_MIN_SIDE / side))


def overlay_frames(explanation: Explanation, label: str, *, alpha: float = 0.55) -> list[np.ndarray]:
    """The clip's frames with ``label``'s map blended over them, enlarged for viewing: T x (H', W', 3) uint8."""
    item = explanation[label]
    frames = explanation.frames.astype(np.float32)  # (T, S, S, 3)
    weight = alpha * item.spatial[..., None]  # (T, S, S, 1): strong relevance shows the colour, weak the frame
    blend = (1 - weight) * frames + weight * colorize(item.spatial).astype(np.float32)
    k = _scale(frames.shape[1])
    return [np.asarray(Image.fromarray(f.round().astype(np.uint8)).resize((f.shape[1] * k, f.shape[0] * k),
                                                                          Image.BILINEAR)) for f in blend]


def _strip(item: LabelExplanation, width: int, cell: int, height: int = 36) -> Image.Image:
    """The temporal relevance as bars under the frames, one per frame, the peak frame in yellow."""
    img = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(img)
    top = float(item.temporal.max()) or 1.0
    peak = int(np.argmax(item.temporal))
    for t, value in enumerate(item.temporal):
        h = round((height - 6) * float(value) / top)
        colour = (250, 210, 60) if t == peak else (120, 160, 220)
        draw.rectangle([t * cell + 6, height - 3 - h, (t + 1) * cell - 6, height - 3], fill=colour)
    return img


def contact_sheet(explanation: Explanation, label: str) -> bytes:
    """PNG of one label: a title line, the T frames with the map overlaid, and the temporal relevance strip."""
    item = explanation[label]
    tiles = overlay_frames(explanation, label)
    cell = tiles[0].shape[1]
    width = cell * len(tiles)
    title_h = 22
    sheet = Image.new("RGB", (width, title_h + tiles[0].shape[0] + 36), (24, 24, 24))
    span = "" if explanation.start is None else f"  {explanation.start:.2f}-{explanation.end:.2f} s"
    ImageDraw.Draw(sheet).text((6, 5), f"{label}  p={item.probability:.2f}  ({explanation.method}){span}",
                               fill=(235, 235, 235))
    for t, tile in enumerate(tiles):
        sheet.paste(Image.fromarray(tile), (t * cell, title_h))
        if explanation.frame_indices is not None:
            ImageDraw.Draw(sheet).text((t * cell + 4, title_h + 3), f"#{explanation.frame_indices[t]}",
                                       fill=(255, 255, 255))
    sheet.paste(_strip(item, width, cell), (0, title_h + tiles[0].shape[0]))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_overlay_video(path: str | os.PathLike, explanation: Explanation, label: str) -> None:
    """An H.264 MP4 of the overlaid frames, played over the clip's span (written to a temp name, then renamed)."""
    tiles = overlay_frames(explanation, label)
    duration = (explanation.end - explanation.start) if explanation.start is not None else 0.0
    fps = max(1, round(len(tiles) / duration)) if duration > 0 else 4
    h, w = (s - s % 2 for s in tiles[0].shape[:2])  # yuv420p needs even sides
    write_mp4(path, np.stack([tile[:h, :w] for tile in tiles]), fps, crf=18)  # (T, h, w, 3)


def label_overlay(model, video: str | os.PathLike, label: str, folder: str | os.PathLike, *,
                  method: str = "gradcam") -> tuple[str, str]:
    """Explain ``label`` on a video's test clip and write its contact sheet and overlaid MP4 into ``folder``:
    ``(png path, mp4 path)``, for a viewer (the page) to show."""
    explanation = explain(model, video, [label], method=method)
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    stem = label_slug(label)
    png, mp4 = os.path.join(folder, f"{stem}.png"), os.path.join(folder, f"{stem}.mp4")
    atomic_write_bytes(png, contact_sheet(explanation, label))
    write_overlay_video(mp4, explanation, label)
    return png, mp4
