"""Meteorological and threshold rules, with the same batch API as the detectors.

Rules use maxima, minima and single subtractions only, so their results do
not depend on how a series is chunked either.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from detectors._blocks import FloatArray
from detectors.base import Detector


@lru_cache(maxsize=1024)
def format_duration(seconds: float) -> str:
    """"2 h 30 min", "45 min", "3 h": to the minute. Cached: a rule's reasons repeat a few spans."""
    minutes = int(round(seconds / 60.0))
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def _require_times(name: str, t: FloatArray | None, n: int) -> FloatArray:
    if t is None or t.size != n:
        raise ValueError(f"{name} needs one timestamp per value")
    return t


def _best_of_spans(v: FloatArray, longest: int, better: np.ufunc) -> tuple[list[np.ndarray], list[FloatArray]]:
    """A sparse table: level k holds, for each i, the position and value of the best of
    v[i : i + 2**k] (the first of equal ones, as argmax/argmin pick)."""
    pos = [np.arange(v.size)]
    val = [v]
    span = 1
    while span * 2 <= longest:
        take_first = better(val[-1][:-span], val[-1][span:])
        pos.append(np.where(take_first, pos[-1][:-span], pos[-1][span:]))
        val.append(np.where(take_first, val[-1][:-span], val[-1][span:]))
        span *= 2
    return pos, val


#: windows of up to this many readings are searched a position at a time (hourly data, a few
#: hours): fewer passes than the sparse table's levels and gathers
NARROW = 8


