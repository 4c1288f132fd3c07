"""Video data: decoding, frame sampling, clip transforms and one adapter per dataset format."""
from .records import ClipRecord

__all__ = ["ClipRecord"]
from .decode import DecodeError, FrameIndexError, VideoInfo, probe, read_frames, segment_frame_range

__all__ += ["DecodeError", "FrameIndexError", "VideoInfo", "probe", "read_frames", "segment_frame_range"]
