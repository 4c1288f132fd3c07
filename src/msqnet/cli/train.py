"""``msqnet train`` and ``msqnet evaluate``: run a training config, score a checkpoint on a split."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..utils import json_text
from .arguments import nonnegative_int, positive_int


def _train(args: argparse.Namespace) -> int:
    from ..engine.config import load_train_config
    from ..engine.trainer import train

    cfg = load_train_config(args.config, args.overrides)
    result = train(cfg, resume=args.resume, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(result.summary())
    return 0


def _metric_names(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    from ..metrics import parse_metric_names

    return parse_metric_names(values)


def view_changes(args: argparse.Namespace) -> dict[str, object]:
    """The test-view fields the command line changes (``--test-clips`` / ``--test-crops`` / ``--aggregate``)."""
    return {"clips": args.test_clips, "crops": args.test_crops, "aggregate": args.aggregate}


def _note_ignored_view(config: str, train_cfg, checkpoint: str) -> None:
    """Say so when a training config given as ``--data`` asks for another test view than the checkpoint records."""
    from ..checkpoint import read_checkpoint_config
    from ..data.views import TestView
    from ..engine.evaluate import resolve_checkpoint

    recorded = read_checkpoint_config(resolve_checkpoint(checkpoint))["test_view"]
    if TestView.from_configs(train_cfg.sampling, train_cfg.transform) != recorded:
        logging.getLogger("msqnet.evaluate").warning(
            "%s: its sampling/transform describe another test view than the checkpoint records; using the "
            "checkpoint's (change it with --test-clips, --test-crops, --aggregate)", config)


def _evaluate(args: argparse.Namespace) -> int:
    from ..engine.evaluate import evaluate_checkpoint, read_eval_data_config
    from ..engine.report import print_table

    data, train_cfg = read_eval_data_config(args.data, args.overrides)
    if train_cfg is not None:
        _note_ignored_view(args.data, train_cfg, args.checkpoint)
    batch_size = args.batch_size or (train_cfg.effective_eval_batch_size if train_cfg is not None else 8)
    if args.zero_shot:
        return _evaluate_zero_shot(args, data, batch_size)
    from ..engine.distributed import init_distributed, shutdown_distributed

    info = init_distributed(args.device)  # under torchrun every process scores a shard
    try:
        result = evaluate_checkpoint(
            args.checkpoint, data, args.split, view_changes=view_changes(args),
            metrics=_metric_names(args.metric), out_dir=args.out, batch_size=batch_size, num_workers=args.num_workers,
            device=str(info.device), precision=args.precision, progress=not args.no_progress,
        )
    finally:
        shutdown_distributed()
    if not info.is_main:
        return 0
    if args.json:
        print(json_text({"split": result.split, "num_clips": result.num_clips, "skipped": result.skipped,
                         "metrics": result.metrics}, indent=2))
    else:
        rows = [{"metric": k, "value": v, "chance": result.chance.get(k)} for k, v in result.metrics.items()]
        print(f"{args.split}: {result.num_clips} clips" + (f", {len(result.skipped)} skipped" if result.skipped else ""))
        print(print_table(rows, ["metric", "value", "chance"]))
        if args.out:
            print(f"report: {args.out}")
    return 0


def _evaluate_zero_shot(args: argparse.Namespace, data, batch_size: int) -> int:
    """``evaluate --zero-shot``: seen / unseen / harmonic-mean mAP of a split with every class."""
    from ..checkpoint import load_model
    from ..data.datasets import load_split
    from ..engine.distributed import resolve_device
    from ..engine.evaluate import changed_view, resolve_checkpoint
    from ..engine.report import print_table
    from ..engine.zero_shot import evaluate_zero_shot
    from ..utils import atomic_write_text
    from ..class_splits import load_zero_shot_split

    ckpt = resolve_checkpoint(args.checkpoint)
    device = resolve_device(args.device, 0)
    model = load_model(ckpt, device=device)
    model.test_view = changed_view(model.test_view, view_changes(args))
    split = load_split(data, args.split)
    zs = load_zero_shot_split(args.zero_shot, split.class_names)
    result = evaluate_zero_shot(model, split, zs, protocol="gzsl" if args.gzsl else "zsl", batch_size=batch_size,
                                num_workers=args.num_workers, device=device, precision=args.precision,
                                progress=not args.no_progress)
    text = json_text(result.as_dict(), indent=2) + "\n"
    if args.out:
        atomic_write_text(Path(args.out) / "zero_shot.json", text)
    if args.json:
        print(text, end="")
        return 0
    kind = "closed-set head" if result.closed_set else f"open vocabulary, {result.protocol}"
    print(f"{args.split}: {result.num_clips} clips, {len(zs.seen)} seen / {len(zs.unseen)} unseen classes ({kind})")
    print(print_table([
        {"classes": "seen", "mAP": result.map_seen, "chance": result.chance_seen},
        {"classes": "unseen", "mAP": result.map_unseen, "chance": result.chance_unseen},
        {"classes": "harmonic mean", "mAP": result.harmonic, "chance": None},
    ], ["classes", "mAP", "chance"]))
    return 0


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    """``--test-clips`` / ``--test-crops`` / ``--aggregate``: change the checkpoint's recorded test view."""
    parser.add_argument("--test-clips", type=positive_int,
                        help="temporal views per video (default: the checkpoint's test view)")
    parser.add_argument("--test-crops", type=int, choices=(1, 3),
                        help="spatial views per temporal view (default: the checkpoint's test view)")
    parser.add_argument("--aggregate", choices=("mean", "max"),
                        help="how view scores are combined (default: the checkpoint's test view)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``evaluate``."""
    p = subparsers.add_parser(
        "train", help="train a model from a training config",
        description="Train MSQNet from a training config (configs/*.yaml). Launch under torchrun for DDP: "
                    "torchrun --nproc_per_node N $(which msqnet) train CONFIG.",
    )
    p.add_argument("config", metavar="CONFIG", help="training config file (YAML/JSON)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. epochs=5 optim.lr=0.0001 data.root=/data/ak")
    p.add_argument("--resume", metavar="auto|PATH",
                   help="'auto': continue the newest valid training state in output_dir (or start new); "
                        "PATH: a training state folder or run folder")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of progress bars")
    p.set_defaults(func=_train)

    e = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on a dataset split and write a report",
        description="Score every clip of a split with a checkpoint, compute the metrics once over the whole "
                    "split, print them beside chance and (with --out) write a report folder.",
    )
    e.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="model folder, training state folder, run folder (uses its best/) or hub repo id "
                        "user/name[@revision]")
    e.add_argument("--data", required=True, metavar="CONFIG",
                   help="data config file (format, root, annotations) or a training config (its data section; "
                        "clips are built with the test view recorded in the checkpoint)")
    e.add_argument("--split", default="test", help="split to evaluate (default test)")
    e.add_argument("--metric", action="append", metavar="NAMES",
                   help="metric names, comma-separated or repeated (default: the dataset's standard ones)")
    e.add_argument("--out", metavar="REPORT_DIR", help="write the report folder here")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the --data file, e.g. --set data.root=/data/ak")
    e.add_argument("--batch-size", type=positive_int, help="clips per batch (default: the config's, else 8)")
    e.add_argument("--num-workers", type=nonnegative_int, default=0, help="data loader workers (default 0)")
    add_view_arguments(e)
    e.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    e.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    e.add_argument("--zero-shot", metavar="SPLIT",
                   help="zero-shot class split (shipped name, e.g. charades_50_50, or a split file): report mAP on "
                        "seen and unseen classes and their harmonic mean")
    e.add_argument("--gzsl", action="store_true",
                   help="with --zero-shot: generalised protocol, seen and unseen classes queried together")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=_evaluate)
