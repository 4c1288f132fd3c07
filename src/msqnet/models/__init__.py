"""MSQNet and its parts: video encoders, label/visual embedders, query fusion, decoder, heads."""
from .config import (
    DecoderConfig,
    LabelEmbedderConfig,
    ModelConfig,
    VideoEncoderConfig,
    VisualEmbedderConfig,
    get_model_config,
)
from ..presets import list_presets
from .factory import create_model
from .msqnet import MSQNet, MSQNetOutput

__all__ = [
    "DecoderConfig",
    "LabelEmbedderConfig",
    "ModelConfig",
    "VideoEncoderConfig",
    "VisualEmbedderConfig",
    "MSQNet",
    "MSQNetOutput",
    "create_model",
    "get_model_config",
    "list_presets",
]
