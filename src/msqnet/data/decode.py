"""Frame decoding: one interface over video files (PyAV) and folders of frame images (PIL).

``read_frames(source, indices, size=...)`` returns exactly the requested frames as a uint8
``(N, 3, H, W)`` tensor and decodes no more of the video than those frames need:

* ``probe`` demuxes the stream once (packets only, no decoding: milliseconds for the shared clips,
  bounded by file reading for long ones) and
  records every frame's presentation timestamp and which frames are keyframes. Frame ``i`` is the
  ``i``-th frame in presentation order, so variable-frame-rate files and containers whose header
  frame count is missing or wrong (``tree.avi`` claims 444 frames and holds 68) are indexed
  correctly. The result is cached per process, keyed by path, size and modification time.
* ``read_frames`` visits the wanted frames in ascending order, split into runs by ``plan_decode``
  (the **seek heuristic**): when the keyframe at or before the next target lies at least
  ``SEEK_MIN_SKIP`` frames beyond the decoder's current position, seeking there skips that many
  decodes, so a new run starts with a seek; otherwise the current run keeps decoding sequentially. Dense or short clips therefore cost one sequential pass
  from the nearest keyframe, sparse samples of long videos cost one short GOP run per sample, and
  no clip ever decodes the whole video to pick 16 frames.
* ``iter_frames`` is the same decoding as a stream: it yields each wanted frame as soon as it is
  decoded, front to back, so a long video's sliding windows are built holding only the frames that
  pending windows still need (``msqnet.data.timeline``).
* Frames that are not wanted are decoded (the codec needs them) but never colour-converted; wanted
  frames are converted and resized in a single swscale pass (``VideoFrame.to_ndarray(width=,
  height=)``), and JPEG frames use PIL's DCT-domain ``draft`` downscale before the final resize.
"""
from __future__ import annotations

import bisect
import math
import os
import re
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np
import torch
from PIL import Image

__all__ = [
    "DecodeError",
    "FrameIndexError",
    "VideoInfo",
    "IMAGE_EXTENSIONS",
    "DEFAULT_FOLDER_FPS",
    "SEEK_MIN_SKIP",
    "DecodeRun",
    "plan_decode",
    "decode_plan",
    "probe",
    "read_frames",
    "iter_frames",
    "segment_frame_range",
    "resized_shape",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# A folder of frames carries no frame rate; datasets that know theirs (Charades: 24) pass ``fps=``.
DEFAULT_FOLDER_FPS = 30.0
# Seek only when it saves decoding at least this many frames: a seek flushes the decoder and
# re-reads from the container, which costs about as much as decoding a few frames.
SEEK_MIN_SKIP = 8
_CACHE_SIZE = 4096

# What a file's extension promises about its container; a mismatch means the bytes are not what
# the name says (random or corrupt data that FFmpeg happened to sniff as a raw elementary stream).
_CONTAINERS = {
    ".mp4": "mov", ".m4v": "mov", ".mov": "mov", ".3gp": "mov",
    ".avi": "avi", ".mkv": "matroska", ".webm": "matroska",
}


class DecodeError(RuntimeError):
    """A video or frame folder could not be read; the message names the file and the failure."""


class FrameIndexError(DecodeError, IndexError):
    """A requested frame index lies outside ``[0, num_frames)``."""


@dataclass(frozen=True)
class VideoInfo:
    """What a clip sampler needs to know about a video.

    Args:
        num_frames: frames actually present (counted, not the container header's claim).
        fps: the stream's frame rate; for variable-frame-rate files the average,
            ``num_frames / duration``.
        duration: seconds from the first frame's timestamp to the end of the last frame.
        width: frame width in pixels as displayed (after the rotation, before any resize).
        height: frame height in pixels as displayed.
        timestamps: presentation time (s, first frame = 0) of every frame, kept only for
            variable-frame-rate files; ``None`` means frame ``i`` is shown at ``i / fps``.
        rotation: degrees (0, 90, 180, 270, counter-clockwise) the stored frames are turned by to
            be shown upright: the display matrix phones write instead of rotating the pixels.
            Decoded frames come out upright.
    """

    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    timestamps: tuple[float, ...] | None = field(default=None, repr=False)
    rotation: int = 0


@dataclass(frozen=True)
class _VideoIndex:
    """Per-file decode plan inputs: presentation timestamps and keyframe positions."""

    info: VideoInfo
    pts: tuple[int, ...]  # stream time-base pts of frame i, ascending (presentation order)
    keyframes: tuple[int, ...]  # frame indices that are keyframes, ascending, always starts with 0
    seekable: bool  # every packet had a pts, so a decoded frame can be mapped back to its index


@dataclass(frozen=True)
class _FolderIndex:
    """A frame folder: its sorted image files."""

    info: VideoInfo
    files: tuple[Path, ...]


_cache: OrderedDict[tuple, _VideoIndex | _FolderIndex] = OrderedDict()
_cache_lock = threading.Lock()


def _natural_key(name: str) -> list:
    """Sort key so ``frame_2.jpg`` comes before ``frame_10.jpg``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


_SPECIAL_FILES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _check_exists(path: Path, expected: str = "a video file or a frame folder") -> None:
    """A video is a regular file and frames a folder: anything else (a FIFO, a device, a socket) is
    refused before it is opened, because opening or reading it can wait forever for a writer."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such video file or frame folder") from None
    for is_kind, kind in _SPECIAL_FILES:
        if is_kind(mode):
            raise DecodeError(f"{path}: is {kind}, not {expected}; copy its content to a regular file first")


