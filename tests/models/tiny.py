"""Tiny real model configs for tests (random-init HF encoders, the real packaged MiniLM/EfficientNet)."""
from __future__ import annotations

from msqnet.config_loader import from_dict
from msqnet.models import ModelConfig

TINY_TSF = dict(patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
TINY_MAE = dict(patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                tubelet_size=2)
TINY_CLIP_VISION = dict(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=48)
# Frozen EfficientNet-Lite0 stages 1-3 (40 channels, 4 x 4 maps at 32 px) + one 16-wide block.
TINY_FRAMES = dict(stage=3, hidden_size=16, num_layers=1, num_heads=2)
LITE_STATS = dict(mean=[127 / 255] * 3, std=[128 / 255] * 3)
TINY_DECODER = dict(d_model=16, num_heads=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32)


def tiny_config(family: str = "timesformer", **fields) -> ModelConfig:
    """A few-thousand-parameter MSQNet of a preset family: ``timesformer``, ``videomae``, ``effnet``
    (TimeSformer + EfficientNet-Lite0 visual embedder) or ``frames`` (the ``frame_transformer`` video encoder)."""
    data = {
        "name": f"tiny-{family}",
        "num_frames": 4,
        "image_size": 32,
        "video_encoder": {"kind": "timesformer", "config": TINY_TSF},
        "label_embedder": {"kind": "minilm", "normalize": True},
        "visual_embedder": {"kind": "clip", "config": TINY_CLIP_VISION},
        "decoder": TINY_DECODER,
    }
    if family == "videomae":
        data["video_encoder"] = {"kind": "videomae", "config": TINY_MAE}
    elif family in ("effnet", "frames"):
        data["visual_embedder"] = {"kind": "efficientnet_lite0", "image_size": 32, **LITE_STATS}
        if family == "frames":
            data["video_encoder"] = {"kind": "frame_transformer", "config": TINY_FRAMES, **LITE_STATS}
    elif family != "timesformer":
        raise ValueError(family)
    data.update(fields)
    return from_dict(ModelConfig, data)
