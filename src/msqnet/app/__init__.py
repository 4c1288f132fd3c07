"""The page: a local web page (Gradio) to try a model on a video, its labels, timeline, events and relevance maps."""
from .page import VIDEO_SUFFIXES, PageResult, analyse_video, build_app, check_address, serve

__all__ = ["PageResult", "analyse_video", "build_app", "check_address", "serve", "VIDEO_SUFFIXES"]