def _cache_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def _cached_index(path: Path, fps: float | None) -> _VideoIndex | _FolderIndex:
    """Index of ``path``, built once per process and file version."""
    _check_exists(path)
    key = _cache_key(path) + (fps if path.is_dir() else None,)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    index = _index_folder(path, fps) if path.is_dir() else _index_video(path)
    with _cache_lock:
        _cache[key] = index
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return index


def _open(path: Path):
    """Open ``path`` with PyAV and return ``(container, video_stream)``, or raise DecodeError."""
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as e:
        raise DecodeError(
            f"{path}: not a readable video: truncated, corrupt or not a video ({e.__class__.__name__}: {_ffmpeg_msg(e)})"
        ) from None
    try:
        expected = _CONTAINERS.get(path.suffix.lower())
        if expected is not None and expected not in container.format.name.split(","):
            raise DecodeError(
                f"{path}: content is not a {path.suffix} container (FFmpeg sees "
                f"'{container.format.name}'); the file is corrupt or mislabelled"
            )
        if not container.streams.video:
            raise DecodeError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        if not stream.codec_context or stream.codec_context.width <= 0 or stream.codec_context.height <= 0:
            raise DecodeError(f"{path}: video stream has no valid frame size (corrupt header?)")
    except BaseException:
        container.close()
        raise
    return container, stream


def _ffmpeg_msg(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e)


def _display_rotation(path: Path) -> int:
    """Counter-clockwise degrees (a multiple of 90) the display matrix turns the stored frames by.

    PyAV exposes the matrix only on decoded frames, so the first frame is decoded once.
    """
    container, stream = _open(path)
    try:
        frame = next(container.decode(stream), None)
    except av.FFmpegError as e:
        raise DecodeError(f"{path}: decoding failed before its first frame ({_ffmpeg_msg(e)})") from None
    finally:
        container.close()
    degrees = round(frame.rotation) if frame is not None else 0
    if degrees % 90:
        raise DecodeError(f"{path}: display matrix rotates frames by {degrees} degrees; expected a multiple of 90")
    return degrees % 360


