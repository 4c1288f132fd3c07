"""``msqnet export``: a trained model as one ONNX file, for ONNX Runtime (``msqnet predict --backend onnxruntime``)."""
from __future__ import annotations

import argparse
import sys
import time


def _run(args: argparse.Namespace) -> int:
    from ..inference.export import require_onnx_exporter

    require_onnx_exporter()  # before loading a model only to find the exporter missing
    from ..checkpoint import load_model
    from ..inference.export import export_onnx
    from .predict import _read_labels

    labels = _read_labels(args)
    model = load_model(args.checkpoint)
    start = time.perf_counter()
    print(f"exporting {args.checkpoint} to ONNX (tracing the model; a minute or more for large models)", file=sys.stderr)
    path = export_onnx(model, args.out, labels=labels, opset=args.opset)
    kind = ("label set fixed: " + ", ".join(labels[:5]) + ("..." if len(labels) > 5 else "")) if labels else (
        "label embeddings as input (open vocabulary)" if model.cfg.head == "text" else
        f"its {model.num_classes} training classes")
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({size:.1f} MiB, {kind}; {time.perf_counter() - start:.0f} s); run it with "
          f"msqnet predict VIDEOS --checkpoint {path} --backend onnxruntime")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export``."""
    p = sub.add_parser("export", help="export a trained model to ONNX (for ONNX Runtime)")
    p.add_argument("checkpoint", help="checkpoint folder or training run folder")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format (onnx)")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--labels", help="open-vocabulary models: fix this comma-separated label set in the file "
                                    "(default: label embeddings are an input)")
    p.add_argument("--labels-file", help="file with one class name per line (as --labels)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset, 18..23 with torch 2.13 (default: the exporter's)")
    p.set_defaults(func=_run)
