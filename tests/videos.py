"""Real video files written with PyAV for tests: variable frame rate, long plain clips, one action in a still video."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

# One colour per second of the variable-rate clip, and that second's frame rate.
VFR_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
VFR_RATES = [30, 5, 30, 30]


def write_video(path: Path, frames: Iterable[tuple[float, np.ndarray]], size: tuple[int, int]) -> Path:
    """Encode ``(time in seconds, (H, W, 3) uint8 frame)`` pairs (ascending times) as H.264 mp4, millisecond pts."""
    w, h = size
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.time_base = Fraction(1, 1000)
        stream.options = {"preset": "ultrafast", "threads": "1"}
        for t, image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_vfr_video(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    """A 4-second variable-frame-rate clip: second k is one solid colour ``VFR_COLOURS[k]`` at ``VFR_RATES[k]`` fps."""
    w, h = size
    frames = [(second + k / rate, np.full((h, w, 3), colour, dtype=np.uint8))
              for second, (colour, rate) in enumerate(zip(VFR_COLOURS, VFR_RATES)) for k in range(rate)]
    return write_video(path, frames, size)


def write_moving_video(path: Path, seconds: float, fps: int = 25, size: tuple[int, int] = (320, 240)) -> Path:
    """A constant-rate clip of a bright square moving over a gradient (cheap to encode at any length)."""
    w, h = size
    n = round(seconds * fps)
    base = np.broadcast_to(np.linspace(0, 200, w, dtype=np.uint8)[None, :, None], (h, w, 3))

    def frame(i: int) -> tuple[float, np.ndarray]:
        image = base.copy()
        x = (i * 4) % (w - 32)
        image[h // 2 - 16 : h // 2 + 16, x : x + 32] = 255
        return i / fps, image

    return write_video(path, (frame(i) for i in range(n)), size)


def write_indexed_video(path: Path, frames: int = 100, fps: int = 25, gop: int = 25,
                        size: tuple[int, int] = (64, 48)) -> Path:
    """A constant-rate H.264 mp4 whose frame ``i`` is solid grey ``2 * i`` (its index readable from any pixel),
    with a keyframe every ``gop`` frames."""
    w, h = size
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "threads": "1", "g": str(gop), "keyint_min": str(gop),
                          "sc_threshold": "0"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), (2 * i) % 256, dtype=np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_cut_video(source: Path, path: Path, start: float) -> Path:
    """What ``ffmpeg -ss START -i SOURCE -c copy PATH`` writes: the packets from the keyframe at or before
    ``start`` on, copied and shifted so ``start`` is time 0; the mp4 muxer then writes an edit list that
    hides the frames before ``start`` (they are kept only for the decoder)."""
    with av.open(str(source)) as src, av.open(str(path), "w", format="mp4") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        packets = [p for p in src.demux(stream) if p.size]  # decode order
        shift = round(start / stream.time_base)
        first = max(k for k, p in enumerate(packets) if p.is_keyframe and p.pts <= shift)
        for packet in packets[first:]:
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = out
            dst.mux(packet)
    return path


# The still video with one action: seconds [start, end) of ACTION_SPAN hold a yellow square moving
# right; every other frame is the same grey.
ACTION_SPAN = (8.0, 10.0)


def write_one_action_video(path: Path, seconds: float = 20.0, fps: int = 10,
                           size: tuple[int, int] = (64, 48)) -> Path:
    """A still grey video of ``seconds`` at ``fps`` whose only motion is in ``ACTION_SPAN``."""
    w, h = size

    def frame(i: int) -> tuple[float, np.ndarray]:
        t = i / fps
        image = np.full((h, w, 3), 90, dtype=np.uint8)
        if ACTION_SPAN[0] <= t < ACTION_SPAN[1]:
            x = int((t - ACTION_SPAN[0]) * 20)
            image[h // 4 : h // 4 + h // 2, x : x + w // 3] = (255, 220, 40)
        return t, image

    return write_video(path, (frame(i) for i in range(round(seconds * fps))), size)
