"""The ``msqnet`` command line: one sub-module per command group, each with ``register(subparsers)``.

Every command ends an error a user can cause (a bad file, value or setting) with one line on stderr,
``msqnet <command>: error: <what, where, what was expected>``, and exit status 2; ``--debug`` (or
``MSQNET_DEBUG=1``) adds the traceback. An error msqnet did not anticipate is reported the same way,
marked as an internal error, with exit status 3. Overrides (``key=value``) may follow the options.

Start-up: building the parser imports every command module, so those import the layers above data (models,
checkpoints, engine, inference: transformers) inside the functions that run a command, not at their top:
``msqnet --help`` takes 5.0 s of CPU here (torch, through ``msqnet.data``), ``import msqnet.inference`` 12 s.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback

from ..config_loader import ConfigError

__all__ = ["main", "build_parser", "describe_error", "DEBUG_ENV", "EXIT_ERROR", "EXIT_INTERNAL"]

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
    "msqnet.cli.evaluate",
    "msqnet.cli.share",
    "msqnet.cli.explain",
)
DEBUG_ENV = "MSQNET_DEBUG"
EXIT_ERROR = 2  # bad input, file or setting (argparse uses 2 for bad arguments too)
EXIT_INTERNAL = 3  # an error msqnet did not anticipate: a bug to report
EXIT_INTERRUPTED = 130
# A path longer than this in an OSError is not one a user typed (a config value taken for a file name):
# it is quoted as an excerpt, like every user value (``utils.quote``).
_LONGEST_PATH = 4096


def _leaf_parsers(parser: argparse.ArgumentParser):
    """Every parser that runs a command (sub-commands of sub-commands included)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
        return
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
            yield from _leaf_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="msqnet", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for leaf in _leaf_parsers(parser):
        # Accepted after the command too; SUPPRESS keeps the top-level value when absent here.
        leaf.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
        leaf.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help=f"show the traceback of an error (or set {DEBUG_ENV}=1)")
        takes_overrides = any(a.dest == "overrides" and not a.option_strings for a in leaf._actions)
        leaf.set_defaults(_parser=leaf, _takes_overrides=takes_overrides)
    return parser


def _quiet_third_party() -> None:
    """Keep HF's per-load progress bars and notices out of our output (errors still show)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    for name in ("httpx", "httpx2"):  # one INFO line per HTTP request (hub, web page) otherwise
        logging.getLogger(name).setLevel(logging.WARNING)


def _anticipated(e: BaseException) -> bool:
    """Whether ``e`` is an error a user can cause (bad input or setting), not a bug."""
    if isinstance(e, (ValueError, OSError, MemoryError, ConfigError)):
        return True
    import csv

    import torch
    import yaml

    from ..data.decode import DecodeError
    from ..engine.step import NonFiniteError

    return isinstance(e, (DecodeError, NonFiniteError, torch.OutOfMemoryError, yaml.YAMLError, csv.Error))


def _unwrap_worker_message(message: str) -> str:
    """The original message of an error re-raised from a DataLoader worker (which embeds its traceback)."""
    if not message.startswith("Caught ") or "Original Traceback" not in message:
        return message
    last = [line for line in message.splitlines() if line.strip()][-1]
    name, sep, rest = last.partition(": ")
    return rest if sep and " " not in name else last


def describe_error(e: BaseException) -> str:
    """One line saying what went wrong, where, and (where known) what was expected."""
    import torch

    if isinstance(e, (MemoryError, torch.OutOfMemoryError)):
        return ("out of memory: lower batch_size (or eval_batch_size / --batch-size), num_frames or image_size"
                + (f" ({e})" if str(e) else ""))
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        from ..utils import quote

        name = str(e.filename)
        message = f"{name if len(name) <= _LONGEST_PATH else quote(name)}: {e.strerror[0].lower()}{e.strerror[1:]}"
        if isinstance(e, IsADirectoryError):
            message += "; expected a file"
        elif isinstance(e, NotADirectoryError):
            message += "; expected a folder"
    else:
        message = _unwrap_worker_message(str(e)) or type(e).__name__
        if isinstance(e, KeyError):
            message = f"missing key {message}"
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``msqnet`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            leaf = getattr(args, "_parser", parser)
            if getattr(args, "_takes_overrides", False) and all("=" in x and not x.startswith("-") for x in extra):
                args.overrides = [*args.overrides, *extra]  # key=value after the options
            else:
                leaf.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # argparse has printed the usage and the error (or the help)
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    prog = getattr(args, "_parser", parser).prog
    debug = args.debug or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    _quiet_third_party()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # the one place every command's errors become one line
        if debug:
            traceback.print_exc()
        if _anticipated(e):
            print(f"{prog}: error: {describe_error(e)}", file=sys.stderr)
            return EXIT_ERROR
        hint = "" if debug else f"; rerun with --debug (or {DEBUG_ENV}=1) for the traceback"
        print(f"{prog}: error: internal error ({type(e).__name__}: {describe_error(e)}); please report it{hint}",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
