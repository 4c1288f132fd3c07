"""Model commands: ``convert-reference`` (reference weights -> checkpoint) and ``presets``."""
from __future__ import annotations

import argparse

from .arguments import positive_int


def _convert(args: argparse.Namespace) -> int:
    from ..convert import convert_reference

    model = convert_reference(args.weights, args.config, args.out, num_heads=args.num_heads)
    n = sum(p.numel() for p in model.parameters())
    print(f"converted {args.weights} -> {args.out} ({model.num_classes} classes, {n / 1e6:.2f}M parameters, "
          f"parity mode: reference pooling, input fed unchanged to both encoders)")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from ..models import get_model_config, list_presets

    for name in list_presets():
        cfg = get_model_config(name)
        print(f"{name:20s} {cfg.video_encoder.kind:11s} T={cfg.num_frames:<3d} {cfg.image_size}px  "
              f"labels={cfg.label_embedder.kind}  visual={cfg.visual_embedder.kind}  D={cfg.decoder.d_model}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``convert-reference`` and ``presets``."""
    p = sub.add_parser("convert-reference", help="convert MSQNet reference weights into an msqnet checkpoint folder")
    p.add_argument("weights", help="state dict saved from the reference model (.safetensors or tensors-only .pth)")
    p.add_argument("--config", required=True, help="JSON with timesformer_config, clip_vision_config, classes, num_frames")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--num-heads", type=positive_int, default=8, help="attention heads of the reference nn.Transformer (default 8)")
    p.set_defaults(func=_convert)

    p = sub.add_parser("presets", help="list the model presets")
    p.set_defaults(func=_presets)
