"""Durations written as Prometheus writes them: `90s`, `10m`, `6h`, `1h30m`, `2d`, `1w`.

The units are Prometheus' (`model.ParseDuration`: ms, s, m, h, d, w, y with
d = 24 h, w = 7 d, y = 365 d), largest first, each at most once. A plain
number is taken as seconds, so TOML may also say `for = 600`.
"""

from __future__ import annotations

import math
import re

UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")
_ORDER = list(UNITS)


class DurationError(ValueError):
    pass


def parse_duration(value: object) -> float:
    """Seconds (>= 0) from `"10m"`, `"1h30m"` or a number of seconds. Raises DurationError."""
    if isinstance(value, bool):
        raise DurationError(f"{value!r}: expected a duration such as 10m, 6h or 1h30m")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise DurationError(f"{value!r}: expected a duration >= 0")
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise DurationError(f"{value!r}: expected a duration such as 10m, 6h or 1h30m")
    text = value.strip()
    pos, total, last = 0, 0.0, -1
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        rank = _ORDER.index(m.group(2))
        if rank <= last:
            raise DurationError(f"{value!r}: units must go from largest to smallest, each once (e.g. 1h30m)")
        last = rank
        total += float(m.group(1)) * UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise DurationError(f"{value!r}: expected a duration such as 10m, 6h or 1h30m (units ms s m h d w y)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest Prometheus form: 5400 -> "1h30m", 0 -> "0s"."""
    if seconds <= 0:
        return "0s"
    out, left = [], round(seconds)
    for unit in ("d", "h", "m", "s"):
        n, left = divmod(left, int(UNITS[unit]))
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or f"{seconds:g}s"
