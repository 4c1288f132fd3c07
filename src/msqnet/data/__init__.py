"""Video data: decoding, frame sampling, clip transforms, loading, and one adapter per dataset format."""
from .config import DATA_FORMATS, DataConfig, SamplingConfig, TransformConfig
from .dataset import ClipDataset, SkipTally, collate_clips
from .datasets import AnnotationError, DatasetSplit, Problem, available_splits, load_split
from .decode import DecodeError, FrameIndexError, VideoInfo, probe, read_frames, segment_frame_range
from .loader import ClipSampler, build_loader, seed_worker
from .records import ClipRecord, multi_hot
from .sampling import multiview_indices, sample_indices
from .timeline import Window, WindowClips, timeline_windows
from .transforms import build_test_transform, build_train_transform
from .views import TestView, read_test_clips

__all__ = [
    "DATA_FORMATS", "DataConfig", "SamplingConfig", "TransformConfig",
    "ClipDataset", "SkipTally", "collate_clips",
    "AnnotationError", "DatasetSplit", "Problem", "available_splits", "load_split",
    "DecodeError", "FrameIndexError", "VideoInfo", "probe", "read_frames", "segment_frame_range",
    "ClipSampler", "build_loader", "seed_worker",
    "ClipRecord", "multi_hot",
    "multiview_indices", "sample_indices",
    "Window", "WindowClips", "timeline_windows",
    "build_test_transform", "build_train_transform",
    "TestView", "read_test_clips",
]
