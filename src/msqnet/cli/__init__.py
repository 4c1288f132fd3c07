"""The ``msqnet`` command line: one sub-module per command group, each with ``register(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..config import ConfigError

# Each module defines ``register(subparsers)`` that adds its sub-command(s) and sets ``func``.
COMMAND_MODULES = (
    "msqnet.cli.demo",
    "msqnet.cli.model_cmds",
    "msqnet.cli.export",
    "msqnet.cli.predict",
    "msqnet.cli.score",
    "msqnet.cli.synth",
    "msqnet.cli.data",
    "msqnet.cli.train",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="msqnet", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _quiet_third_party() -> None:
    """Keep HF's per-load progress bars and notices out of our output (errors still show)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``msqnet`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    _quiet_third_party()
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"msqnet {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
