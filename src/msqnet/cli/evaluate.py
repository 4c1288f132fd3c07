"""``msqnet evaluate``: score a checkpoint on a dataset split, print the metrics beside chance, write a report."""
from __future__ import annotations

import argparse
import logging
import os
import typing
from pathlib import Path
from typing import Sequence

from ..config_loader import ConfigError, apply_overrides, from_dict, read_config_file
from ..precision import Precision
from ..presets import recipe_file
from ..utils import atomic_write_text, json_text
from .arguments import add_view_arguments, device_name, nonnegative_int, positive_int, view_changes

log = logging.getLogger("msqnet.evaluate")


def read_data_config(path: str | os.PathLike, overrides: Sequence[str] = ()):
    """``(DataConfig, TrainConfig or None)`` from a data config file, or a whole training config (a file or
    a packaged recipe's name)."""
    from ..data.config import DataConfig
    from ..engine.config import TrainConfig

    path = recipe_file(path)
    data = apply_overrides(read_config_file(path), list(overrides))
    try:
        if "data" in data:
            train_cfg = from_dict(TrainConfig, data)
            return train_cfg.data, train_cfg
        return from_dict(DataConfig, data), None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _note_ignored_view(config: str, train_cfg, checkpoint: str) -> None:
    """Say so when a training config given as ``--data`` asks for another test view than the checkpoint records."""
    from ..checkpoint import read_checkpoint_config, require_model_folder
    from ..data.views import TestView

    recorded = read_checkpoint_config(require_model_folder(checkpoint))["test_view"]
    if TestView.from_configs(train_cfg.sampling, train_cfg.transform) != recorded:
        log.warning("%s: its sampling/transform describe another test view than the checkpoint records; using the "
                    "checkpoint's (change it with --test-clips, --test-crops, --aggregate)", config)


def _evaluate(args: argparse.Namespace) -> int:
    from ..engine.distributed import init_distributed, shutdown_distributed
    from ..engine.evaluate import evaluate_checkpoint
    from ..engine.report import print_table
    from ..metrics import parse_metric_names

    if args.gzsl and not args.zero_shot:  # an option that would change nothing is a mistake: say so
        raise ValueError("--gzsl needs --zero-shot SPLIT: it picks the generalised protocol of a zero-shot evaluation")
    data, train_cfg = read_data_config(args.data, args.overrides)
    if train_cfg is not None:
        _note_ignored_view(args.data, train_cfg, args.checkpoint)
    batch_size = args.batch_size or (train_cfg.effective_eval_batch_size if train_cfg is not None else 8)
    if args.zero_shot:
        return _evaluate_zero_shot(args, data, batch_size)
    info = init_distributed(args.device)  # under torchrun every process scores a shard
    try:
        result = evaluate_checkpoint(
            args.checkpoint, data, args.split, view_changes=view_changes(args),
            metrics=parse_metric_names(args.metric) if args.metric else None, out_dir=args.out,
            batch_size=batch_size, num_workers=args.num_workers, device=str(info.device), precision=args.precision,
            progress=not args.no_progress,
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
    from ..checkpoint import load_model, require_model_folder
    from ..data.class_splits import load_zero_shot_split
    from ..data.datasets import load_split
    from ..engine.distributed import resolve_device
    from ..engine.report import print_table
    from ..engine.zero_shot import evaluate_zero_shot

    device = resolve_device(args.device, 0)
    model = load_model(require_model_folder(args.checkpoint), device=device)
    model.test_view = model.test_view.changed(view_changes(args))
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate``."""
    e = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on a dataset split and write a report",
        description="Score every clip of a split with a checkpoint, compute the metrics once over the whole "
                    "split, print them beside chance and (with --out) write a report folder.",
    )
    e.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="model folder, training state folder, run folder (uses its best/) or hub repo id "
                        "user/name[@revision]")
    e.add_argument("--data", required=True, metavar="CONFIG",
                   help="data config file (format, root, annotations) or a training config or recipe name (its "
                        "data section; clips are built with the test view recorded in the checkpoint)")
    e.add_argument("--split", default="test", help="split to evaluate (default test)")
    e.add_argument("--metric", action="append", metavar="NAMES",
                   help="metric names, comma-separated or repeated (default: the dataset's standard ones)")
    e.add_argument("--out", metavar="REPORT_DIR", help="write the report folder here")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the --data file, e.g. --set data.root=/data/ak")
    e.add_argument("--batch-size", type=positive_int, help="clips per batch (default: the config's, else 8)")
    e.add_argument("--num-workers", type=nonnegative_int, default=0, help="data loader workers (default 0)")
    add_view_arguments(e)
    e.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N")
    e.add_argument("--precision", choices=typing.get_args(Precision), default="fp32")
    e.add_argument("--zero-shot", metavar="SPLIT",
                   help="zero-shot class split (shipped name, e.g. charades_50_50, or a split file): report mAP on "
                        "seen and unseen classes and their harmonic mean")
    e.add_argument("--gzsl", action="store_true",
                   help="with --zero-shot: generalised protocol, seen and unseen classes queried together")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=_evaluate)
