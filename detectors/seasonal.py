"""A daily profile per day type (weekday, weekend), learned online, used where it explains the series.

The profile holds, for each half hour of the UTC day, how far the series
usually sits from its weekday mean: on weekdays (Monday to Friday) the
shape of the day, and at weekends that shape plus how far the weekend sits
from the weekdays, so a building that is busy on weekdays and empty at
weekends has both rhythms, and the two join without a step at midnight.
While a day type's profile is not trusted yet, the offset holds the value
it had when the last day ended, for the same reason.

It changes only when a UTC day ends: that day's half-hourly means, minus
their mean, are folded in (the running mean over the first four days of a
type, then an EWMA with weight 0.25); nothing moves within a day, so the
profile never jumps under a reading, and a batch and one value at a time
see the same profile.

Whether it is used is decided per series, out of sample: at each fold, the
share of the finished day's shape that the profile learned *before* it
explained (R^2 = 1 - SSE / SS; for the first day of a type, which has no
earlier profile, the share of its variance between half hours adjusted for
the noise within them) enters a running mean, and the profile is
subtracted with the weight clip((R^2 - 0.1) / 0.5, 0, 1). A series without
a daily rhythm (pressure, a random walk, white noise) gets weight 0 and is
scored as it is; building energy, with its working mornings, gets weight 1
from its third weekday.
"""

from __future__ import annotations

import math

import numpy as np

from detectors._blocks import FloatArray, finite_positions, usable

SLOTS = 48  # half hours
_SLOT_SECONDS = 86400.0 / SLOTS
MIN_SLOTS = 8  # a day with fewer observed half hours is not folded in
ALPHA = 0.25  # EWMA weight of a new day, after the first four of its type
R2_LAG = 0.5  # weight of a new day's R^2 in its running mean
R2_OFF, R2_FULL = 0.1, 0.6  # R^2 at which the weight starts to rise, and reaches 1


def day_type(day: int) -> int:
    """0 for Monday to Friday, 1 for Saturday and Sunday (day = days since 1970-01-01, a Thursday)."""
    return 1 if (day + 3) % 7 >= 5 else 0


