"""Convert weights saved from the MSQNet reference implementation into an msqnet checkpoint folder.

The reference model (``TimeSformerCLIPInitVideoGuide``) names its parts ``backbone`` (TimeSformer),
``linear1`` (token projection), ``pos_encod``, ``image_model`` (CLIP vision), ``linear2`` (query
fusion), ``query_embed``, ``transformer`` (nn.Transformer) and ``group_linear``. The converted model
runs in *parity mode*: the reference's 1-D token pooling, zero-started time embeddings kept as saved,
and the input fed unchanged to both encoders (no per-encoder normalisation).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..config_loader import ConfigError
from ..models.config import DecoderConfig, LabelEmbedderConfig, ModelConfig, VideoEncoderConfig, VisualEmbedderConfig
from ..models.msqnet import MSQNet, check_class_names
from ..utils import check_replaceable, quote, read_json
from .format import CHECKPOINT_MARK
from .model_folder import check_weight_shapes, save_model

__all__ = ["REFERENCE_KEY_MAP", "reference_model_config", "convert_reference_state_dict", "convert_reference"]

# reference prefix -> msqnet prefix (first match wins)
REFERENCE_KEY_MAP: tuple[tuple[str, str], ...] = (
    ("backbone.", "video_encoder.backbone."),
    ("linear1.", "token_proj."),
    ("image_model.", "visual_embedder.encoder."),
    ("linear2.", "query_builder.proj."),
    ("query_embed", "query_builder.label_embeddings"),
    ("transformer.", "decoder.transformer."),
    ("group_linear.", "head."),
)

_HF_CONFIG_NOISE = ("transformers_version", "architectures", "_name_or_path", "id2label", "label2id", "dtype",
                    "torch_dtype", "output_hidden_states", "output_attentions", "return_dict", "problem_type",
                    "chunk_size_feed_forward", "is_encoder_decoder", "model_type")


def _clean_hf_config(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in _HF_CONFIG_NOISE}


def read_reference_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a reference state dict from ``.safetensors`` or a tensors-only ``.pth``/``.pt`` file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; expected a weights file (.safetensors or .pth)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
    except Exception as e:  # safetensors' and torch's own error types for corrupt, truncated or unsafe files
        raise ValueError(f"{path}: cannot read weights ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                         f"expected a safetensors file or a tensors-only torch file") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}  # DDP-wrapped saves


def reference_model_config(ref_cfg: dict[str, Any], state: dict[str, torch.Tensor], *, num_heads: int = 8) -> ModelConfig:
    """The parity-mode ModelConfig for reference weights ``state`` and the reference config dict."""
    for key in ("timesformer_config", "clip_vision_config", "num_frames"):
        if key not in ref_cfg:
            raise ConfigError(f"reference config: missing key {quote(key)}")
    for key in ("timesformer_config", "clip_vision_config"):
        if not isinstance(ref_cfg[key], dict):
            raise ConfigError(f"reference config: {key}: expected an object of HF config fields")
    num_frames = ref_cfg["num_frames"]
    if not isinstance(num_frames, int) or isinstance(num_frames, bool):
        raise ConfigError(f"reference config: num_frames: expected an int, got {quote(num_frames)}")
    for key in ("query_embed", "transformer.encoder.layers.0.linear1.weight"):
        if key not in state:
            raise ValueError(f"reference weights: no {quote(key)}; is this a TimeSformerCLIPInitVideoGuide state dict?")
    tsf = _clean_hf_config(ref_cfg["timesformer_config"])
    tsf["num_frames"] = num_frames
    d_model = state["query_embed"].shape[1]
    layer_ids = lambda part: {int(m.group(1)) for k in state if (m := re.match(rf"transformer\.{part}\.layers\.(\d+)\.", k))}
    decoder = DecoderConfig(
        d_model=d_model,
        num_heads=num_heads,
        num_encoder_layers=len(layer_ids("encoder")),
        num_decoder_layers=len(layer_ids("decoder")),
        dim_feedforward=state["transformer.encoder.layers.0.linear1.weight"].shape[0],
    )
    text_cfg = _clean_hf_config(ref_cfg.get("clip_text_config", {}))
    return ModelConfig(
        name="msqnet-reference-parity",
        num_frames=num_frames,
        image_size=int(tsf.get("image_size", 224)),
        video_encoder=VideoEncoderConfig(kind="timesformer", pretrained=None, config=tsf, time_embeddings="zero",
                                         mean=None, std=None),
        label_embedder=LabelEmbedderConfig(kind="clip", pretrained=None, config=text_cfg),
        visual_embedder=VisualEmbedderConfig(kind="clip", pretrained=None,
                                             config=_clean_hf_config(ref_cfg["clip_vision_config"]),
                                             image_size=None, mean=None, std=None),
        decoder=decoder,
        pooling="reference",
        query="multimodal",
        head="group_linear",
        trainable_label_embeddings=True,
        attention="eager",
    )


def convert_reference_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename reference keys to msqnet keys; unknown keys are an error (nothing is silently dropped)."""
    out, unknown = {}, []
    for key, value in state.items():
        for src, dst in REFERENCE_KEY_MAP:
            if key.startswith(src):
                out[dst + key[len(src):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"reference weights: keys with no msqnet counterpart: {unknown[:8]}")
    return out


def convert_reference(weights: str | os.PathLike, config: str | os.PathLike, out_dir: str | os.PathLike,
                      *, num_heads: int = 8) -> MSQNet:
    """Convert reference ``weights`` + its JSON ``config`` into a checkpoint folder; returns the model."""
    check_replaceable(out_dir, CHECKPOINT_MARK)  # refuse a user's folder before any work
    config = Path(config)
    ref_cfg = read_json(config, "reference config", "the reference's JSON config")
    if not isinstance(ref_cfg, dict):
        raise ConfigError(f"{config}: expected a JSON object, got {type(ref_cfg).__name__}")
    state = read_reference_weights(weights)
    try:
        cfg = reference_model_config(ref_cfg, state, num_heads=num_heads)
    except ConfigError as e:
        raise ConfigError(f"{config}: {e}") from None
    num_classes = state["query_embed"].shape[0]
    classes = ref_cfg.get("classes") or [f"class_{i}" for i in range(num_classes)]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ConfigError(f"{config}: classes: expected a list of class names")
    if len(classes) != num_classes:
        raise ValueError(f"{config}: {len(classes)} classes but the weights have {num_classes} queries")
    check_class_names(classes, f"{config}: classes")
    model = MSQNet(cfg, classes, text_dim=state["query_embed"].shape[1])
    converted = convert_reference_state_dict(state)
    check_weight_shapes(model, Path(weights), {k: tuple(v.shape) for k, v in converted.items()},
                        described_by=f"the model {config} describes")
    model.load_state_dict(converted, strict=False)  # exactly the checked tensors
    model.eval()
    save_model(model, out_dir, extra={"converted_from": str(Path(weights).name)})
    return model
