"""Forward seconds per clip: msqnet (eager / fused attention, fp32 / bf16, ONNX Runtime) beside a plain
re-implementation of the reference computation, with FLOPs per clip and this machine's GEMM floor.

For each model (``msqnet-lite`` and a b16-shaped model: TimeSformer-B + CLIP ViT-B/16 vision +
6+6-layer decoder, random weights from their configs) and each T, one clip (batch 1) goes through:

- ``baseline`` (b16 only): HF ``TimesformerModel`` + ``CLIPVisionModel`` + ``nn.Transformer`` wired
  as the reference wires them (1-D pool over the token axis, queries from label + mean CLIP
  ``pooler_output``, group-wise linear head), under ``torch.no_grad``, as the reference runs it (fp32)
  and under bf16 autocast; HF's default attention for each (CLIP: sdpa in transformers 5);
- msqnet with ``attention: eager`` / ``sdpa`` / ``auto``, in fp32 and under bf16 autocast, in
  ``torch.inference_mode``;
- ``default``: what ``msqnet predict`` runs (``--precision auto``: bf16 here when the CPU has
  AVX512-BF16/AMX, with the weights stored in bf16; ``attention: auto``; compiled where
  ``MSQNET_COMPILE`` says so: ``auto`` compiles b16-sized models on AMX, :mod:`msqnet.compiled`);
- ``compiled``: the default path with ``MSQNET_COMPILE=1``, its warm-up (the first call, which
  compiles) and its largest logit difference to the eager default (``d=``);
- ``frozen`` (``msqnet-lite``): the frozen CNN alone (what training caches), and the default path
  from cached CNN features;
- ``onnxruntime``: the model exported by ``msqnet export`` (fp32), run by ONNX Runtime.

End to end (decoding + model) is ``benchmarks/predict_speed.py``'s.

Each time is the best of ``--repeats`` forwards after a warm-up. FLOPs are counted with
``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add); the floor is FLOPs / the GEMM
throughput measured here in the row's precision, so "% floor" is the share of the hardware's
matrix-multiply rate the whole forward reaches. The header names the machine's kind (CPU ISA: AMX,
AVX512-BF16 or neither, :func:`msqnet.hardware.cpu_isa`), which decides what ``auto`` runs; the
figures of one kind say nothing of another (on AMX bf16 GEMMs run several times faster than fp32).

    python benchmarks/model_speed.py                 # the full table (about 15 minutes on 2 idle cores)
    python benchmarks/model_speed.py --profile       # + where the time goes (torch.profiler, default path)
    python benchmarks/model_speed.py --models b16 --frames 8 --variants none --profile   # the profile alone
    python benchmarks/model_speed.py --variants baseline,default,compiled --precisions fp32   # some rows only
    python benchmarks/model_speed.py --quick         # tiny sizes: a smoke test in about a minute
    python benchmarks/model_speed.py --threads 1 --clock cpu   # CPU seconds: comparable on a loaded machine
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPVisionConfig, CLIPVisionModel, TimesformerConfig, TimesformerModel
from transformers.utils import logging as hf_logging

from msqnet.compiled import COMPILE_ENV, compile_setting, repeated_blocks
from msqnet.hardware import describe as describe_hardware
from msqnet.models import create_model
from msqnet.models.attention import set_attention
from msqnet.models.config import DecoderConfig
from msqnet.models.decoder import SinusoidalPositionalEncoding
from msqnet.models.heads import GroupWiseLinear
from msqnet.precision import autocast, cast_for_inference, resolve_precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import NUM_CLASSES, b16_overrides  # noqa: E402

class ReferenceBaseline(nn.Module):
    """The reference's forward, written plainly from HF and torch modules (random weights).

    TimeSformer tokens (B, 1 + T*N, H) -> ``adaptive_avg_pool1d`` over the token axis to T -> Linear
    -> sinusoidal positions -> ``nn.Transformer`` against queries ``Linear([label ; mean_t CLIP
    pooler_output])`` -> group-wise linear logits (B, C). Both encoders see the same input tensor.
    """

    def __init__(self, *, frames: int, image_size: int, layers: int, decoder: DecoderConfig, num_classes: int,
                 text_dim: int = 512):
        super().__init__()
        self.video = TimesformerModel(TimesformerConfig(num_frames=frames, image_size=image_size,
                                                        num_hidden_layers=layers))
        self.image = CLIPVisionModel(CLIPVisionConfig(image_size=image_size, patch_size=16, num_hidden_layers=layers))
        hidden, d = self.video.config.hidden_size, decoder.d_model
        self.proj = nn.Linear(hidden, d)
        self.positions = SinusoidalPositionalEncoding(d, dropout=0.0)
        self.label_embed = nn.Parameter(torch.randn(num_classes, text_dim))
        self.query = nn.Linear(text_dim + self.image.config.hidden_size, d)
        self.transformer = nn.Transformer(d, decoder.num_heads, decoder.num_encoder_layers, decoder.num_decoder_layers,
                                          decoder.dim_feedforward, batch_first=True)
        self.head = GroupWiseLinear(num_classes, d)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of a normalised clip (B, T, 3, S, S)."""
        b, t = video.shape[:2]
        tokens = self.video(pixel_values=video).last_hidden_state  # (B, 1 + T*N, H)
        x = F.adaptive_avg_pool1d(tokens.transpose(1, 2), t).transpose(1, 2)  # (B, T, H)
        x = self.positions(self.proj(x))  # (B, T, D)
        frames = self.image(pixel_values=video.flatten(0, 1)).pooler_output  # (B*T, H)
        visual = frames.view(b, t, -1).mean(1)  # (B, H)
        c = self.label_embed.shape[0]
        queries = self.query(torch.cat([self.label_embed.expand(b, -1, -1), visual[:, None].expand(-1, c, -1)], -1))
        return self.head(self.transformer(x, queries))  # (B, C)


