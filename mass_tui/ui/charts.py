"""Chart data for the panes: reduction to the plot's width, threshold "what-if", units.

Pure functions (numpy only), so they are tested without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.ensemble import EnsembleParams


def reduce_minmax(t: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """At most 2 points per column (the min and the max), in time order.

    A plotext chart of 2,000 raw points costs tens of milliseconds; a chart
    is only `columns` characters wide, so the min and max of each column keep
    every spike visible at a fraction of the cost.
    """
    n = t.size
    if n <= 2 * columns or columns < 1:
        return t, y
    edges = np.linspace(0, n, columns + 1).astype(int)
    idx = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        seg = y[lo:hi]
        if np.all(np.isnan(seg)):
            continue
        a, b = lo + int(np.nanargmin(seg)), lo + int(np.nanargmax(seg))
        idx.extend(sorted({a, b}))
    keep = np.array(idx, dtype=int)
    return t[keep], y[keep]


BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: np.ndarray, width: int) -> str:
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
        return BLOCKS[3] * v.size
    levels = np.clip(((v - lo) / (hi - lo) * (len(BLOCKS) - 1)).round().astype(int), 0, len(BLOCKS) - 1)
    return "".join(BLOCKS[i] for i in levels)


@dataclass(frozen=True)
class Thresholds:
    z: float
    h: float
    burst: float = 3.0


def what_if_scores(spike_z: np.ndarray, level_z: np.ndarray, cusum: np.ndarray, burst: np.ndarray,
                   th: Thresholds, params: EnsembleParams, drift: np.ndarray | None = None) -> np.ndarray:
    """The ensemble's combined score each point would have had under other z and h.

    The drift view (an EWMA chart whose limit L has no key) keeps its
    recorded weighted score; the other views are recomputed from their statistics.
    """
    parts = np.vstack((
        np.abs(spike_z) * params.weight_spike / th.z,
        np.abs(level_z) * params.weight_level / th.z,
        cusum * params.weight_shift / th.h,
        burst * params.weight_burst / th.burst,
        np.zeros(len(spike_z)) if drift is None else drift,
    ))
    return np.nan_to_num(parts, nan=0.0).max(axis=0)


UNITS_IMPERIAL = {
    "°C": ("°F", lambda v: v * 9.0 / 5.0 + 32.0),
    "m/s": ("mph", lambda v: v / 0.44704),
    "mm": ("in", lambda v: v / 25.4),
    "hPa": ("inHg", lambda v: v * 0.0295300),
}


def to_units(values: np.ndarray | float, unit: str, imperial: bool):
    """(values, unit) in the chosen system; metric is the stored one."""
    if not imperial or unit not in UNITS_IMPERIAL:
        return values, unit
    new_unit, convert = UNITS_IMPERIAL[unit]
    return convert(values), new_unit
