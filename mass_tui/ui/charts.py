"""Chart data for the panes: reduction to the plot's width, axes, time window, threshold "what-if".

Pure functions (numpy only), so they are tested without a terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from mass_tui.ui.units import to_units  # noqa: F401 - re-exported: callers used to find it here


def reduce_minmax(t: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """At most 2 points per column (the min and the max), in time order; NaN readings dropped.

    Drawing 2,000 raw points into a chart costs far more than drawing 2 per column; a chart
    is only `columns` characters wide, so the min and max of each column keep
    every spike visible at a fraction of the cost.
    """
    good = np.isfinite(y)
    if not good.all():
        t, y = t[good], y[good]
    n = t.size
    if n <= 2 * columns or columns < 1:
        return t, y
    column = (np.arange(n) * columns) // n  # equal counts per column, as the points come
    order = np.lexsort((y, column))  # by column, then by value within it
    col_sorted = column[order]
    starts = np.flatnonzero(np.r_[True, col_sorted[1:] != col_sorted[:-1]])
    ends = np.r_[starts[1:], n] - 1
    keep = np.unique(np.concatenate((order[starts], order[ends])))  # unique sorts: time order again
    return t[keep], y[keep]


BLOCKS = "▁▂▃▄▅▆▇█"
ASCII_LEVELS = "_.-~=+*#"  # where the terminal's font has no block elements (the Linux console)


def sparkline(values: np.ndarray, width: int, levels: str = BLOCKS) -> str:
    """One line of block characters, the max of each column; one style for the whole line.

    Textual's Sparkline colours every cell on its own, and each colour change
    is bytes on the wire: a plain string keeps a 4 Hz repaint light over SSH.
    """
    v = values[np.isfinite(values)]
    if v.size == 0 or width < 1:
        return ""
    if v.size > width:
        edges = np.linspace(0, v.size, width + 1).astype(int)
        v = np.maximum.reduceat(v, edges[:-1])
    lo, hi = float(v.min()), float(v.max())
    if hi == lo:
        return levels[3] * v.size
    top = len(levels) - 1
    idx = np.clip(((v - lo) / (hi - lo) * top).round().astype(int), 0, top)
    return "".join(levels[i] for i in idx)


def nice_step(span: float, count: int) -> float:
    """A step of 1, 2, 2.5 or 5 × 10^k giving about `count` intervals over `span` (Heckbert, "Nice
    numbers for graph labels", Graphics Gems, 1990)."""
    if not math.isfinite(span) or span <= 0:
        return 1.0
    raw = span / max(1, count)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag * (1 + 1e-9):
            return m * mag
    return 10.0 * mag


def y_axis(values: np.ndarray, physical: tuple[float, float] | None = None,
           ticks: int = 4) -> tuple[float, float, list[float]]:
    """(low, high, ticks) of a y axis from the data alone: the limits are the ticks just outside the
    data, evenly spaced, and never outside the variable's physical range (a gust axis stops at 0).

    The band and the forecast are drawn inside these limits (clipped), so they never squash the
    readings nor set the scale."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0, 1.0, [0.0, 1.0]
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-9 * max(1.0, abs(hi)):
        pad = max(abs(hi) * 0.01, 0.5)
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, ticks)
    low = math.floor(lo / step + 1e-9) * step
    high = math.ceil(hi / step - 1e-9) * step
    if physical is not None:
        low, high = max(low, physical[0]), min(high, physical[1])
    first = math.ceil(low / step - 1e-9) * step
    marks = [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]
    return low, high, marks


def tick_label(value: float, step: float) -> str:
    """A tick's label with as many decimals as the step needs, so every label has the same form."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    if step * 10 ** decimals % 1 > 1e-6:  # 2.5, 0.25: one more
        decimals += 1
    return f"{value:.{decimals}f}"


_TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600,
               2592000, 7776000, 31536000)


def time_ticks(t0: float, t1: float, count: int = 4) -> list[tuple[float, str]]:
    """(time, label) ticks on round local times, with the date on the first tick and wherever the
    day changes ("10-28 18:00", "21:00", "10-29 00:00"); dates alone for spans of days."""
    span = max(t1 - t0, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    offset = datetime.fromtimestamp(t0).astimezone().utcoffset()
    shift = offset.total_seconds() if offset else 0.0
    first = math.ceil((t0 + shift) / step) * step - shift
    out: list[tuple[float, str]] = []
    last_day = None
    t = first
    while t <= t1 + 1e-6 and len(out) < count + 2:
        local = datetime.fromtimestamp(t).astimezone()
        day = local.strftime("%m-%d")
        if step >= 86400:
            label = day
        elif day != last_day:
            label = local.strftime("%m-%d %H:%M")
        else:
            label = local.strftime("%H:%M")
        out.append((t, label))
        last_day = day
        t += step
    return out


@dataclass(frozen=True)
class Window:
    """The span of data time a chart shows: `end` None follows the newest reading (live);
    `span` None shows everything kept."""

    end: float | None = None
    span: float | None = None

    @property
    def live(self) -> bool:
        return self.end is None

    def bounds(self, first: float, last: float) -> tuple[float, float]:
        """(t0, t1) of the window over data that runs from `first` to `last`."""
        end = last if self.end is None else min(self.end, last)
        span = self.span if self.span is not None else max(last - first, 1.0)
        return end - span, end

    def zoom(self, factor: float, first: float, last: float) -> Window:
        """Narrower (factor < 1) or wider, keeping the right edge; wider than the data shows it all."""
        t0, t1 = self.bounds(first, last)
        span = (t1 - t0) * factor
        if span >= last - first:
            return Window(self.end, None)
        return Window(self.end, max(span, 60.0))

    def pan(self, fraction: float, first: float, last: float) -> Window:
        """Earlier (fraction < 0) or later by a fraction of the span; reaching the newest goes live."""
        t0, t1 = self.bounds(first, last)
        end = t1 + (t1 - t0) * fraction
        if end >= last:
            return Window(None, self.span)
        return Window(max(end, first + (t1 - t0)), self.span if self.span is not None else t1 - t0)

    def around(self, ts: float, first: float, last: float) -> Window:
        """The same span (a quarter of the data when showing all) centred on `ts`."""
        span = self.span if self.span is not None else max((last - first) / 4, 3600.0)
        end = ts + span / 2
        return Window(None if end >= last else end, span)


def episode_window(start: float, end: float, peak: float, first: float, last: float,
                   min_span: float = 6 * 3600.0) -> Window:
    """The window showing an episode: its span from `start` to `end` (and its `peak`) with a quarter
    of that span on each side, at least `min_span` seconds, centred on the episode (all data times,
    epoch seconds). The data runs from `first` to `last`: a window reaching past `last` ends there
    (live), and `Window.bounds` keeps the whole span on screen, so the peak is always inside it."""
    lo, hi = min(start, peak), max(end, peak)
    pad = max((hi - lo) / 4, (min_span - (hi - lo)) / 2, 0.0)
    span = hi - lo + 2 * pad
    stop = hi + pad
    if stop >= last:
        return Window(None, span)
    return Window(max(stop, first + span), span)
