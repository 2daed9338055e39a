"""What a window holds, one variable at a time, and the figures every writer of it shares.

`Stats` is a window's running count, sum, min and max with their times (the
live path merges one reading at a time into it); `ROWS` is the series that
counts a window's rows; `window_head` starts a stored "windows" line;
`round6` rounds derived figures (means, sums) the way every path writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

# Quantities that accumulate: a sum over a window means something (rain in a day, energy in an hour).
SUMMED = frozenset({"precip_mm", "snow_mm", "energy_kwh"})
ROWS = "_rows"  # the stats key counting rows (any variable present) in a window

Scope = tuple[str, str]  # ("station", name) or (group spec, label values joined by "/")


@dataclass(slots=True)
class Stats:
    """Running count, sum, min and max (with their times) of one variable in one window."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    low_ts: float = 0.0
    high: float = -math.inf
    high_ts: float = 0.0
    late: int = 0

    def merge(self, count: int, total: float, low: float, low_ts: float, high: float, high_ts: float,
              late: int) -> None:
        self.count += count
        self.total += total
        # Ties keep the earlier time: "max gust 25 m/s at 14:50" names its first occurrence.
        if low < self.low or (low == self.low and low_ts < self.low_ts):
            self.low, self.low_ts = low, low_ts
        if high > self.high or (high == self.high and high_ts < self.high_ts):
            self.high, self.high_ts = high, high_ts
        self.late += late


# A Stats' figures as one tuple, in `Stats.merge`'s order.
FIGURES = attrgetter("count", "total", "low", "low_ts", "high", "high_ts", "late")


def window_head(scope: Scope, wname: str, width: float) -> dict[str, Any]:
    """The first fields of a stored "windows" line of `scope`'s `wname` windows (`width` seconds)."""
    head: dict[str, Any] = {"kind": "windows", "window": wname, "scope": scope[0], "key": scope[1]}
    if scope[0] == "station":
        head["station"] = scope[1]
    return head


def round6(value: float) -> float:
    """Derived figures (means, sums, ranges) to 6 decimals: no binary-fraction noise like 5.400000000000091.

    The arithmetic of `np.round(x, 6)` (scale, round half to even, unscale), so one reading at a
    time and a batch write the same numbers; but a result of 0 is 0.0 here (round() gives the
    integer 0) where numpy keeps -0.0: `np.round(x, 6) + 0.0` is this a column at a time."""
    return round(value * 1e6) / 1e6
