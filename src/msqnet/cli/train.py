"""``msqnet train``: run a training config (a file or a packaged recipe) to the end, or resume it."""
from __future__ import annotations

import argparse
import os



def _train(args: argparse.Namespace) -> int:
    from ..engine.config import load_train_config
    from ..engine.trainer import train

    cfg = load_train_config(args.config, args.overrides)
    result = train(cfg, resume=args.resume, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(result.summary())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``."""
    p = subparsers.add_parser(
        "train", help="train a model from a training config",
        description="Train MSQNet from a training config: a file, or a packaged recipe by name (msqnet presets "
                    "lists them). Launch under torchrun for DDP: torchrun --nproc_per_node N $(which msqnet) train "
                    "CONFIG.",
    )
    p.add_argument("config", metavar="CONFIG", help="training config file (YAML/JSON) or recipe name")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. epochs=5 optim.lr=0.0001 data.root=/data/ak")
    p.add_argument("--resume", metavar="auto|PATH",
                   help="'auto': continue the newest valid training state in output_dir (or start new); "
                        "PATH: a training state folder or run folder")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of progress bars")
    p.set_defaults(func=_train)
