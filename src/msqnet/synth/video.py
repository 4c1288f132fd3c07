"""Write rendered clips as H.264 mp4 (through PyAV) or as PNG frame folders, atomically.

Reproducibility: the RGB -> YUV 4:2:0 conversion is done here in integer arithmetic (BT.601,
limited range, the convention decoders assume), and x264 runs single-threaded with fixed options.
With the default ``crf=0`` the encoding is lossless, so the decoded YUV planes are exactly the ones
computed here, whatever x264 build wrote the file (H.264 decoding is bit-exact by specification).
"""
from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

__all__ = ["rgb_to_yuv420", "write_mp4", "write_frame_folder", "read_video"]

X264_PRESET = "veryfast"


def rgb_to_yuv420(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H * 3 / 2, W) uint8 I420 planes (Y, then U, then V), BT.601 limited range."""
    h, w, _ = frame.shape
    r, g, b = (frame[..., i].astype(np.int32) for i in range(3))
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128
    v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128

    def half(c: np.ndarray) -> np.ndarray:  # mean of each 2x2 block, rounded: (H/2, W/2)
        return (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2] + 2) >> 2

    planes = [y.reshape(-1), half(u).reshape(-1), half(v).reshape(-1)]
    return np.concatenate(planes).astype(np.uint8).reshape(h * 3 // 2, w)


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int, crf: int = 0) -> None:
    """Encode (T, H, W, 3) uint8 frames as H.264 yuv420p mp4, via a temp file then rename.

    ``crf=0`` is lossless; larger values trade exactness for smaller files (18 is visually
    lossless). H and W must be even (4:2:0 chroma).
    """
    path = Path(path)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"{path}: frame size {w}x{h} must be even for H.264 4:2:0")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            ctx = stream.codec_context
            ctx.thread_count = 1  # multi-threaded x264 is not deterministic
            ctx.colorspace, ctx.color_range = 6, 1  # BT.601 (SMPTE 170M), limited range: matches rgb_to_yuv420
            options = {"preset": X264_PRESET, "threads": "1"}
            options.update({"qp": "0"} if crf == 0 else {"crf": str(crf)})
            stream.options = options
            for i in range(t):
                frame = av.VideoFrame.from_ndarray(rgb_to_yuv420(frames[i]), format="yuv420p")
                frame.colorspace, frame.color_range = 6, 1
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_frame_folder(path: str | os.PathLike, frames: np.ndarray) -> None:
    """Write (T, H, W, 3) frames as ``path/000000.png ...``, via a temp folder then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(tmp / f"{i:06d}.png", compress_level=1)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode an mp4 (through PyAV) or a PNG frame folder into (T, H, W, 3) uint8 RGB."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.png"))
        if not files:
            raise FileNotFoundError(f"{path}: no .png frames in folder")
        return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video not found")
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
