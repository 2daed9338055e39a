"""One variable's chart as lines of text: readings, forecast, band, anomaly marks, a marked moment.

What is drawn: the window of data time; the y axis set by the readings
alone, with ticks on whole rows at round values (the band and the forecast
are drawn only inside it, so they never squash the readings nor set the
scale, and a gust axis never goes below 0); dates on the x axis; no legend
inside the plot (`legend()` gives one line to put under it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.text import Text

from mass_tui.live_state import COL
from mass_tui.ui.charts import Window, nice_step, tick_label, time_ticks
from mass_tui.ui.look import Look
from mass_tui.ui.raster import Canvas
from mass_tui.ui.units import spread_units, to_units
from sources.variables import REGISTRY

AXIS_ROWS = 2  # the x axis and its labels


@dataclass(frozen=True)
class ChartSpec:
    variable: str
    width: int
    height: int
    z: float
    imperial: bool
    window: Window
    focus_ts: float | None = None  # a moment to mark (an anomaly being looked at)


def even_axis(lo: float, hi: float, rows: int, max_ticks: int = 6) -> tuple[float, float, float, int]:
    """(low, high, step, rows used) of a y axis over [lo, hi] whose ticks fall on whole rows.

    `low` is drawn on the bottom row and `high` on the top one, so a tick
    every (rows - 1) / k rows is exact when k divides rows - 1. Every k of
    up to `max_ticks - 1` intervals is tried on `rows` and on one or two
    rows less (left blank above the plot); the tightest nice range wins
    (with a little weight for k near 4 and for each spare row, more
    against a lone interval)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0, 0.5, rows
    if hi - lo < 1e-9 * max(1.0, abs(hi)):
        pad = max(abs(hi) * 0.01, 0.5)
        lo, hi = lo - pad, hi + pad
    best: tuple[float, int, float, float, float, int] | None = None
    for used in (rows, rows - 1, rows - 2):
        choices = [k for k in range(2, max_ticks) if used > 1 and (used - 1) % k == 0] or [1]
        tol = (hi - lo) * 1e-7  # data this close to a tick is on it
        for k in choices:
            step = nice_step(hi - lo, k)
            low = math.floor((lo + tol) / step) * step
            for _ in range(12):
                low = math.floor((lo + tol) / step) * step
                if low + k * step >= hi - tol:
                    break
                step = nice_step(step * 1.05 * k, k)  # the next nice step up
            # The range wasted, a little for ticks far from 4, much for a lone interval.
            cost = (k * step) / (hi - lo) + 0.1 * abs(k - 4) / 4 + (0.5 if k == 1 else 0.0) + 0.08 * (rows - used)
            cand = (round(cost, 9), rows - used, low, low + k * step, step, used)
            if best is None or cand[:2] < best[:2]:
                best = cand
    assert best is not None
    return best[2], best[3], best[4], best[5]


def window_rows(rows: np.ndarray, window: Window) -> tuple[np.ndarray, float, float]:
    """The rows inside the window and the window's (t0, t1)."""
    t = rows[:, COL["ts"]]
    t0, t1 = window.bounds(float(t[0]), float(t[-1]))
    lo, hi = int(np.searchsorted(t, t0, side="left")), int(np.searchsorted(t, t1, side="right"))
    return rows[lo:hi], t0, t1


