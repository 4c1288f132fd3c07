"""Training throughput (clips/s) with and without the frozen encoders' cached outputs, side by side.

Two models: the ``msqnet-lite`` preset as shipped, and a b16-shaped model: the ``msqnet-b16``
preset's architecture (ViT-B/16-size TimeSformer and CLIP vision tower, 768-d, 12 heads, patch 16,
224 px, 512-d 6+6-layer decoder) with random-init encoders shrunk in depth (``--b16-layers``), so
it runs offline and on a CPU. Each row times the trainer's own step (``forward_backward`` +
``optimizer_step``: forward, loss, backward, Adam) on random uint8 clips already in memory; data
decoding is measured separately by ``benchmarks/data_speed.py``. "cached" passes the frozen encoders'
per-frame outputs precomputed (``MSQNet.frozen_frames``), as ``cache_frozen: true`` does, so they never
run: for ``msqnet-lite`` its frozen EfficientNet trunk, for the b16-shaped model its CLIP vision tower.

    python benchmarks/train_speed.py                       # CPU, both models
    python benchmarks/train_speed.py --device cuda --precision bf16 --b16-layers 12 --b16-batch 8
"""
from __future__ import annotations

import argparse
import os
import time
import typing
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers.utils import logging as hf_logging

from msqnet.engine.losses import build_loss
from msqnet.engine.config import LossConfig, OptimConfig
from msqnet.engine.optim import build_optimizer
from msqnet.engine.step import forward_backward, optimizer_step
from msqnet.models import create_model
from msqnet.precision import Precision

NUM_CLASSES = 140  # Animal Kingdom's label set size


def b16_overrides(layers: int, frames: int, image_size: int = 224) -> list[str]:
    """The b16 preset, random init, ``layers`` deep encoders, MiniLM labels (no hub download)."""
    return [
        f"num_frames={frames}",
        f"image_size={image_size}",
        "video_encoder.pretrained=null",
        f"video_encoder.config={{num_hidden_layers: {layers}}}",  # HF defaults: ViT-B, patch 16
        "visual_embedder.pretrained=null",
        f"visual_embedder.config={{patch_size: 16, num_hidden_layers: {layers}, image_size: {image_size}}}",
        "label_embedder.kind=minilm",
        "label_embedder.pretrained=null",
    ]


def clips_per_second(model, *, batch: int, steps: int, warmup: int, cached: bool, device: torch.device,
                     precision: str) -> float:
    """Training clips/s of ``steps`` timed trainer steps (after ``warmup`` untimed ones)."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(0)
    video = torch.randint(0, 256, (batch, cfg.num_frames, 3, cfg.image_size, cfg.image_size), dtype=torch.uint8,
                          generator=g).to(device)
    target = (torch.rand(batch, model.num_classes, generator=g) < 0.05).float().to(device)
    frozen = model.frozen_frames(video) if cached else None  # what the cache hands the step
    clips = None if frozen is not None and frozen.features is not None else video  # frame features replace the clip
    loss_fn = build_loss(LossConfig(name="bce"), multi_label=True)
    opt = build_optimizer(model, OptimConfig(lr=1e-5))
    params = [p for group in opt.param_groups for p in group["params"]]
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    model.train()

    def step() -> None:
        forward_backward(model, loss_fn, clips, target, device=device, precision=precision, frozen=frozen,
                         scaler=scaler)
        optimizer_step(params, opt, scaler)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=typing.get_args(Precision), default="fp32")
    p.add_argument("--steps", type=int, default=3, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per row")
    p.add_argument("--lite-batch", type=int, default=16)
    p.add_argument("--b16-batch", type=int, default=2)
    p.add_argument("--b16-layers", type=int, default=2, help="depth of the b16-shaped encoders (the real ones: 12)")
    p.add_argument("--b16-frames", type=int, default=8, help="T of the b16-shaped model (the paper: 16)")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    device = torch.device(args.device)
    classes = [f"action {i}" for i in range(NUM_CLASSES)]
    models = {
        "msqnet-lite": ("msqnet-lite", [], args.lite_batch),
        f"b16-shaped ({args.b16_layers}+{args.b16_layers} layers)": (
            "msqnet-b16", b16_overrides(args.b16_layers, args.b16_frames), args.b16_batch),
    }
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, precision "
          f"{args.precision}, {NUM_CLASSES} classes, {args.steps} timed steps after {args.warmup} warm-up")
    header = (f"{'model':26s} {'T':>3s} {'px':>4s} {'batch':>5s} {'trainable M':>11s} {'frozen M':>8s} "
              f"{'uncached clips/s':>16s} {'cached clips/s':>14s} {'speed-up':>8s}")
    print(header)
    print("-" * len(header))
    for name, (preset, overrides, batch) in models.items():
        torch.manual_seed(0)
        model = create_model(preset, classes, overrides).to(device)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad) / 1e6
        rates = [clips_per_second(model, batch=batch, steps=args.steps, warmup=args.warmup, cached=c, device=device,
                                  precision=args.precision) for c in (False, True)]
        cfg = model.cfg
        print(f"{name:26s} {cfg.num_frames:3d} {cfg.image_size:4d} {batch:5d} {trainable:11.1f} {frozen:8.1f} "
              f"{rates[0]:16.2f} {rates[1]:14.2f} {rates[1] / rates[0]:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
