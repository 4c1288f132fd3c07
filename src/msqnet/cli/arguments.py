"""Arguments shared by the commands: numbers checked when parsed, and the test-view options.

Numbers are checked when parsed, so ``--batch-size 0`` or ``--window inf`` are refused up front
(``msqnet <cmd>: error: argument --window: ...``).
"""
from __future__ import annotations

import argparse
import math
import typing

from ..data.config import Aggregate, Crops
from ..utils import quote

__all__ = ["device_name", "positive_int", "nonnegative_int", "port_number", "positive_float", "finite_float",
           "add_view_arguments", "view_changes"]


def _number(kind: type, text: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {quote(text)}") from None


def finite_float(text: str) -> float:
    """A finite number (no NaN or infinity)."""
    value = _number(float, text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {quote(text)}")
    return value


def positive_float(text: str) -> float:
    """A finite number above zero."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {quote(text)}")
    return value


def _int_at_least(text: str, low: int) -> int:
    value = _number(int, text)
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {quote(text)}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0)


def device_name(text: str) -> str:
    """A device msqnet runs on (``auto``, ``cpu``, ``cuda``, ``cuda:N``): :func:`msqnet.hardware.parse_device`."""
    from ..hardware import parse_device

    try:
        return parse_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def port_number(text: str) -> int:
    """A TCP port, 0..65535 (0: any free one)."""
    value = nonnegative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0..65535, got {quote(text)}")
    return value


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    """``--test-clips`` / ``--test-crops`` / ``--aggregate``: change the checkpoint's recorded test view."""
    parser.add_argument("--test-clips", type=positive_int,
                        help="temporal views per video (default: the checkpoint's test view)")
    parser.add_argument("--test-crops", type=int, choices=typing.get_args(Crops),
                        help="spatial views per temporal view (default: the checkpoint's test view)")
    parser.add_argument("--aggregate", choices=typing.get_args(Aggregate),
                        help="how view scores are combined (default: the checkpoint's test view)")


def view_changes(args: argparse.Namespace) -> dict[str, object]:
    """The test-view fields the command line changes (``--test-clips`` / ``--test-crops`` / ``--aggregate``)."""
    return {"clips": args.test_clips, "crops": args.test_crops, "aggregate": args.aggregate}
