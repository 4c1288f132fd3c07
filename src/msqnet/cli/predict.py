"""``msqnet predict``: per-label probabilities for videos, with your own class names and time windows.

Start-up: ``msqnet --help`` imports every command module, and :mod:`msqnet.inference` brings torch and
transformers (12 s of CPU to import on the development machine, against 5.0 s for all of ``msqnet --help``),
so each command imports it when it runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import typing
from pathlib import Path

from ..precision import InferencePrecision
from ..utils import json_text, read_text
from .arguments import add_view_arguments, device_name, finite_float, nonnegative_int, positive_float, positive_int, view_changes


def _read_labels(args: argparse.Namespace) -> list[str] | None:
    """The ``--labels`` / ``--labels-file`` class names, checked; None when neither is given."""
    from ..inference.outputs import clean_label_list  # at run time: see the module docstring

    if args.labels and args.labels_file:
        raise ValueError("give --labels or --labels-file, not both")
    if args.labels:
        return clean_label_list(args.labels.split(","))
    if args.labels_file:
        return clean_label_list(read_text(args.labels_file, "labels file").splitlines())
    return None


def timeline_paths(sources: list[str], folder: Path) -> list[Path]:
    """One PNG path in ``folder`` per input, named after its file: ``NAME.timeline.png``, and for a later input
    with a file name an earlier one has, ``NAME-2.timeline.png``, ``-3``, ... so no timeline overwrites another."""
    taken: set[str] = set()
    paths = []
    for source in sources:
        name, n = Path(source).name, 1
        while (candidate := name if n == 1 else f"{name}-{n}") in taken:
            n += 1
        taken.add(candidate)
        paths.append(folder / f"{candidate}.timeline.png")
    return paths


def _load_backend(checkpoint: str, backend: str, precision: str, device):
    """The model ``predict`` runs: a checkpoint in PyTorch on ``device`` (weights stored in the compute
    dtype of ``precision``), or an exported ``.onnx`` file in ONNX Runtime (on the CPU)."""
    is_onnx = Path(checkpoint).suffix == ".onnx"
    if backend == "onnxruntime":
        if not is_onnx:
            raise ValueError(f"--backend onnxruntime runs an exported .onnx file, got {checkpoint}; export it first: "
                             f"msqnet export {checkpoint} --format onnx --out model.onnx")
        if device.type != "cpu":
            raise ValueError(f"--backend onnxruntime runs on the CPU, not {device}: use --device cpu")
        from ..inference.export import OnnxRuntimeModel

        return OnnxRuntimeModel(checkpoint)
    if is_onnx:
        raise ValueError(f"{checkpoint} is an ONNX file: run it with --backend onnxruntime")
    from ..checkpoint import load_model
    from ..precision import cast_for_inference, resolve_precision

    return cast_for_inference(load_model(checkpoint, device=device), resolve_precision(precision, device))


def _output_format(args: argparse.Namespace) -> str:
    """``--format``, else the ``--out`` file's suffix (``.jsonl``, ``.json``, ``.csv``), else a table."""
    if args.format:
        return args.format
    suffix = Path(args.out).suffix.lower() if args.out else ""
    return {".jsonl": "jsonl", ".json": "json", ".csv": "csv"}.get(suffix, "table")


def _sources(args: argparse.Namespace) -> list[str]:
    """The videos of the positional arguments, then those of ``--files``."""
    from ..inference.archive import read_file_list

    sources = list(dict.fromkeys(args.videos))  # in order, each once
    if args.files:
        given = set(sources)
        sources += [s for s in read_file_list(args.files) if s not in given]
    if not sources:
        raise ValueError("no videos: give video paths or --files LIST.txt")
    return sources


def _event_options(args: argparse.Namespace):
    """The ``--events`` settings (``None`` without ``--events``)."""
    from ..inference.events import EventOptions

    if not args.events:
        return None
    return EventOptions(hysteresis=args.hysteresis, min_duration=args.min_duration, min_gap=args.min_gap)


def _video_events(pred, options):
    """A scored video's events with its duration and frame rate."""
    from ..data.decode import probe
    from ..inference.events import VideoEvents, events_of

    info = probe(pred.source)
    return VideoEvents(pred.source, info.duration, info.fps, events_of(pred, options, duration=info.duration))


