"""``msqnet data check``: validate a dataset (annotations and videos) before a long training run.

``msqnet data import-boris``: a BORIS project's coded behaviours as a dataset in the generic format.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from ..config_loader import ConfigError, from_dict, parse_yaml, read_config_file
from ..data.config import DATA_FORMATS, DataConfig
from ..data.datasets import available_splits
from ..presets import recipe_file
from ..utils import json_text, quote
from .arguments import positive_int

__all__ = ["register", "build_data_config"]

_EXAMPLES = """examples:
  msqnet data check my_run.yaml --split test                  # the data section of a training config
  msqnet data check animal_kingdom --root /data/ak/image --annotations /data/ak/annotation --split train
  msqnet data check --format hmdb51 --root data/hmdb51/videos --annotations data/hmdb51 --split train --fold 2
  msqnet data check --format generic --annotations my_data/ --split train --sample 200 --json
exit status: 0 no problems, 1 problems found, 2 unusable arguments or config"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group with its ``check`` sub-command."""
    data = subparsers.add_parser("data", help="dataset tools (check annotations and videos, import BORIS projects)")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser(
        "check",
        help="parse annotations, count clips and classes, decode videos, list problems",
        description=__doc__.splitlines()[0],
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", help="YAML/JSON file (or training recipe name) whose `data:` section (or whole "
                                             "content) is a data config")
    p.add_argument("--format", choices=DATA_FORMATS, help="annotation format")
    p.add_argument("--root", help="folder holding the videos / frame folders")
    p.add_argument("--annotations", help="annotation file, or the folder holding the benchmark's annotation files")
    p.add_argument("--classes", help="class list file (generic; override elsewhere)")
    p.add_argument("--split", help="split to check (default: the only split, when there is one)")
    p.add_argument("--fold", type=int, help="numbered split: HMDB51 1-3, Hockey held-out test part")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="adapter option (value parsed as YAML), e.g. --option segments=true; repeatable")
    p.add_argument("--no-decode", action="store_true", help="check annotations only")
    p.add_argument("--sample", type=positive_int, metavar="N", help="decode only N videos, drawn at random (--seed)")
    p.add_argument("--full-decode", action="store_true", help="decode every frame (default: first, middle, last)")
    p.add_argument("--workers", type=positive_int, default=1, help="decoding threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample")
    p.add_argument("--json", action="store_true", help="print the report as JSON (stable schema) on stdout")
    p.set_defaults(func=_check)
    b = sub.add_parser(
        "import-boris",
        help="a BORIS project's coded state events as training clips in the generic format",
        description="Cut every media observation of a BORIS project (.boris / .boris.gz) at each START and STOP of "
                    "its state events into clips labelled with the behaviours going on, and write them as a "
                    "generic-format dataset: DIR/classes.txt, DIR/<split>.csv and DIR/media/ (links to the videos). "
                    "Train on it with data: {format: generic, annotations: DIR}.",
    )
    b.add_argument("project", help="the BORIS project file")
    b.add_argument("--out", required=True, help="folder to write the dataset to")
    b.add_argument("--split", default="train", help="name of the split file (default train)")
    b.add_argument("--min-seconds", type=float, default=0.5,
                   help="drop pieces shorter than this many seconds (default 0.5)")
    b.set_defaults(func=_import_boris)


def build_data_config(args: argparse.Namespace) -> DataConfig:
    """DataConfig from an optional config file, overridden by the command-line flags."""
    data: dict[str, Any] = {}
    where = "command line"
    if args.config:
        raw = read_config_file(recipe_file(args.config))
        section = raw.get("data")
        data = dict(section) if isinstance(section, dict) else dict(raw)
        where = f"{args.config}" + (": data" if isinstance(section, dict) else "")
    for key in ("format", "root", "annotations", "classes", "fold"):
        value = getattr(args, key)
        if value is not None:
            data[key] = value
    if args.option:
        options = dict(data.get("options") or {})
        for item in args.option:
            key, sep, value = item.partition("=")
            where = f"--option {quote(item)}"
            if not sep or not key.strip():
                raise ConfigError(f"{where}: expected KEY=VALUE")
            try:
                options[key.strip()] = parse_yaml(value, where) if value.strip() else ""
            except yaml.YAMLError as e:
                raise ConfigError(f"{where}: value is not valid YAML ({' '.join(str(e).split())})") from None
        data["options"] = options
    if "format" not in data:
        raise ConfigError(f"{where}: no dataset format; give a config file or --format (one of {list(DATA_FORMATS)})")
    try:
        return from_dict(DataConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _check(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset

    cfg = build_data_config(args)
    split = args.split
    if split is None:
        names = available_splits(cfg)
        if len(names) != 1:
            raise ConfigError(f"--split is required; {cfg.format} has splits {names}")
        split = names[0]
    report = check_dataset(
        cfg,
        split,
        decode=not args.no_decode,
        sample=args.sample,
        full=args.full_decode,
        workers=args.workers,
        seed=args.seed,
        progress=not args.json or sys.stderr.isatty(),
    )
    if args.json:
        sys.stdout.write(json_text(report.to_json(), indent=2) + "\n")
    else:
        print(report.summary())
    return 0 if report.ok else 1


def _import_boris(args: argparse.Namespace) -> int:
    from ..data.boris import import_boris

    if not args.min_seconds >= 0:
        raise ConfigError(f"--min-seconds: expected a non-negative number of seconds, got {args.min_seconds}")
    csv_path, clips, pj = import_boris(args.project, args.out, split=args.split, min_seconds=args.min_seconds)
    events = sum(len(o.events) for o in pj.observations)
    print(f"wrote {csv_path}: {clips} clips of {len(pj.behaviours)} behaviours from {events} state events in "
          f"{len(pj.observations)} observation(s)" + (f"; skipped {', '.join(pj.skipped)}" if pj.skipped else ""))
    return 0
