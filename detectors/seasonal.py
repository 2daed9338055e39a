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
        self._learn(self._sum, self._count)
        self._sum = np.zeros(SLOTS)
        self._sumsq = np.zeros(SLOTS)
        self._count = np.zeros(SLOTS)

    def _learn(self, total: np.ndarray, count: np.ndarray) -> None:
        """Fold in the day of these per-slot sums and counts (`self._sumsq` its sums of squares)."""
        assert self._profile is not None
        seen = count > 0
        slots = int(np.count_nonzero(seen))
        self._hold = self._last
        if self._day is not None and slots >= MIN_SLOTS:
            kind = day_type(self._day)
            means = total / np.where(seen, count, 1.0)  # 0 where not seen
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

    def _learn_days(self, sums: np.ndarray, sumsqs: np.ndarray, counts: np.ndarray, day_list: list[int],
                    last: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Whole days of a batch, (days, SLOTS) arrays: for each, the offset inputs it is scored with
        (the profile row, weight and hold then), folding in every day but the last.

        The same arithmetic as `_fold` a day at a time (each operation on the same operands, the
        reductions over one day's 48 slots), with what does not depend on the profile (means, day
        means, the deviations and their sum of squares) computed for all days at once; only the
        profile's own recurrence runs a day at a time. `last[j]` is day j's last slot: the offset
        given out there becomes the hold when the day ends."""
        assert self._profile is not None
        m = len(day_list)
        seen = counts > 0
        slots = np.count_nonzero(seen, axis=1).tolist()
        means = sums / np.where(seen, counts, 1.0)
        day_means = (means.sum(axis=1)).tolist()
        rows = np.empty((m, SLOTS))
        weights = np.empty(m)
        holds = np.empty(m)
        refs = [0.0] * m
        kinds = [day_type(d) for d in day_list]
        learn = [slots[j] >= MIN_SLOTS for j in range(m)]
        # The weekday level and each day's reference: a scalar recurrence, as _learn runs it.
        level = self._level
        for j in range(m - 1):
            if learn[j]:
                day_mean = day_means[j] / slots[j]
                if kinds[j] == 0:
                    refs[j] = day_mean
                    level = level + ALPHA * (day_mean - level) if level == level else day_mean
                else:
                    refs[j] = day_mean if level != level else level
        dev = (means - np.array(refs)[:, None]) * seen
        ss = np.add.reduce(dev * dev, axis=1).tolist()
        for j in range(m):
            kind = kinds[j]
            w = self._weight[kind]
            shape = self._profile[kind]
            rows[j] = shape
            weights[j] = w
            holds[j] = self._hold
            self._last = w * float(shape[last[j]]) + (1.0 - w) * self._hold
            if j == m - 1:
                break
            self._day = day_list[j]
            self._hold = self._last
            if not learn[j]:
                continue
            miss = (dev[j] - shape) * seen[j]
            if self._days[kind]:
                sse = float(np.add.reduce(miss * miss))
                r2 = 1.0 - sse / ss[j] if ss[j] > 0.0 else 0.0
                self._r2[kind] += R2_LAG * (r2 - self._r2[kind])
            else:
                self._sum, self._sumsq, self._count = sums[j], sumsqs[j], counts[j]
                self._r2[kind] = self._first_r2(seen[j])
            w = (self._r2[kind] - R2_OFF) / (R2_FULL - R2_OFF)
            self._weight[kind] = 0.0 if w < 0.0 else (1.0 if w > 1.0 else w)
            alpha = 1.0 / (self._days[kind] + 1) if self._days[kind] < 4 else ALPHA
            shape += alpha * miss
            self._days[kind] += 1
        self._level = level
        self._day = day_list[-1]
        self._sum, self._sumsq, self._count = sums[-1].copy(), sumsqs[-1].copy(), counts[-1].copy()
        return rows, weights, holds, np.asarray(last)

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
        # The first day may continue the one being accumulated; each later day starts from zeros.
        first = int(cuts[0]) if len(cuts) else n
        day = int(days[0])
        if self._day is None:
            self._day = day
        elif day != self._day:
            self._fold()
            self._day = day
        kind = day_type(day)
        k = slots[:first]
        w = self._weight[kind]
        out[:first] = w * self._profile[kind][k] + (1.0 - w) * self._hold
        part = x[:first]
        if self._count.any():
            np.add.at(self._sum, k, part)  # sequential, as one value at a time adds them
            np.add.at(self._sumsq, k, part * part)
        else:  # a fresh day: bincount adds in the same order, from the same zeros, faster
            self._sum[:] = np.bincount(k, part, SLOTS)
            self._sumsq[:] = np.bincount(k, part * part, SLOTS)
        self._count += np.bincount(k, minlength=SLOTS)
        self._last = float(out[first - 1])
        if first == n:
            return out
        # The later days at once: per-day slot sums by one bincount (each bin adds its values in
        # order from zero, as a fresh day's bincount does), then the days folded in turn.
        m = len(cuts)
        ends = np.append(cuts[1:], n)
        day_of = np.repeat(np.arange(m), ends - cuts)
        key = day_of * SLOTS + slots[first:]
        rest = x[first:]
        sums = np.bincount(key, rest, m * SLOTS).reshape(m, SLOTS)
        sumsqs = np.bincount(key, rest * rest, m * SLOTS).reshape(m, SLOTS)
        counts = np.bincount(key, minlength=m * SLOTS).reshape(m, SLOTS).astype(np.float64)
        self._fold()
        rows, weights, holds, _ = self._learn_days(sums, sumsqs, counts, days[cuts].astype(np.int64).tolist(),
                                                   slots[ends - 1].tolist())
        w_row = weights[day_of]
        out[first:] = w_row * rows[day_of, slots[first:]] + (1.0 - w_row) * holds[day_of]
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