def _index_video(path: Path) -> _VideoIndex:
    """Demux (no decode) every packet of the first video stream to count and time its frames."""
    container, stream = _open(path)
    try:
        pts: list[int] = []
        key_pts: list[int] = []
        missing_pts = 0
        discarded = 0  # samples outside the edit list, which the header's frame count still counts
        try:
            for packet in container.demux(stream):
                # Empty packets are the demuxer's end-of-stream flush marker or AVI "dropped frame"
                # placeholders of variable-rate captures; neither produces a picture. Packets flagged
                # discard lie outside an MP4/MOV edit list (``ffmpeg -ss 2.5 -c copy`` keeps the GOP
                # before the cut point): the decoder needs them but never outputs their pictures, so
                # frame 0 is the first frame of the presented timeline, as every player shows it.
                if packet.size == 0:
                    continue
                if packet.is_discard:
                    discarded += 1
                    continue
                if packet.pts is None:
                    missing_pts += 1
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    key_pts.append(packet.pts)
        except av.FFmpegError as e:
            # A truncated file ends early: keep the complete packets read so far.
            if not pts:
                raise DecodeError(f"{path}: demuxing failed before any frame ({_ffmpeg_msg(e)})") from None
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        time_base = stream.time_base
        # What the header promises (None in e.g. most mkv/webm), to spot truncation. A truncated AVI
        # loses its index, and the demuxer then rescans the duration, but the stream header's frame
        # count (which also counts a variable-rate capture's dropped-frame slots) survives.
        claims = []
        if stream.duration and time_base:
            claims.append(float(stream.duration * time_base))
        if stream.frames - discarded > 0 and rate:
            claims.append((stream.frames - discarded) / float(rate))
        declared = max(claims) if claims else None
    finally:
        container.close()

    rotation = _display_rotation(path)
    if rotation in (90, 270):
        width, height = height, width  # shown upright: the stored frame turned a quarter
    seekable = missing_pts == 0
    if missing_pts and pts:
        # Mixed pts: cannot map decoded frames back to indices by timestamp; count sequentially.
        seekable = False
    n = len(pts) + missing_pts
    if n == 0:
        raise DecodeError(f"{path}: video stream holds zero frames")
    if not seekable:
        nominal = float(rate) if rate else DEFAULT_FOLDER_FPS
        info = VideoInfo(n, nominal, n / nominal, width, height, rotation=rotation)
        return _VideoIndex(info, tuple(range(n)), (0,), seekable=False)

    pts.sort()  # decode order -> presentation order (B-frames)
    if len(set(pts)) != len(pts):
        raise DecodeError(f"{path}: duplicate frame timestamps in the stream; cannot index frames")
    tb = float(time_base)
    start = pts[0]
    deltas = np.diff(np.asarray(pts, dtype=np.int64))
    nominal = float(rate) if rate else None
    # Constant frame rate when every step is the same (+-1 tick of rounding); then i / fps is exact.
    constant = len(deltas) == 0 or int(deltas.max()) - int(deltas.min()) <= 1
    last_step = float(np.median(deltas)) if len(deltas) else (1.0 / (nominal or DEFAULT_FOLDER_FPS)) / tb
    end = (pts[-1] - start + last_step) * tb  # seconds to the end of the last frame found
    if declared is not None and declared - end > max(0.5, 0.05 * declared):
        raise DecodeError(
            f"{path}: truncated or corrupt: the header declares {declared:.2f} s of video but the frames "
            f"found end at {end:.2f} s ({n} frames readable)"
        )
    if constant and nominal:
        fps = nominal
        duration = n / fps
        timestamps = None
    else:
        # Variable rate: the header's duration (when it covers the frames) also counts the last
        # frame's true display time, which the median step only estimates.
        duration = declared if declared is not None and declared >= (pts[-1] - start) * tb else end
        fps = n / duration
        timestamps = tuple((p - start) * tb for p in pts)
    info = VideoInfo(n, fps, duration, width, height, timestamps, rotation)
    pos = {p: i for i, p in enumerate(pts)}
    keyframes = sorted({0} | {pos[p] for p in key_pts if p in pos})
    return _VideoIndex(info, tuple(pts), tuple(keyframes), seekable=True)