def _narrow_extremes(v: FloatArray, idx: np.ndarray, length: np.ndarray, longest: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per i, the position of the first highest and of the first lowest of v[idx_i - length_i : idx_i]
    (idx_i where the window is empty): its positions visited in order, a later one taken only when
    strictly beyond."""
    hi_pos = idx - length
    hi_val = v[hi_pos]
    lo_pos, lo_val = hi_pos.copy(), hi_val.copy()
    for d in range(longest - 1, 0, -1):
        pos = idx - d
        inside = length > d  # later than the window's first position, before idx
        cand = v[np.maximum(pos, 0)]
        up = inside & (cand > hi_val)
        hi_pos = np.where(up, pos, hi_pos)
        hi_val = np.where(up, cand, hi_val)
        down = inside & (cand < lo_val)
        lo_pos = np.where(down, pos, lo_pos)
        lo_val = np.where(down, cand, lo_val)
    return hi_pos, lo_pos


def window_extremes(
    t: FloatArray, v: FloatArray, first: np.ndarray, idx: np.ndarray, narrow: int = NARROW
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """For each i: how far v[idx_i] lies below the highest and above the lowest of
    v[first_i : idx_i], and how long before idx_i that extreme was (fall, fall_dt, rise, rise_dt);
    zeros where the window is empty. The extreme is the first of equal ones.

    Each window is two overlapping power-of-two spans of a sparse table, so the cost
    is n log(width), not n * width: a 3 h window of 1-min data is 180 wide. Windows of at most
    `narrow` readings are searched a position at a time instead (the same extremes).
    """
    n = idx.size
    fall, fall_dt, rise, rise_dt = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    length = idx - first
    longest = int(length.max(initial=0))
    if longest == 0:
        return fall, fall_dt, rise, rise_dt
    if longest <= narrow:
        hi_all, lo_all = _narrow_extremes(v, idx, length, longest)
        rows = np.flatnonzero(length > 0)
        end = idx[rows]
        _changes(v, t, rows, end, hi_all[rows], lo_all[rows], fall, fall_dt, rise, rise_dt)
        return fall, fall_dt, rise, rise_dt
    hi_pos, hi_val = _best_of_spans(v, longest, np.greater_equal)
    lo_pos, lo_val = _best_of_spans(v, longest, np.less_equal)
    rows = np.flatnonzero(length > 0)
    start, end = first[rows], idx[rows]
    level = np.frexp(length[rows].astype(np.float64))[1] - 1  # floor(log2), exact for integers
    best_hi = np.empty(rows.size, dtype=np.int64)
    best_lo = np.empty(rows.size, dtype=np.int64)
    low, high = int(level.min()), int(level.max())
    for k in range(low, high + 1):
        sel = np.flatnonzero(level == k) if low < high else slice(None)
        a, b = start[sel], end[sel] - (1 << k)
        best_hi[sel] = np.where(hi_val[k][a] >= hi_val[k][b], hi_pos[k][a], hi_pos[k][b])
        best_lo[sel] = np.where(lo_val[k][a] <= lo_val[k][b], lo_pos[k][a], lo_pos[k][b])
    _changes(v, t, rows, end, best_hi, best_lo, fall, fall_dt, rise, rise_dt)
    return fall, fall_dt, rise, rise_dt


def _changes(v: np.ndarray, t: np.ndarray, rows: np.ndarray, end: np.ndarray, best_hi: np.ndarray,
             best_lo: np.ndarray, fall: np.ndarray, fall_dt: np.ndarray, rise: np.ndarray,
             rise_dt: np.ndarray) -> None:
    """Fill rows' fall from the window's highest and rise from its lowest reading, and their spans."""
    now = v[end]
    fall[rows] = v[best_hi] - now
    rise[rows] = now - v[best_lo]
    fall_dt[rows] = t[end] - t[best_hi]
    rise_dt[rows] = t[end] - t[best_lo]


class PressureTendency(Detector):
    """A fall (or rise) of `drop_hpa` within `hours`, measured from the highest
    (lowest) reading in that span, not from the previous sample.

    The score is the fall divided by `drop_hpa`, so 1.0 means "fell 3 hPa in
    3 h" with the defaults.
    """

    name = "pressure_tendency"
    threshold_name = "drop_hpa"

    def __init__(self, drop_hpa: float = 3.0, hours: float = 3.0, rise_hpa: float | None = None):
        super().__init__()
        self.drop_hpa = float(drop_hpa)
        self.rise_hpa = float(rise_hpa) if rise_hpa else None
        self.span = float(hours) * 3600.0
        # The readings of the last `span` seconds, the newest included (doubles: 8 bytes each).
        self._t = array("d")
        self._v = array("d")

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        t = _require_times(self.name, t, x.size)
        n = x.size
        if n == 0:
            return np.zeros(0)
        # A clock that steps back must not make the window search wrong.
        last = self._t[-1] if self._t else -np.inf
        t = np.maximum.accumulate(np.maximum(t, last))
        all_t = np.concatenate((np.frombuffer(self._t), t)) if self._t else t
        all_v = np.concatenate((np.frombuffer(self._v), x)) if self._v else x
        m0 = len(self._t)
        idx = np.arange(m0, m0 + n)
        first = np.searchsorted(all_t, all_t[idx] - self.span, side="left")
        fall, fall_dt, rise, rise_dt = window_extremes(all_t, all_v, first, idx)
        keep = all_t >= all_t[-1] - self.span
        self._t, self._v = array("d", all_t[keep].tobytes()), array("d", all_v[keep].tobytes())
        score = fall / self.drop_hpa
        if self.rise_hpa:
            score = np.maximum(score, rise / self.rise_hpa)
        self.detail = {"fall": fall, "fall_dt": fall_dt, "rise": rise, "rise_dt": rise_dt}
        return np.maximum(score, 0.0)

    def _step_one(self, x: float, t: float | None) -> float:
        if t is None:
            raise ValueError(f"{self.name} needs one timestamp per value")
        last = self._t[-1] if self._t else -np.inf
        t = t if t >= last else last
        since = t - self.span
        hi_v, lo_v = -np.inf, np.inf
        hi_t = lo_t = t
        for tj, vj in zip(self._t, self._v, strict=True):
            if tj >= since:
                if vj > hi_v:  # the first of equal extremes, as argmax/argmin
                    hi_v, hi_t = vj, tj
                if vj < lo_v:
                    lo_v, lo_t = vj, tj
        empty = hi_v == -np.inf
        fall = 0.0 if empty else hi_v - x
        rise = 0.0 if empty else x - lo_v
        self.detail = {
            "fall": [fall], "fall_dt": [0.0 if empty else t - hi_t],
            "rise": [rise], "rise_dt": [0.0 if empty else t - lo_t],
        }
        self._t.append(t)
        self._v.append(x)
        drop = 0
        while self._t[drop] < since:
            drop += 1
        if drop:
            del self._t[:drop], self._v[:drop]
        score = fall / self.drop_hpa
        if self.rise_hpa:
            other = rise / self.rise_hpa
            score = score if score >= other else other
        return score if score >= 0.0 else 0.0

    def reason(self, i: int, value: float, unit: str) -> str:
        fall, rise = self.detail["fall"][i], self.detail["rise"][i]
        if self.rise_hpa and rise / self.rise_hpa > fall / self.drop_hpa:
            return f"pressure rose {rise:.1f} hPa in {format_duration(self.detail['rise_dt'][i])}"
        return f"pressure fell {fall:.1f} hPa in {format_duration(self.detail['fall_dt'][i])}"


class GustLimit(Detector):
    """A gust at or over `limit_mps` (score gust / limit >= 1); critical from 1.5 times the limit."""

    name = "gust_limit"
    threshold_name = "limit_mps"

    def __init__(self, limit_mps: float = 15.0) -> None:
        super().__init__()
        self.limit_mps = float(limit_mps)

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        return x / self.limit_mps

    def _step_one(self, x: float, t: float | None) -> float:
        return x / self.limit_mps

    def severity(self, score: float) -> str:
        return "critical" if score >= 1.5 else "warning"

    def reason(self, i: int, value: float, unit: str) -> str:
        # The rule fires at the limit too (score >= 1), so a gust of exactly the limit is "at", not "over".
        where = "over" if round(value, 1) > self.limit_mps else "at"
        return f"gust {value:.1f} {unit} {where} the {self.limit_mps:g} {unit} limit"


class RapidChange(PressureTendency):
    """A rise or fall of `max_change` within `per_minutes`, measured from the
    extreme reading in that span (not extrapolated from one noisy step)."""

    name = "rapid_change"
    threshold_name = "max_change"

    def __init__(self, max_change: float, per_minutes: float = 60.0) -> None:
        super().__init__(drop_hpa=max_change, hours=per_minutes / 60.0, rise_hpa=max_change)
        self.max_change = float(max_change)

    def set_params(self, **params: float) -> None:
        super().set_params(**params)
        self.drop_hpa = self.rise_hpa = self.max_change

    def reason(self, i: int, value: float, unit: str) -> str:
        fall, rise = self.detail["fall"][i], self.detail["rise"][i]
        word, size, dt = ("rose", rise, self.detail["rise_dt"][i]) if rise >= fall else (
            "fell", fall, self.detail["fall_dt"][i])
        return f"{word} {size:.3g} {unit} in {format_duration(dt)}".replace("  ", " ")


@dataclass(frozen=True, slots=True)
class Band:
    level: float
    severity: str


class ThresholdBands(Detector):
    """A severity ladder: 1.0 at the first band, 2.0 at the second, ...

    `direction` is "above" (higher is worse) or "below". The score grows
    linearly between band levels, so it shows how close a value is.
    """

    name = "bands"
    threshold_name = "scale"

    def __init__(self, bands: list[Band], direction: str = "above", label: str = "") -> None:
        super().__init__()
        if not bands:
            raise ValueError("a band ladder needs at least one band")
        if direction not in ("above", "below"):
            raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
        self.direction = direction
        sign = 1.0 if direction == "above" else -1.0
        levels = [b.level for b in bands]
        if any(sign * (b - a) <= 0 for a, b in zip(levels, levels[1:], strict=False)):
            raise ValueError(f"band levels must be strictly {'in' if sign > 0 else 'de'}creasing")
        self.bands = bands
        self.scale = 1.0
        self.label = label
        step = abs(levels[1] - levels[0]) if len(levels) > 1 else max(abs(levels[0]) * 0.25, 1.0)
        # Piecewise-linear map: level i -> score i+1, and one step below the
        # first level -> 0.
        self._xp = sign * np.array([levels[0] - sign * step, *levels])
        self._fp = np.arange(len(levels) + 1, dtype=np.float64)
        self._tail_slope = 1.0 / (abs(levels[-1] - levels[-2]) if len(levels) > 1 else step)
        self._xp_l, self._fp_l = self._xp.tolist(), self._fp.tolist()

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        s = x if self.direction == "above" else -x
        score = np.interp(s, self._xp, self._fp, left=0.0)
        beyond = s > self._xp[-1]
        score = np.where(beyond, self._fp[-1] + (s - self._xp[-1]) * self._tail_slope, score)
        return score / self.scale

    def _step_one(self, x: float, t: float | None) -> float:
        # np.interp's own arithmetic (numpy/_core/src/multiarray/compiled_base.c),
        # so one value scores exactly as in a batch.
        s = x if self.direction == "above" else -x
        xp, fp = self._xp_l, self._fp_l
        if s > xp[-1]:
            score = fp[-1] + (s - xp[-1]) * self._tail_slope
        elif s < xp[0]:
            score = 0.0
        else:
            j = bisect_right(xp, s) - 1
            if j == len(xp) - 1 or xp[j] == s:
                score = fp[j]
            else:
                slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
                score = slope * (s - xp[j]) + fp[j]
        return score / self.scale

    def band_for(self, value: float) -> Band | None:
        crossed = None
        for band in self.bands:
            hit = value >= band.level if self.direction == "above" else value <= band.level
            if hit:
                crossed = band
        return crossed

    def severity(self, score: float, value: float) -> str:
        band = self.band_for(value)
        return band.severity if band else "info"

    def reason(self, i: int, value: float, unit: str) -> str:
        band = self.band_for(value)
        level = band.level if band else self.bands[0].level
        word = "at or above" if self.direction == "above" else "at or below"
        sev = band.severity if band else "info"
        name = f"{self.label} " if self.label else ""
        return f"{name}{value:.4g} {unit} {word} the {sev} level {level:g} {unit}".replace("  ", " ")


@dataclass(frozen=True, slots=True)
class Indicator:
    variable: str
    op: str  # ">=" or "<="
    level: float

    def active(self, values: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore"):
            return values >= self.level if self.op == ">=" else values <= self.level

    def describe(self) -> str:
        return f"{self.variable} {self.op} {self.level:g}"


class CompositeRule:
    """k of n indicators at once on one station (e.g. a fire pattern).

    Works across variables: each indicator reads the station's latest value
    of its variable, carried forward for at most `stale_seconds`.
    """

    def __init__(
        self,
        name: str,
        k: int,
        indicators: list[Indicator],
        severity: str = "critical",
        stale_seconds: float = 900.0,
    ) -> None:
        if not 1 <= k <= len(indicators):
            raise ValueError(f"composite rule {name!r}: k={k} must be in [1, {len(indicators)}]")
        self.name = name
        self.k = int(k)
        self.indicators = indicators
        self.severity = severity
        self.stale_seconds = float(stale_seconds)
        self._last: dict[str, tuple[float, float]] = {}  # variable -> (t, value)
        self.active: list[FloatArray] = []

    @property
    def variables(self) -> list[str]:
        return [ind.variable for ind in self.indicators]

    def step(self, columns: dict[str, FloatArray], t: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(score, active-count) for each row; NaN in a column means "not in this message"."""
        n = t.size
        count = np.zeros(n)
        self.active = []
        for ind in self.indicators:
            col = columns.get(ind.variable)
            col = np.full(n, np.nan) if col is None else col
            filled, when = self._carry_forward(ind.variable, col, t)
            fresh = (t - when) <= self.stale_seconds
            on = ind.active(filled) & fresh
            self.active.append(on)
            count += on
        return count / self.k, count

    def step_one(self, values: dict[str, float], t: float) -> tuple[float, float]:
        """step() for one row: the station's values in this message."""
        count = 0.0
        self.active = []
        for ind in self.indicators:
            value = values.get(ind.variable)
            if value is not None and value == value:
                self._last[ind.variable] = (t, value)
                when = t
            else:
                when, value = self._last.get(ind.variable, (-np.inf, np.nan))
            on = (t - when) <= self.stale_seconds and (
                value >= ind.level if ind.op == ">=" else value <= ind.level
            )
            self.active.append([on])
            count += on
        return count / self.k, count

    def _carry_forward(
        self, variable: str, col: FloatArray, t: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        prev_t, prev_v = self._last.get(variable, (-np.inf, np.nan))
        has = np.isfinite(col)
        # Index of the latest row at or before i that has a value (-1: none).
        pos = np.where(has, np.arange(col.size), -1)
        pos = np.maximum.accumulate(pos)
        filled = np.where(pos >= 0, col[np.maximum(pos, 0)], prev_v)
        when = np.where(pos >= 0, t[np.maximum(pos, 0)], prev_t)
        if has.any():
            last = int(np.flatnonzero(has)[-1])
            self._last[variable] = (float(t[last]), float(col[last]))
        return filled, when

    def reason(self, i: int) -> str:
        """Which indicators were active at row i of the last step."""
        on = [ind.describe() for ind, act in zip(self.indicators, self.active, strict=True) if act[i]]
        return f"{self.name}: {len(on)} of {len(self.indicators)} indicators ({', '.join(on)})"
