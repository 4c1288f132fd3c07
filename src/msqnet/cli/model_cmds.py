"""Model commands: ``convert-reference`` (reference weights -> checkpoint) and ``presets`` (what is packaged)."""
from __future__ import annotations

import argparse

from .arguments import positive_int


def _convert(args: argparse.Namespace) -> int:
    from ..checkpoint.convert import convert_reference

    model = convert_reference(args.weights, args.config, args.out, num_heads=args.num_heads)
    n = sum(p.numel() for p in model.parameters())
    print(f"converted {args.weights} -> {args.out} ({model.num_classes} classes, {n / 1e6:.2f}M parameters, "
          f"parity mode: reference pooling, input fed unchanged to both encoders)")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from ..engine.config import load_train_config
    from ..models import get_model_config
    from ..presets import list_presets, list_recipes

    print("model presets (a training config's model:, create_model):")
    for name in list_presets():
        cfg = get_model_config(name)
        print(f"  {name:20s} {cfg.video_encoder.kind:17s} T={cfg.num_frames:<3d} {cfg.image_size}px  "
              f"labels={cfg.label_embedder.kind}  visual={cfg.visual_embedder.kind}  D={cfg.decoder.d_model}")
    print("training recipes (msqnet train NAME, msqnet evaluate --data NAME):")
    for name in list_recipes():
        cfg = load_train_config(name)
        print(f"  {name:20s} model {cfg.model.name:17s} data {cfg.data.format:15s} {cfg.epochs} epochs, "
              f"batch {cfg.batch_size}, {cfg.optim.name} lr {cfg.optim.lr:g}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``convert-reference`` and ``presets``."""
    p = sub.add_parser("convert-reference", help="convert MSQNet reference weights into an msqnet checkpoint folder")
    p.add_argument("weights", help="state dict saved from the reference model (.safetensors or tensors-only .pth)")
    p.add_argument("--config", required=True, help="JSON with timesformer_config, clip_vision_config, classes, num_frames")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--num-heads", type=positive_int, default=8, help="attention heads of the reference nn.Transformer (default 8)")
    p.set_defaults(func=_convert)

    p = sub.add_parser("presets", help="list the packaged model presets and training recipes")
    p.set_defaults(func=_presets)
