"""``msqnet explain``: where and when the model looked for each label, as pictures, videos and numbers.

Per label, into ``--out``: ``LABEL.png`` (the frames with the relevance map overlaid, the temporal
relevance as a strip under them), ``LABEL.mp4`` (the overlaid frames) and ``LABEL.json`` (the numbers).
With ``--window``, one folder per timeline window (``w0000_12.00s/...``), streamed: each window's files
are written as soon as it is explained, from one decode of the video.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..utils import atomic_write_bytes, atomic_write_text, json_text
from .arguments import nonnegative_int, positive_float
from .predict import _read_labels

METHODS = ("gradcam", "rollout")  # msqnet.inference.explain.METHODS, without importing torch for --help


def write_explanation(explanation, folder: Path, labels: list[str]) -> list[Path]:
    """Write the PNG, MP4 and JSON of each of ``labels`` of one explanation into ``folder``."""
    from ..inference.overlay import contact_sheet, label_slug, write_overlay_video

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    numbers = explanation.to_dict()
    for label in labels:
        slug = label_slug(label)
        atomic_write_bytes(folder / f"{slug}.png", contact_sheet(explanation, label))
        write_overlay_video(folder / f"{slug}.mp4", explanation, label)
        one = {**numbers, "labels": [x for x in numbers["labels"] if x["label"] == label]}
        atomic_write_text(folder / f"{slug}.json", json_text(one, indent=1) + "\n")
        written += [folder / f"{slug}.{ext}" for ext in ("png", "mp4", "json")]
    return written


def _shown(explanation, top: int, asked: bool) -> list[str]:
    """The labels to draw: every asked one, else the ``top`` most probable (0: all)."""
    names = [x.label for x in explanation.labels]
    if asked or top == 0:
        return names
    return [x.label for x in sorted(explanation.labels, key=lambda x: -x.probability)[:top]]


def _run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_model
    from ..engine.distributed import resolve_device
    from ..inference.explain import explain, iter_explanations

    if args.stride is not None and args.window is None:
        raise ValueError("--stride needs --window")
    if not Path(args.video).exists():
        raise FileNotFoundError(2, "No such file or directory", args.video)
    labels = _read_labels(args)
    model = load_model(args.checkpoint, device=resolve_device(args.device))
    out = Path(args.out)
    if args.window is None:
        expl = explain(model, args.video, labels, method=args.method)
        for path in write_explanation(expl, out, _shown(expl, args.top, labels is not None)):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    count = 0
    for expl in iter_explanations(model, args.video, labels, method=args.method, window=args.window,
                                  stride=args.stride):
        folder = out / f"w{count:04d}_{expl.start:.2f}s"
        write_explanation(expl, folder, _shown(expl, args.top, labels is not None))
        print(f"wrote {folder} ({expl.start:.2f}-{expl.end:.2f} s)", file=sys.stderr)
        count += 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``explain``."""
    p = sub.add_parser("explain", help="per-label maps of where and when the model looked (PNG, MP4, JSON)",
                       description=__doc__)
    p.add_argument("video", help="video file or folder of frames")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, run folder or hub repo id user/name")
    p.add_argument("--labels", help='comma-separated class names, e.g. "walking,eating" (default: the training '
                                    "classes, the --top most probable drawn)")
    p.add_argument("--labels-file", help="file with one class name per line")
    p.add_argument("--top", type=nonnegative_int, default=3,
                   help="without --labels: draw the K most probable training classes (default 3; 0: all)")
    p.add_argument("--method", choices=METHODS, default="gradcam",
                   help="gradcam (default: gradient x activation on the encoder's tokens) or rollout (the decoder's "
                        "cross-attention carried back through the encoder's attention); README, 'Explanations'")
    p.add_argument("--window", type=positive_float, default=None, help="explain sliding windows of this many seconds")
    p.add_argument("--stride", type=positive_float, default=None, help="seconds between window starts (default: --window)")
    p.add_argument("--out", required=True, help="folder for the pictures, videos and numbers")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(func=_run)
