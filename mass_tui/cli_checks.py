"""Checks of command-line values, as argparse `type=` functions: a bad flag is a usage error (exit 2)
in one line naming the flag, the value and what is expected, before anything starts.

argparse prints `mass run: error: argument --speed: nan: expected a number from 0.01 to 10000000`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

# The slowest pace a replay takes: a recorded minute in 100 minutes. Slower is a typo (1e-300 would sleep
# for longer than the universe has existed) rather than a wish.
MIN_SPEED, MAX_SPEED = 0.01, 1e7
# A run bounded by --max-seconds stops within a year; more is unbounded, which is the default anyway.
MAX_SECONDS = 366 * 86400.0
MAX_MESSAGES = 10**12


def number(low: float, high: float, *, integer: bool = False, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] ((low, high] with `low_open`), an int with `integer`."""
    kind = "an integer" if integer else "a number"
    what = f"{kind} above {_plain(low)}, at most {_plain(high)}" if low_open else \
        f"{kind} from {_plain(low)} to {_plain(high)}"

    def parse(text: str) -> float:
        try:
            value: float = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}")
        return value

    return parse


def _plain(x: float) -> str:
    """10000000, not 1e+07: what a user types."""
    return str(int(x)) if x == int(x) else f"{x:g}"


speed = number(MIN_SPEED, MAX_SPEED)
max_seconds = number(0.0, MAX_SECONDS, low_open=True)
max_messages = number(1, MAX_MESSAGES, integer=True)
port = number(1, 65535, integer=True)


def time_flag(text: str) -> float:
    """An argparse type: an ISO 8601 time (or epoch seconds) within the plausible span, as epoch seconds."""
    from sources.schema import InvalidMessage, parse_time

    try:
        return parse_time(text)
    except InvalidMessage as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}; expected an ISO 8601 time such as 2012-10-29T12:00:00Z"
                                         ) from None


def source_name(text: str) -> str:
    """An argparse type: one of the sources `mass_tui.pipeline.make_source` knows."""
    from mass_tui.pipeline import SOURCES

    if text not in SOURCES:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(SOURCES)}")
    return text
