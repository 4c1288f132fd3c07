"""Video data: decoding, frame sampling, clip transforms and one adapter per dataset format."""
from .records import ClipRecord, multi_hot

__all__ = ["ClipRecord", "multi_hot"]
from .decode import DecodeError, FrameIndexError, VideoInfo, probe, read_frames, segment_frame_range

__all__ += ["DecodeError", "FrameIndexError", "VideoInfo", "probe", "read_frames", "segment_frame_range"]
from .sampling import SamplingConfig, multiview_indices, sample_indices
from .transforms import TransformConfig, build_test_transform, build_train_transform
from .views import TestView, read_test_clips
from .timeline import Window, WindowClips, timeline_windows
from .dataset import ClipDataset, SkipTally, collate_clips
from .loader import ClipSampler, build_loader, seed_worker

__all__ += ["SamplingConfig", "multiview_indices", "sample_indices"]
__all__ += ["TransformConfig", "build_test_transform", "build_train_transform"]
__all__ += ["TestView", "read_test_clips", "Window", "WindowClips", "timeline_windows"]
__all__ += ["ClipDataset", "SkipTally", "collate_clips", "ClipSampler", "build_loader", "seed_worker"]
from .config import DATA_FORMATS, DataConfig
from .datasets import AnnotationError, DatasetSplit, Problem, available_splits, load_split

__all__ += ["DATA_FORMATS", "DataConfig", "AnnotationError", "DatasetSplit", "Problem", "available_splits", "load_split"]