def _index_folder(path: Path, fps: float | None) -> _FolderIndex:
    """List the image files of a frame folder in natural order and read the first one's size."""
    images = []
    with os.scandir(path) as entries:
        for entry in entries:
            if os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS and not entry.name.startswith("."):
                if not entry.is_file():  # a FIFO named frame.jpg would block the image reader
                    _check_exists(Path(entry.path), "an image file")
                images.append(Path(entry.path))
    files = sorted(images, key=lambda p: _natural_key(p.name))
    if not files:
        raise DecodeError(f"{path}: frame folder holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    try:
        with Image.open(files[0]) as im:
            width, height = im.size
    except Exception as e:
        raise DecodeError(f"{files[0]}: not a readable image ({e})") from None
    rate = float(fps) if fps else DEFAULT_FOLDER_FPS
    info = VideoInfo(len(files), rate, len(files) / rate, width, height)
    return _FolderIndex(info, tuple(files))


def probe(source: str | os.PathLike, *, fps: float | None = None) -> VideoInfo:
    """Frame count, frame rate, duration and size of a video file or frame folder.

    ``fps`` sets the frame rate of a frame folder (which has none of its own; default
    ``DEFAULT_FOLDER_FPS``); it is ignored for video files.
    """
    return _cached_index(Path(source), fps).info


def resized_shape(width: int, height: int, size: int | None) -> tuple[int, int]:
    """``(width, height)`` after scaling the short side to ``size`` (aspect kept); identity for None."""
    if size is None:
        return width, height
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if width <= height:
        return size, max(1, round(height * size / width))
    return max(1, round(width * size / height)), size


def _check_indices(path: Path, indices: Sequence[int], num_frames: int) -> list[int]:
    idx = [int(i) for i in indices]
    if not idx:
        raise ValueError(f"{path}: no frame indices requested")
    bad = [i for i in idx if i < 0 or i >= num_frames]
    if bad:
        raise FrameIndexError(
            f"{path}: frame index {bad[0]} out of range; the video has {num_frames} frames (0..{num_frames - 1})"
        )
    return idx


def read_frames(
    source: str | os.PathLike,
    indices: Sequence[int],
    *,
    size: int | None = None,
    fps: float | None = None,
) -> torch.Tensor:
    """Decode the frames at ``indices`` (any order, repeats allowed) as uint8 ``(N, 3, H, W)``.

    ``size`` resizes during decode so the short side is ``size`` (aspect kept); ``None`` keeps the
    native size. ``fps`` only matters for frame folders (see ``probe``). Raises FileNotFoundError for
    a missing path, FrameIndexError for an index outside the video, DecodeError for anything
    unreadable; every message names the file.
    """
    frames = dict(iter_frames(source, indices, size=size, fps=fps))
    # Gather in the caller's order (repeats allowed): N x (3, H, W) -> (N, 3, H, W)
    return torch.stack([frames[int(i)] for i in indices])


def iter_frames(
    source: str | os.PathLike,
    indices: Sequence[int],
    *,
    size: int | None = None,
    fps: float | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Decode the distinct frames of ``indices`` front to back, yielding ``(index, uint8 (3, H, W))`` in
    ascending order as each is decoded, so a caller can hold only the frames it still needs.

    Same decoding (runs and seeks of ``plan_decode``), sizes and errors as ``read_frames``; the
    index checks happen before the first frame is yielded.
    """
    path = Path(source)
    index = _cached_index(path, fps)
    wanted = sorted(set(_check_indices(path, indices, index.info.num_frames)))
    width, height = resized_shape(index.info.width, index.info.height, size)
    if isinstance(index, _FolderIndex):
        frames = _iter_folder(index, wanted, width, height)
    else:
        frames = _iter_video(path, index, wanted, width, height)
    return ((i, torch.from_numpy(rgb).permute(2, 0, 1)) for i, rgb in frames)  # (H, W, 3) -> (3, H, W)


# Grayscale image modes wider than 8 bits (16-bit PNGs open as one of these). PIL's ``convert("RGB")``
# clips their values at 255 instead of scaling them, so every frame would come out nearly white.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _rgb8(im) -> "Image.Image":
    """An image as 8-bit RGB, 16-bit grayscale scaled to 8 bits (0..65535 -> 0..255), not clipped."""
    if im.mode not in _WIDE_GRAY_MODES:
        return im.convert("RGB")
    gray = np.asarray(im).astype(np.float32) / 257.0  # (H, W); 65535 / 257 = 255
    return Image.fromarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8), "L").convert("RGB")


def _iter_folder(index: _FolderIndex, wanted: list[int], width: int, height: int) -> Iterator[tuple[int, np.ndarray]]:
    """Read the wanted image files, downscaling JPEGs in the DCT domain before the exact resize."""
    first = (index.info.width, index.info.height)
    for i in wanted:
        file = index.files[i]
        try:
            with Image.open(file) as im:
                if im.size != first:  # resizing it to the first frame's shape would stretch it silently
                    raise DecodeError(
                        f"{file}: frame size {im.size[0]}x{im.size[1]} differs from the folder's first frame "
                        f"{index.files[0].name} ({first[0]}x{first[1]}); expected frames of one size"
                    )
                if (width, height) != first:
                    im.draft("RGB", (width, height))  # JPEG: decode at 1/2, 1/4, 1/8 scale when enough
                rgb = _rgb8(im)
                if rgb.size != (width, height):
                    rgb = rgb.resize((width, height), Image.BILINEAR)
                frame = np.array(rgb)  # a writable copy (torch.from_numpy needs one)
        except DecodeError:
            raise
        except Exception as e:
            raise DecodeError(f"{file}: not a readable image ({e})") from None
        yield i, frame


@dataclass(frozen=True)
class DecodeRun:
    """One stretch of sequential decoding: from frame ``start`` (a keyframe, or 0) through ``stop``."""

    start: int
    stop: int  # inclusive: the last wanted frame of the run
    targets: tuple[int, ...]

    @property
    def num_decoded(self) -> int:
        """Frames the codec decodes for this run."""
        return self.stop - self.start + 1


def plan_decode(keyframes: Sequence[int], wanted: Sequence[int], *, min_skip: int = SEEK_MIN_SKIP) -> list[DecodeRun]:
    """Split ascending ``wanted`` frames into sequential runs, starting a new (seeking) run only when
    the target's keyframe lies at least ``min_skip`` frames past where the previous run stopped."""
    runs: list[DecodeRun] = []
    for t in sorted(set(wanted)):
        key = keyframes[bisect.bisect_right(keyframes, t) - 1] if keyframes else 0
        next_pos = runs[-1].stop + 1 if runs else 0  # frame the decoder returns next without seeking
        if key - next_pos >= min_skip:
            runs.append(DecodeRun(key, t, (t,)))
        elif runs:
            runs[-1] = DecodeRun(runs[-1].start, t, runs[-1].targets + (t,))
        else:
            runs.append(DecodeRun(0, t, (t,)))
    return runs


def decode_plan(source: str | os.PathLike, indices: Sequence[int]) -> list[DecodeRun]:
    """The runs ``read_frames(source, indices)`` would decode (for benchmarks and diagnostics)."""
    path = Path(source)
    index = _cached_index(path, None)
    wanted = _check_indices(path, indices, index.info.num_frames)
    if isinstance(index, _FolderIndex):
        return [DecodeRun(i, i, (i,)) for i in sorted(set(wanted))]  # every image is its own "keyframe"
    return plan_decode(index.keyframes if index.seekable else (0,), wanted)


def _iter_video(
    path: Path, index: _VideoIndex, wanted: list[int], width: int, height: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode the wanted frames (ascending) run by run, following ``plan_decode``, yielding each once."""
    resize = (width, height) != (index.info.width, index.info.height)
    quarter_turns = index.info.rotation // 90
    if quarter_turns % 2:
        width, height = height, width  # the stored frame's orientation, turned upright after the resize
    keyframes = index.keyframes if index.seekable else (0,)  # without timestamps: one pass from the start
    runs = plan_decode(keyframes, wanted)
    to_index = {p: i for i, p in enumerate(index.pts)} if index.seekable else None
    last = -1  # last frame index the decoder returned
    # One reformatter for the whole video: it keeps its swscale context, which a frame's own
    # to_ndarray(format=...) would rebuild for every frame (16x the cost on small frames).
    reformatter = av.video.reformatter.VideoReformatter()
    container, stream = _open(path)
    try:
        # Slice threads help large frames without delaying output the way frame threads do.
        stream.thread_type = "SLICE"
        frames = container.decode(stream)
        try:
            for run in runs:
                if run.start > 0:
                    container.seek(index.pts[run.start], stream=stream, backward=True, any_frame=False)
                    frames = container.decode(stream)
                targets = set(run.targets)
                after_seek = run.start > 0
                while last < run.stop:
                    frame = next(frames, None)
                    if frame is None:
                        where = f"after frame {last}" if last >= 0 else "before its first frame"
                        raise DecodeError(
                            f"{path}: stream ended {where} while frame {run.stop} was wanted; "
                            f"the file is truncated or corrupt (its index lists {index.info.num_frames} frames)"
                        )
                    if to_index is None:
                        i = last + 1
                    else:
                        i = to_index.get(frame.pts, -1)
                        if i < 0:
                            raise DecodeError(f"{path}: decoder returned a frame with unknown timestamp {frame.pts}")
                        if after_seek and i > run.start:
                            raise DecodeError(
                                f"{path}: seeking to keyframe {run.start} landed at frame {i}; the file's index is broken"
                            )
                    after_seek = False
                    last = i
                    if i in targets:
                        targets.discard(i)
                        yield i, _to_rgb(reformatter, frame, width, height, resize, quarter_turns)
                if targets:
                    # The rule: every frame the index lists is decoded, or the file is an error of its
                    # own (a DecodeError, which callers skip per file), never a frame silently missing.
                    raise DecodeError(
                        f"{path}: the decoder never returned frame {min(targets)} of the {index.info.num_frames} "
                        "its index lists (an edit list or timestamps msqnet cannot follow); re-encode the file, "
                        "e.g. ffmpeg -i IN -c:v libx264 OUT.mp4"
                    )
        except av.FFmpegError as e:
            where = f"after frame {last}" if last >= 0 else "before its first frame"
            raise DecodeError(f"{path}: decoding failed {where} ({_ffmpeg_msg(e)})") from None
    finally:
        container.close()


def _to_rgb(reformatter, frame, width: int, height: int, resize: bool, quarter_turns: int = 0) -> np.ndarray:
    """Colour-convert (and resize, in the same swscale pass of ``reformatter``) one decoded frame to
    ``(H, W, 3)`` uint8, then turn it ``quarter_turns`` times counter-clockwise (its display rotation);
    ``width``/``height`` are as stored."""
    if resize:
        rgb = reformatter.reformat(frame, width=width, height=height, format="rgb24",
                                   interpolation="BILINEAR").to_ndarray()
    else:
        rgb = reformatter.reformat(frame, format="rgb24").to_ndarray()
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


def segment_frame_range(info: VideoInfo, start: float | None, end: float | None) -> tuple[int, int]:
    """Frames ``[first, last_exclusive)`` whose timestamps lie in the segment ``[start, end)`` seconds.

    ``None`` means the start / end of the video. A segment shorter than one frame still gets the
    frame at (or just after) its start; an end past the video is clamped. A segment that starts after
    the last frame, or ends before it starts, raises ValueError (the caller adds the file name).
    """
    n = info.num_frames
    s = 0.0 if start is None else float(start)
    e = info.duration if end is None else float(end)
    if e < s:
        raise ValueError(f"segment end {e:.3f} s is before its start {s:.3f} s")
    eps = 1e-6
    if info.timestamps is not None:
        first = bisect.bisect_left(info.timestamps, s - eps)
        last = bisect.bisect_left(info.timestamps, e - eps)
    else:
        first = max(0, math.ceil(s * info.fps - eps))
        last = max(0, math.ceil(e * info.fps - eps))
    if first >= n:
        raise ValueError(
            f"segment [{s:.3f}, {e:.3f}] s starts after the last frame (video is {info.duration:.3f} s, {n} frames)"
        )
    last = min(max(last, first + 1), n)
    return first, last