class DailyProfile:
    """step(x, t) -> the seasonal offset to subtract from each value (0 until it explains the series)."""

    __slots__ = ("_day", "_sum", "_sumsq", "_count", "_profile", "_days", "_r2", "_weight", "_level", "_hold", "_last")

    def __init__(self) -> None:
        self._day: int | None = None  # the UTC day being accumulated
        self._sum: np.ndarray | None = None  # its per-slot sums, sums of squares, counts (allocated on first use)
        self._sumsq: np.ndarray | None = None
        self._count: np.ndarray | None = None
        self._profile: np.ndarray | None = None  # (2, SLOTS): weekday and weekend shapes
        self._days = [0, 0]  # days folded in, per type
        self._r2 = [0.0, 0.0]
        self._weight = [0.0, 0.0]
        self._level = math.nan  # the weekday mean (an EWMA over weekdays): the weekend's reference
        self._hold = 0.0  # the offset when the last day ended
        self._last = 0.0  # the latest offset given out

    @property
    def weight(self) -> tuple[float, float]:
        return self._weight[0], self._weight[1]

    def _alloc(self) -> None:
        self._sum = np.zeros(SLOTS)
        self._sumsq = np.zeros(SLOTS)
        self._count = np.zeros(SLOTS)
        self._profile = np.zeros((2, SLOTS))

    def _fold(self) -> None:
        """The day being accumulated is over: learn from it, then start a new one."""
        assert self._sum is not None and self._sumsq is not None and self._count is not None
        assert self._profile is not None
        count = self._count
        seen = count > 0
        slots = int(np.count_nonzero(seen))
        self._hold = self._last
        if self._day is not None and slots >= MIN_SLOTS:
            kind = day_type(self._day)
            means = self._sum / np.where(seen, count, 1.0)  # 0 where not seen
            day_mean = float(means.sum()) / slots
            if kind == 0:
                ref = day_mean
                known = self._level == self._level
                self._level = self._level + ALPHA * (day_mean - self._level) if known else day_mean
            else:
                ref = day_mean if self._level != self._level else self._level
            dev = (means - ref) * seen
            shape = self._profile[kind]
            miss = (dev - shape) * seen
            if self._days[kind]:
                ss = float(np.add.reduce(dev * dev))
                sse = float(np.add.reduce(miss * miss))
                r2 = 1.0 - sse / ss if ss > 0.0 else 0.0
                self._r2[kind] += R2_LAG * (r2 - self._r2[kind])
            else:
                self._r2[kind] = self._first_r2(seen)
            w = (self._r2[kind] - R2_OFF) / (R2_FULL - R2_OFF)
            self._weight[kind] = 0.0 if w < 0.0 else (1.0 if w > 1.0 else w)
            alpha = 1.0 / (self._days[kind] + 1) if self._days[kind] < 4 else ALPHA
            shape += alpha * miss
            self._days[kind] += 1
        self._sum = np.zeros(SLOTS)
        self._sumsq = np.zeros(SLOTS)
        self._count = np.zeros(SLOTS)

    def _first_r2(self, seen: np.ndarray) -> float:
        """The first day of a type has no earlier profile to test: the share of its variance between
        half hours, adjusted for the within-half-hour noise (0 without readings to measure it)."""
        assert self._sum is not None and self._sumsq is not None and self._count is not None
        n_k, s_k, q_k = self._count[seen], self._sum[seen], self._sumsq[seen]
        n, slots = float(n_k.sum()), int(n_k.size)
        if n - slots < slots:
            return 0.0
        means = s_k / n_k
        grand = float(s_k.sum()) / n
        between = float(np.sum(n_k * (means - grand) ** 2))
        within = float(np.sum(np.maximum(q_k - s_k * means, 0.0)))
        total = between + within
        if total <= 0.0:
            return 0.0
        return (between - (slots - 1) * within / (n - slots)) / total

    def step(self, x: FloatArray, t: FloatArray) -> FloatArray:
        """The offset for each (value, time); an unusable reading (a NaN or absurd value or time, see
        `detectors._blocks.usable`) gets the latest offset and is not learned from."""
        n = x.size
        if n == 0:
            return np.zeros(0)
        mask = finite_positions(x, t)
        if mask is not None:
            prior = self._last
            out = np.full(n, prior)
            out[mask] = self.step(x[mask], t[mask])
            # each unusable reading gets the offset of the usable one before it
            last = np.maximum.accumulate(np.where(mask, np.arange(n), -1))
            skip = ~mask & (last >= 0)
            out[skip] = out[last[skip]]
            return out
        if self._sum is None:
            self._alloc()
        assert self._sum is not None and self._count is not None and self._profile is not None
        days = np.floor(t / 86400.0)
        # A clock that steps back stays in the current day.
        days = np.maximum.accumulate(np.maximum(days, -np.inf if self._day is None else self._day))
        slots = np.minimum(((t - days * 86400.0) / _SLOT_SECONDS).astype(np.int64), SLOTS - 1)
        slots = np.maximum(slots, 0)
        out = np.empty(n)
        cuts = np.flatnonzero(np.diff(days)) + 1
        for a, b in zip(np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [n])).tolist(), strict=True):
            day = int(days[a])
            if self._day is None:
                self._day = day
            elif day != self._day:
                self._fold()
                self._day = day
            kind = day_type(day)
            k = slots[a:b]
            w = self._weight[kind]
            out[a:b] = w * self._profile[kind][k] + (1.0 - w) * self._hold
            part = x[a:b]
            if self._count.any():
                np.add.at(self._sum, k, part)  # sequential, as one value at a time adds them
                np.add.at(self._sumsq, k, part * part)
            else:  # a fresh day: bincount adds in the same order, from the same zeros, faster
                self._sum[:] = np.bincount(k, part, SLOTS)
                self._sumsq[:] = np.bincount(k, part * part, SLOTS)
            self._count += np.bincount(k, minlength=SLOTS)
            self._last = float(out[b - 1])
        return out

    def push(self, x: float, t: float) -> float:
        if not usable(x, t):  # as in step(): the latest offset, nothing learned
            return self._last
        if self._sum is None:
            self._alloc()
        assert self._sum is not None and self._count is not None and self._profile is not None
        day = math.floor(t / 86400.0)
        if self._day is None:
            self._day = day
        elif day > self._day:
            self._fold()
            self._day = day
        day = self._day
        slot = int((t - day * 86400.0) / _SLOT_SECONDS)
        slot = SLOTS - 1 if slot > SLOTS - 1 else (0 if slot < 0 else slot)
        kind = day_type(day)
        w = self._weight[kind]
        out = w * float(self._profile[kind][slot]) + (1.0 - w) * self._hold
        self._sum[slot] += x
        self._sumsq[slot] += x * x
        self._count[slot] += 1.0
        self._last = out
        return out

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._sum, self._sumsq, self._count, self._profile) if a is not None)