def _write_events(args: argparse.Namespace, videos, labels: list[str], *, ethograms: bool = True) -> None:
    """Write the ``--events`` folder and say what is in it."""
    from ..inference.events import write_event_files

    paths = write_event_files(args.events, videos, labels, ethograms=ethograms)
    count = sum(len(v.events) for v in videos)
    print(f"wrote {count} event(s) of {len(videos)} video(s) to {args.events} "
          f"({', '.join(p.name for p in paths[:3])}{' and ethograms' if len(paths) > 3 else ''})", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from ..engine.distributed import init_distributed, shutdown_distributed

    if args.stride is not None and args.window is None:
        raise ValueError("--stride needs --window")
    if args.timeline and args.window is None and args.view == "whole":
        raise ValueError("--timeline needs --window under --view whole: it draws each input's windows "
                         "(e.g. --window 4)")
    fmt = _output_format(args)
    if fmt == "jsonl" and not args.out:
        raise ValueError("--format jsonl writes a file: give --out PREDS.jsonl")
    if args.timeline and fmt == "jsonl":
        raise ValueError("--timeline draws from collected predictions: use --format json/csv/table, not jsonl")
    if args.resume and fmt != "jsonl":
        raise ValueError("--resume continues a JSON-lines file: give --out PREDS.jsonl")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and fmt != "jsonl":
        raise ValueError("under torchrun, predictions go to a JSON-lines file: give --out PREDS.jsonl")
    _event_options(args)  # bad --hysteresis / --min-duration / --min-gap fail before any scoring
    labels = _read_labels(args)
    sources = _sources(args)
    info = init_distributed(args.device)
    try:
        model = _load_backend(args.checkpoint, args.backend, args.precision, info.device)
        model.test_view = model.test_view.changed(view_changes(args))
        if info.is_main:
            print(f"test view: {model.test_view.describe(model.cfg.num_frames, model.cfg.image_size)}",
                  file=sys.stderr)
        if args.events and args.threshold is None and getattr(model, "decision_thresholds", None) is None:
            raise ValueError(f"--events needs decision thresholds: {args.checkpoint} records none (its scores are "
                             "uncalibrated); give --threshold P")
        if fmt == "jsonl":
            return _run_jsonl(args, model, sources, labels, info)
        return _run_collected(args, model, sources, labels, fmt)
    finally:
        shutdown_distributed()


def _run_jsonl(args: argparse.Namespace, model, sources: list[str], labels: list[str] | None, info) -> int:
    """Stream one JSON line per video into ``--out`` (resumable, sharded under torchrun)."""
    from ..inference.predict import model_scorer
    from ..inference.archive import predict_to_jsonl

    names = labels if labels is not None else list(model.class_names)
    summary = predict_to_jsonl(
        sources, args.out, model_scorer(model, labels, precision=args.precision), names, model=model, dist=info, window=args.window,
        stride=args.stride, batch_size=args.batch_size, num_workers=args.num_workers, resume=args.resume,
        progress=not args.quiet and info.is_main, view=args.view, threshold=args.threshold,
        events=_event_options(args),
    )
    if not info.is_main:
        return 0  # rank 0 reports every rank's failures (a failing rank would make torchrun stop the others)
    print(summary.format(), file=sys.stderr)
    if args.events:
        from ..inference.events import Event, VideoEvents
        from ..inference.archive import read_jsonl

        videos = [VideoEvents(r["source"], r["events_duration"], r.get("events_fps"), [Event(**e) for e in r["events"]])
                  for _, r in read_jsonl(Path(args.out)) if r.get("error") is None and "events" in r]
        _write_events(args, videos, names, ethograms=False)
    return 1 if summary.failed else 0


def _run_collected(args: argparse.Namespace, model, sources: list[str], labels: list[str] | None, fmt: str) -> int:
    """Score every video, then write one table, JSON document or CSV."""
    from ..inference.outputs import format_csv, format_table, plot_timeline
    from ..inference.predict import predict
    from ..utils import atomic_write_text

    preds = predict(model, sources, labels, window=args.window, stride=args.stride, batch_size=args.batch_size,
                    num_workers=args.num_workers, progress=not args.quiet, precision=args.precision, view=args.view,
                    threshold=args.threshold)
    if fmt == "json":
        text = json_text([p.to_dict() for p in preds], indent=2) + "\n"
    elif fmt == "csv":
        text = format_csv(preds)
    else:
        text = format_table(preds, args.top_k)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.events:
        options = _event_options(args)
        _write_events(args, [_video_events(p, options) for p in preds if not p.error],
                      preds[0].labels if preds else [])
    if args.timeline:
        drawn = [p for p in preds if p.windows]
        for p, png in zip(drawn, timeline_paths([p.source for p in drawn], Path(args.timeline))):
            plot_timeline(p, png, top_k=args.top_k)
            print(f"wrote {png}", file=sys.stderr)
        if not drawn:
            print("no timeline drawn: no input was scored in windows (give --window, or --view windows)",
                  file=sys.stderr)
    failed = [p for p in preds if p.error]
    if failed:
        print(f"{len(failed)} of {len(preds)} inputs failed: " + "; ".join(p.error for p in failed), file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``predict``."""

    p = sub.add_parser(
        "predict", help="per-label probabilities for videos or frame folders",
        description="Score videos with a checkpoint, using the test view recorded in it. With --out PREDS.jsonl, "
                    "one JSON line per video is appended as it completes (resumable with --resume; shard over "
                    "processes with torchrun --nproc_per_node N $(which msqnet) predict ...).",
    )
    p.add_argument("videos", nargs="*", help="video files or folders of frames")
    p.add_argument("--files", metavar="LIST", help="text file with one video path per line (# comments allowed)")
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint folder, run folder (from msqnet train) or hub repo id user/name[@revision]; "
                        "a .onnx file from msqnet export with --backend onnxruntime")
    p.add_argument("--labels", help='comma-separated class names, e.g. "walking,eating" (default: the training classes)')
    p.add_argument("--labels-file", help="file with one class name per line")
    p.add_argument("--top-k", type=positive_int, default=5, help="labels shown per input/window in the table (default 5)")
    p.add_argument("--threshold", type=finite_float, default=None,
                   help="decision threshold for every label: detected when its score is above P (default: the "
                        "per-class thresholds the checkpoint records; without them the scores are uncalibrated)")
    p.add_argument("--view", choices=("auto", "whole", "windows"), default="auto",
                   help="whole-video scores: auto (default): a video over twice as long as the training clips is "
                        "scored in windows of their length (max over windows; single-label models: mean), a "
                        "short one as one clip; whole: always one clip; windows: always windows")
    p.add_argument("--window", type=positive_float, default=None, help="score sliding windows of this many seconds")
    p.add_argument("--stride", type=positive_float, default=None, help="seconds between window starts (default: --window)")
    p.add_argument("--format", choices=("table", "json", "csv", "jsonl"), default=None,
                   help="output format (default: from the --out suffix .jsonl/.json/.csv, else a table)")
    p.add_argument("--out", help="write the output here instead of stdout")
    p.add_argument("--resume", action="store_true",
                   help="with --out PREDS.jsonl: skip the videos it already holds a prediction for (failed ones "
                        "are tried again)")
    p.add_argument("--timeline", help="folder for one PNG timeline per input that has windows (--window, or long)")
    p.add_argument("--events", metavar="DIR",
                   help="behaviour events per label from the timeline and the decision thresholds: DIR/events.csv, "
                        "events.json, events.boris (a BORIS project) and an ethogram PNG per video (with --out "
                        "PREDS.jsonl: each line holds its events too; no ethograms)")
    p.add_argument("--hysteresis", type=finite_float, default=0.05,
                   help="with --events: an event lasts until its score falls to threshold - H (default 0.05)")
    p.add_argument("--min-duration", type=finite_float, default=0.0,
                   help="with --events: drop events shorter than this many seconds (default 0)")
    p.add_argument("--min-gap", type=finite_float, default=0.0,
                   help="with --events: merge events of a label less than this many seconds apart (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per model batch (default 8)")
    p.add_argument("--num-workers", type=nonnegative_int, default=2,
                   help="processes decoding videos while the model runs (default 2; 0: decode in this process)")
    p.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=typing.get_args(InferencePrecision), default="auto",
                   help="auto (default): bf16 on CUDA and on CPUs with AVX512-BF16/AMX, else fp32")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="torch (a checkpoint) or onnxruntime (a .onnx file from msqnet export)")
    add_view_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