@dataclass
class Shape:
    """One model size of the table."""

    name: str
    preset: str
    frames: int
    image_size: int
    layers: int | None  # encoder depth of the b16-shaped model (None: the lite preset)
    decoder_layers: int | None = None  # None: the preset's


def build_msqnet(shape: Shape, classes: list[str]) -> nn.Module:
    """The msqnet model of ``shape`` (random weights, fp32, eval)."""
    if shape.layers is None:
        overrides = [f"num_frames={shape.frames}", f"image_size={shape.image_size}"]
    else:
        overrides = b16_overrides(shape.layers, shape.frames, shape.image_size)
    if shape.decoder_layers is not None:
        overrides += [f"decoder.num_encoder_layers={shape.decoder_layers}",
                      f"decoder.num_decoder_layers={shape.decoder_layers}"]
    return create_model(shape.preset, classes, overrides).eval()


def gemm_gflops(dtype: torch.dtype, repeats: int = 20) -> float:
    """Best GEMM rate (GFLOP/s) of ``F.linear`` at the shapes of a ViT-B layer (1568 tokens, 768 <-> 3072),
    best of ``repeats`` calls per shape: the hardware's rate, from a moment the other processes left it alone."""
    best = 0.0
    for m, k, n in ((1568, 768, 3072), (1568, 3072, 768)):
        a, w = torch.randn(m, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
        seconds = best_seconds(lambda: F.linear(a, w), repeats=repeats)
        best = max(best, 2 * m * n * k / seconds / 1e9)
    return best


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def args_clock() -> str:
    """The name of the clock the timings use (``--clock``)."""
    return next(name for name, c in CLOCKS.items() if c is clock)


def best_seconds(fn: Callable[[], object], *, repeats: int, warmup: int = 1) -> float:
    """The fastest of ``repeats`` timed calls of ``fn`` after ``warmup`` untimed ones (on ``clock``)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of one call of ``fn`` (matrix products, convolutions, attention), counted by FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


@dataclass
class Row:
    """One timed configuration."""

    variant: str
    precision: str
    seconds: float
    flops: float
    reference: bool = False  # a row the speed-ups are computed against


VARIANTS = ("baseline", "eager", "sdpa", "auto", "default", "compiled", "frozen", "onnx")


def time_shape(shape: Shape, args: argparse.Namespace, classes: list[str], default_precision: str,
               rates: dict[str, float]) -> list[Row]:
    """Every variant of one model size, on one random clip."""
    g = torch.Generator().manual_seed(0)
    clip = torch.randint(0, 256, (1, shape.frames, 3, shape.image_size, shape.image_size), dtype=torch.uint8,
                         generator=g)
    torch.manual_seed(0)
    model = set_attention(build_msqnet(shape, classes), "eager")  # attention as plain matmuls: all counted
    with torch.no_grad():
        flops = count_flops(lambda: model(clip))
    rows: list[Row] = []
    variants = set(args.variants.split(","))  # "none": no rows (with --profile: the profile alone)
    precisions = args.precisions.split(",")

    def run(variant: str, precision: str, fn: Callable[[], object], grad_free=torch.inference_mode,
            reference: bool = False, row_flops: float = flops) -> None:
        with grad_free(), autocast("cpu", precision):
            seconds = best_seconds(fn, repeats=args.repeats)
        rows.append(Row(variant, precision, seconds, row_flops, reference))
        row_line(shape, rows[-1], rows, rates)

    if shape.layers is not None and "baseline" in variants:
        baseline = ReferenceBaseline(frames=shape.frames, image_size=shape.image_size, layers=shape.layers,
                                     decoder=model.cfg.decoder, num_classes=len(classes)).eval()
        normalised = model.video_encoder.normalize(clip)  # the reference feeds one normalised tensor to both
        for precision in precisions:
            run("baseline (reference, HF)", precision, lambda: baseline(normalised), torch.no_grad, reference=True)
        del baseline
    for precision in precisions:
        for kind in ("eager", "sdpa", "auto"):
            if kind in variants:
                set_attention(model, kind)
                run(f"msqnet attention={kind}", precision, lambda: model(clip),
                    reference=shape.layers is None and kind == "eager")
    set_attention(model, "auto")
    if "default" in variants:
        fast = cast_for_inference(copy.deepcopy(model), default_precision)  # MSQNET_COMPILE as predict reads it
        compiled = any(b._compiled_call_impl is not None for b in repeated_blocks(fast))
        run(f"msqnet default (predict, {'compiled' if compiled else 'eager'})", default_precision, lambda: fast(clip))
        del fast
    if "compiled" in variants:
        eager = cast_for_inference(copy.deepcopy(model), default_precision, compile="0")
        fast = cast_for_inference(copy.deepcopy(model), default_precision, compile="1")
        with torch.inference_mode(), autocast("cpu", default_precision):
            start = time.perf_counter()
            got = fast(clip).logits  # the first call compiles: the warm-up a user waits for
            warmup = time.perf_counter() - start
            diff = (got.float() - eager(clip).logits.float()).abs().max().item()
        run(f"compiled (warm-up {warmup:.0f} s, d={diff:.0e})", default_precision, lambda: fast(clip))
        del eager, fast
    if "frozen" in variants and hasattr(model.video_encoder, "frozen_features"):
        with torch.no_grad():
            frozen = model.frozen_frames(clip)
            cnn_flops = count_flops(lambda: model.frozen_frames(clip))
        run("frozen CNN alone (cacheable)", "fp32", lambda: model.frozen_frames(clip), row_flops=cnn_flops)
        fast = cast_for_inference(copy.deepcopy(model), default_precision)
        run("default from cached CNN features", default_precision, lambda: fast(frozen=frozen),
            row_flops=flops - cnn_flops)
        del fast
    if "onnx" in variants and not args.no_onnx and not (args.quick and shape.layers is None):
        from msqnet.inference.export import OnnxRuntimeModel, export_onnx  # the EfficientNet export alone takes ~40 s

        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            path = export_onnx(model, Path(tmp) / "model.onnx")
            exported = time.perf_counter() - start
            ort_model = OnnxRuntimeModel(path, threads=args.threads)
            run(f"onnxruntime (export {exported:.0f} s)", "fp32", lambda: ort_model(clip))
    return rows


HEADER = (f"{'model':24s} {'T':>3s} {'px':>4s} {'GFLOP':>6s}  {'variant':34s} {'prec':4s} {'s/clip':>7s} "
          f"{'GFLOP/s':>7s} {'% floor':>7s} {'vs fp32 ref':>11s} {'vs bf16 ref':>11s}")


def row_line(shape: Shape, row: Row, rows: list[Row], rates: dict[str, float]) -> None:
    """Print one row of the table with its speed-ups against this shape's reference rows."""
    refs = {r.precision: r.seconds for r in rows if r.reference}
    ratio = {p: f"{refs[p] / row.seconds:10.2f}x" if p in refs else f"{'-':>11s}" for p in ("fp32", "bf16")}
    floor = row.flops / (rates[row.precision] * 1e9)
    print(f"{shape.name:24s} {shape.frames:3d} {shape.image_size:4d} {row.flops / 1e9:6.1f}  {row.variant:34s} "
          f"{row.precision:4s} {row.seconds:7.3f} {row.flops / row.seconds / 1e9:7.1f} {100 * floor / row.seconds:6.0f}% "
          f"{ratio['fp32']} {ratio['bf16']}", flush=True)


CATEGORIES = (
    ("matrix products (linear, matmul, conv)", ("addmm", "aten::mm", "bmm", "matmul", "linear", "convolution",
                                                 "_addmm_activation")),
    ("fused attention kernels", ("scaled_dot_product", "_native_multi_head_attention")),
    ("softmax", ("softmax",)),
    ("copies, casts and layout", ("copy_", "cat", "clone", "contiguous", "_to_copy", "aten::to")),
    ("elementwise and norms", ("add", "mul", "div", "sub", "gelu", "sigmoid", "relu", "layer_norm", "batch_norm",
                               "silu", "exp", "mean", "sum")),
)


GEMM_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::_addmm_activation")


def profile_default(shape: Shape, classes: list[str], precision: str) -> None:
    """Where the default path's time goes: torch.profiler self time, by operator and by category, and the rate
    of its matrix products (their FLOPs over their time)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = cast_for_inference(set_attention(build_msqnet(shape, classes), "auto"), precision)
    clip = torch.randint(0, 256, (1, shape.frames, 3, shape.image_size, shape.image_size), dtype=torch.uint8)
    with torch.inference_mode(), autocast("cpu", precision):
        seconds = best_seconds(lambda: model(clip), repeats=1)  # on the table's clock (CPU seconds resist load)
        with FlopCounterMode(display=False) as counter:
            model(clip)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(clip)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    compiled = any(b._compiled_call_impl is not None for b in repeated_blocks(model))
    print(f"\nprofile: msqnet default ({precision}, {'compiled' if compiled else 'eager'}), {shape.name}, "
          f"T={shape.frames}, {shape.image_size} px, one clip; self CPU time {total / 1e6:.2f} s (summed over threads)")
    by_category: dict[str, float] = {}
    for e in events:
        category = next((c for c, keys in CATEGORIES if any(k in e.key for k in keys)), "other")
        by_category[category] = by_category.get(category, 0.0) + e.self_cpu_time_total
    for category, t in sorted(by_category.items(), key=lambda kv: -kv[1]):
        print(f"  {category:42s} {100 * t / total:5.1f}%")
    gemm_flops = sum(n for op, n in counter.get_flop_counts()["Global"].items()
                     if str(op).split(".")[1] in ("addmm", "mm", "bmm", "_addmm_activation"))
    share = sum(e.self_cpu_time_total for e in events if e.key in GEMM_OPS) / total
    print(f"  GEMMs (addmm, mm, bmm): {gemm_flops / 1e9:.0f} GFLOP, {100 * share:.1f}% of the profiled time; of a "
          f"{seconds:.2f} s forward ({args_clock()} seconds, timed just before) that is {share * seconds:.2f} s = "
          f"{gemm_flops / (share * seconds) / 1e9:.0f} GFLOP/s (the profiler's own times are wall time, which load "
          "inflates)")
    print("  top operators:")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]:
        print(f"    {e.key:50s} {100 * e.self_cpu_time_total / total:5.1f}%  {e.count:5d} calls")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (b16-shaped: 1+1 layers at 32 px), T=8, one repeat, GEMM rate best of 2 "
                        "(a smoke test)")
    p.add_argument("--repeats", type=int, default=3, help="timed forwards per row (the best is reported)")
    p.add_argument("--frames", default="8,16", help="comma-separated T values (default 8,16)")
    p.add_argument("--models", default="lite,b16", help="comma-separated: lite, b16")
    p.add_argument("--threads", type=int, default=None,
                   help="torch and ONNX Runtime threads (default: theirs, one per core)")
    p.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                   help="wall seconds (default) or the process's CPU seconds: with --threads 1, what a clip "
                        "costs whatever else runs on the machine")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime rows")
    p.add_argument("--profile", action="store_true", help="profile the default path at the first b16 size")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated rows to time (default all: {','.join(VARIANTS)}; 'none' with --profile: "
                        "the profile alone)")
    p.add_argument("--precisions", default="fp32,bf16",
                   help="comma-separated precisions of the baseline and attention rows (default fp32,bf16; bf16 is "
                        "emulated, several times slower, on a CPU of ISA none)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    global clock
    clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.repeats = 1
        args.frames = "8"
    frames = [int(t) for t in args.frames.split(",")]
    shapes = []
    for name in args.models.split(","):
        for t in frames:
            if name == "lite":
                shapes.append(Shape("msqnet-lite", "msqnet-lite", t, 64 if args.quick else 224, None,
                                    1 if args.quick else None))
            elif name == "b16":
                shapes.append(Shape("b16-shaped" + (" (1+1 layers)" if args.quick else ""), "msqnet-b16", t,
                                    32 if args.quick else 224, 1 if args.quick else 12, 1 if args.quick else None))
            else:
                p.error(f"--models: unknown model {name!r} (lite, b16)")
    classes = [f"action {i}" for i in range(NUM_CLASSES)]
    default_precision = resolve_precision("auto", "cpu")
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, predict's default precision here: {default_precision}; "
          f"load average {load[0]:.1f} at start")
    print(f"machine: {describe_hardware()} (AMX: bf16 GEMMs in tiles; AVX512-BF16: bf16 dot products; none: bf16 "
          "emulated)")
    # --quick: 2 calls per shape; an emulated bf16 GEMM (CPU ISA none) takes seconds each
    gemm_repeats = 2 if args.quick else 20
    rates = {"fp32": gemm_gflops(torch.float32, gemm_repeats), "bf16": gemm_gflops(torch.bfloat16, gemm_repeats)}
    print(f"compiled path: {COMPILE_ENV}={compile_setting()} (auto: b16-sized models on an AMX CPU, msqnet.compiled); "
          "the default row says which path predict takes here")
    print(f"GEMM throughput measured here: fp32 {rates['fp32']:.0f} GFLOP/s, bf16 {rates['bf16']:.0f} GFLOP/s "
          f"(F.linear, 1568 x 768 <-> 3072, best of {gemm_repeats})")
    print(f"batch 1, {args.clock} seconds, best of {args.repeats} after a warm-up; {NUM_CLASSES} classes; ref = the "
          "baseline (b16) or msqnet with eager attention (lite)\n")
    print(HEADER)
    print("-" * len(HEADER))
    for shape in shapes:
        time_shape(shape, args, classes, default_precision, rates)
    if args.profile:
        b16 = [s for s in shapes if s.layers is not None] or shapes
        profile_default(b16[0], classes, default_precision)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other processes share these cores)")


if __name__ == "__main__":
    main()