def build(rows: np.ndarray, spec: ChartSpec, look: Look) -> list[Text] | None:
    """The chart's `spec.height` lines, or None when the window holds fewer than two readings."""
    if rows.shape[0] < 2:
        return None
    rows, t0, t1 = window_rows(rows, spec.window)
    if rows.shape[0] < 2 or t1 <= t0:
        return None
    var = REGISTRY.get(spec.variable)
    unit = var.unit if var else ""
    t = rows[:, COL["ts"]]
    value, _ = to_units(rows[:, COL["value"]], unit, spec.imperial)
    finite = value[np.isfinite(value)]
    if finite.size == 0:
        return None
    low, high, step, plot_rows = even_axis(float(finite.min()), float(finite.max()), max(2, spec.height - AXIS_ROWS))
    spare = max(2, spec.height - AXIS_ROWS) - plot_rows
    if var is not None:  # never an axis past what the quantity can be (a gust below 0)
        phys_lo, _ = to_units(var.low, unit, spec.imperial)
        phys_hi, _ = to_units(var.high, unit, spec.imperial)
        low, high = max(low, min(phys_lo, float(finite.min()))), min(high, max(phys_hi, float(finite.max())))
    ticks = [low + i * step for i in range(int(round((high - low) / step)) + 1) if low + i * step <= high + 1e-9]
    labels = [tick_label(v, step) for v in ticks]
    label_width = max(len(s) for s in labels)
    cols = max(1, spec.width - label_width - 1)  # the labels, the axis and the plot: never past spec.width
    canvas = Canvas(cols, plot_rows, t0, t1, low, high, look.glyphs)

    forecast, _ = to_units(rows[:, COL["forecast"]], unit, spec.imperial)
    mean, _ = to_units(rows[:, COL["mean"]], unit, spec.imperial)
    sigma, _ = spread_units(rows[:, COL["sigma"]], unit, spec.imperial)
    band_style = "dim" if not look.color else f"dim {look.series_color('band')}"
    ok = np.isfinite(mean) & np.isfinite(sigma)
    for sign in (1.0, -1.0):
        # Dots, and only inside the axis: a band wider than the readings is not drawn along the frame.
        band = mean + sign * spec.z * sigma
        inside = ok & (band >= low) & (band <= high)
        if inside.any():
            canvas.points(t[inside], band[inside], band_style, char=".")
    good_f = np.isfinite(forecast) & (forecast >= low) & (forecast <= high)
    if good_f.sum() >= 2:
        canvas.line(t[good_f], forecast[good_f], _colour(look, "forecast"), char="+")
    canvas.line(t, value, _colour(look, "value"), char="*")
    flagged = np.isfinite(value) & ((rows[:, COL["score"]] >= 0.5) | (rows[:, COL["rules"]] >= 1.0))
    if flagged.any():
        canvas.mark(t[flagged], value[flagged], look.anomaly_marker, "bold " + _colour(look, "mark"))
    if spec.focus_ts is not None and t0 <= spec.focus_ts <= t1:
        focus_style = "bold reverse" if not look.color else "bold yellow"
        canvas.guide(spec.focus_ts, "yellow" if look.color else "dim")
        near = int(np.argmin(np.abs(t - spec.focus_ts)))
        if np.isfinite(value[near]):
            canvas.mark(np.array([t[near]]), np.array([value[near]]),
                        "◆" if look.glyphs == "braille" else "O", focus_style)
    body = canvas.render()

    # The y axis: a label on the row of each tick.
    sx, sy = canvas.sub
    tick_rows = {}
    for v, s in zip(ticks, labels, strict=True):
        r = int((high - v) / max(high - low, 1e-12) * (plot_rows * sy - 1) // sy)
        tick_rows[min(max(r, 0), plot_rows - 1)] = s
    vbar, tick, corner, hbar, up = ("│", "┤", "└", "─", "┬") if look.glyphs != "ascii" else ("|", "+", "+", "-", "+")
    lines = [Text(" " * label_width + vbar, style="dim", no_wrap=True)] * spare
    for r, row in enumerate(body):
        label = tick_rows.get(r, "")
        lines.append(Text.assemble((label.rjust(label_width), "dim"), (tick if label else vbar, "dim"), row,
                                   no_wrap=True))
    # The x axis: a mark and a label at each round time, labels never overlapping.
    axis = [hbar] * cols
    label_line = [" "] * (label_width + 1 + cols)
    taken_until = -1
    for x, text in time_ticks(t0, t1, max(2, min(8, cols // 14))):
        col = int(round((x - t0) / (t1 - t0) * (cols * sx - 1))) // sx
        if not 0 <= col < cols:
            continue
        start = label_width + 1 + col - len(text) // 2
        start = max(0, min(start, len(label_line) - len(text)))
        if start <= taken_until:
            continue
        axis[col] = up
        label_line[start : start + len(text)] = list(text)
        taken_until = start + len(text)
    lines.append(Text(" " * label_width + corner + "".join(axis), style="dim", no_wrap=True))
    lines.append(Text("".join(label_line), style="dim", no_wrap=True))
    return lines


def _colour(look: Look, name: str) -> str:
    c = look.series_color(name)
    return "" if c == "default" else c


def legend(variable: str, z: float, imperial: bool, look: Look, width: int | None = None) -> Text:
    """One line under the chart naming what each mark is (a legend inside the plot hides data), at most
    `width` cells: the entries that do not fit are left out, the readings' first."""
    var = REGISTRY.get(variable)
    _, unit = to_units(0.0, var.unit if var else "", imperial)
    ascii_only = look.glyphs == "ascii"
    line = "──" if not ascii_only else "**"
    fc = "──" if not ascii_only else "++"
    dots = "··" if not ascii_only else ".."
    band = f"usual range (mean ± {z:g}σ)" if not ascii_only else f"usual range (mean +/- {z:g} sd)"
    out = Text(no_wrap=True, overflow="ellipsis")
    for mark, name, style in (
        (line, f"reading{f' ({unit})' if unit else ''}", _colour(look, "value")),
        (fc, "forecast", _colour(look, "forecast")),
        (dots, band, "dim" if not look.color else f"dim {_colour(look, 'band')}"),
        (look.anomaly_marker, "anomaly", "bold " + _colour(look, "mark")),
    ):
        piece = Text.assemble((mark, style.strip() or None), (f" {name}", "dim"))
        gap = 3 if out.cell_len else 0
        if width is not None and out.cell_len + gap + piece.cell_len > width:
            continue
        out.append(" " * gap)
        out.append_text(piece)
    return out
