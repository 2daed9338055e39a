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

    def _first_r2(self, seen: np.ndarray) -> float:
        assert self._sum is not None and self._sumsq is not None and self._count is not None
        return _first_r2(self._sum, self._sumsq, self._count, seen)

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
        return step_profiles([self], x[None, :], t)[0]

    @property
    def day(self) -> int | None:
        """The UTC day being accumulated (None before the first reading): profiles on the same day
        step together (`step_profiles`)."""
        return self._day

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


def _first_r2(total: np.ndarray, sumsq: np.ndarray, count: np.ndarray, seen: np.ndarray) -> float:
    """The first day of a type has no earlier profile to test: the share of its variance between
    half hours, adjusted for the within-half-hour noise (0 without readings to measure it)."""
    n_k, s_k, q_k = count[seen], total[seen], sumsq[seen]
    n, slots = float(n_k.sum()), int(n_k.size)
    if n - slots < slots:
        return 0.0
    means = s_k / n_k
    grand = float(s_k.sum()) / n
    between = float(np.sum(n_k * (means - grand) ** 2))
    within = float(np.sum(np.maximum(q_k - s_k * means, 0.0)))
    total_var = between + within
    if total_var <= 0.0:
        return 0.0
    return (between - (slots - 1) * within / (n - slots)) / total_var


def _days(t: FloatArray, current: int | None) -> np.ndarray:
    """The UTC day each time is counted in by profiles accumulating day `current`: a clock that steps
    back stays in the current day."""
    days = np.floor(t / 86400.0)
    return np.maximum.accumulate(np.maximum(days, -np.inf if current is None else current))


def gaps_fit(t: FloatArray, current: int | None, present: np.ndarray) -> np.ndarray:
    """Which series (rows of `present`, (series, n) bool: the rows of t each has a value in) profiles on
    day `current` can step with gaps in `step_profiles`: t rising (or equal), and a value of the series
    in each day t spans, so each series sees t's days."""
    if t.size and not (t[1:] >= t[:-1]).all():
        return np.zeros(present.shape[0], dtype=bool)
    days = _days(t, current)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(days)) + 1))
    return (np.add.reduceat(present, starts, axis=1) > 0).all(axis=1)


def step_profiles(profiles: list[DailyProfile], x: np.ndarray, t: FloatArray,
                  present: np.ndarray | None = None) -> np.ndarray:
    """`DailyProfile.step` for several series read at the same times, at once: x is (series, n), every
    value and time usable (`detectors._blocks.usable`), the profiles on the same `day`. Returns the
    offsets, (series, n): each row what its profile's own step gives, by the same operations on the
    same operands; what depends on the times alone (days, half hours, counts) is computed once.

    `present` (series, n) bool, for series with gaps: the rows of t each series has a value in (its
    x elsewhere is ignored); each series gets at its own rows what its own step over them gives,
    which needs `gaps_fit` true for every series. A value that is not there adds 0.0 to its half
    hour's sums, which leaves them as they are (a sum is never -0.0); the counts are per series."""
    size, n = x.shape
    for p in profiles:
        if p._sum is None:
            p._alloc()
    current = profiles[0]._day
    days = _days(t, current)
    slots = np.minimum(((t - days * 86400.0) / _SLOT_SECONDS).astype(np.int64), SLOTS - 1)
    slots = np.maximum(slots, 0)
    out = np.empty((size, n))
    cuts = np.flatnonzero(np.diff(days)) + 1
    # The first day may continue the one being accumulated; each later day starts from zeros.
    first = int(cuts[0]) if len(cuts) else n
    day = int(days[0])
    kind = day_type(day)
    k = slots[:first]
    if present is None:
        added = np.bincount(k, minlength=SLOTS)
    else:
        x = np.where(present, x, 0.0)
        keys = (np.arange(size) * SLOTS)[:, None] + k
        added = np.bincount(keys[present[:, :first]], minlength=size * SLOTS).reshape(size, SLOTS)
    for p in profiles:
        if p._day is None:
            p._day = day
        elif day != p._day:
            p._fold()
            p._day = day
    weight = np.array([p._weight[kind] for p in profiles])[:, None]
    shape = np.stack([p._profile[kind] for p in profiles])  # type: ignore[index]
    hold = np.array([p._hold for p in profiles])[:, None]
    np.add(weight * shape[:, k], (1.0 - weight) * hold, out=out[:, :first])
    # The first day's values into its half hours, in order, as one value at a time adds them: the
    # k-th value of every half hour in the k-th pass, for every series at once.
    part = x[:, :first]
    sums = np.stack([p._sum for p in profiles])  # type: ignore[arg-type]
    sumsqs = np.stack([p._sumsq for p in profiles])  # type: ignore[arg-type]
    squares = part * part
    for at in _ranks(k):
        into = k[at]
        sums[:, into] += part[:, at]
        sumsqs[:, into] += squares[:, at]
    if present is None:
        lasts = out[:, first - 1].tolist()
    else:  # each series' last value of the day
        lasts = out[np.arange(size), first - 1 - np.argmax(present[:, first - 1 :: -1], axis=1)].tolist()
    for v, p in enumerate(profiles):
        p._sum, p._sumsq = sums[v], sumsqs[v]
        p._count += added if present is None else added[v]  # type: ignore[operator]
        p._last = lasts[v]
    if first == n:
        return out
    # The later days at once: per-day slot sums by one bincount (each bin adds its values in
    # order from zero, as a fresh day's bincount does; a bin holds one series' values), then the
    # days folded in turn.
    m = len(cuts)
    ends = np.append(cuts[1:], n)
    day_of = np.repeat(np.arange(m), ends - cuts)
    later = slots[first:]
    key = day_of * SLOTS + later
    counts = np.bincount(key, minlength=m * SLOTS).reshape(m, SLOTS).astype(np.float64)
    rest = x[:, first:]
    # day-major, then series: bin (day, series, slot)
    where = key[None, :] if size == 1 else (day_of * (size * SLOTS) + later) + (np.arange(size) * SLOTS)[:, None]
    # each day's last slot; with gaps, each series' own counts and last slot (days, series)
    last: list[int] | np.ndarray = slots[ends - 1].tolist()
    each = counts
    if present is not None:
        here = present[:, first:]
        each = np.bincount(where[here], minlength=m * size * SLOTS).reshape(m, size, SLOTS).astype(np.float64)
        ends_v = np.maximum.reduceat(np.where(here, np.arange(first, n), -1), cuts - first, axis=1)
        last = slots[ends_v.T]
    if counts.max(initial=0.0) <= 1.0:
        # A value per bin at most (readings an hour or half an hour apart): bincount's sum of one
        # value is 0.0 + it, put in place directly (+ 0.0 turns a -0.0 into 0.0, as that sum does;
        # a square is never -0.0).
        sums, sumsqs = np.zeros((m, size, SLOTS)), np.zeros((m, size, SLOTS))
        sums.reshape(-1)[where] = rest + 0.0
        sumsqs.reshape(-1)[where] = rest * rest
    else:
        sums = np.bincount(where.ravel(), rest.ravel(), m * size * SLOTS).reshape(m, size, SLOTS)
        sumsqs = np.bincount(where.ravel(), (rest * rest).ravel(), m * size * SLOTS).reshape(m, size, SLOTS)
    for p in profiles:
        p._fold()
    rows, weights, holds = _learn_days(profiles, sums, sumsqs, each, days[cuts].astype(np.int64).tolist(), last)
    # each value's profile row, weight and hold: those of its day (and series)
    w_row = weights[:, day_of]
    out[:, first:] = w_row * np.take(rows, where) + (1.0 - w_row) * holds[:, day_of]
    return out


def _ranks(k: np.ndarray) -> list[np.ndarray]:
    """Positions of k (half hours) by their rank among the equal ones: [positions of the first value
    of each half hour, of the second, ...], each in order; each holds a half hour once at most."""
    if k.size == 0:
        return []
    if k.size == 1 or (np.diff(k) > 0).all():  # each half hour once (readings 30 min apart or more)
        return [np.arange(k.size)]
    order = np.argsort(k, kind="stable")
    ordered = k[order]
    start = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    rank = np.empty(k.size, dtype=np.int64)
    rank[order] = np.arange(k.size) - np.repeat(start, np.diff(np.append(start, k.size)))
    by_rank = np.argsort(rank, kind="stable")
    cuts = np.searchsorted(rank[by_rank], np.arange(1, int(rank.max()) + 1))
    return np.split(by_rank, cuts)


def _learn_days(profiles: list[DailyProfile], sums: np.ndarray, sumsqs: np.ndarray, counts: np.ndarray,
                day_list: list[int], last: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole days of a batch for several profiles: sums and sums of squares (days, series, SLOTS),
    counts (days, SLOTS), or (days, series, SLOTS) for series with gaps. For each day and series, the
    offset inputs it is scored with (the profile row (days, series, SLOTS), the weight and hold
    (series, days)), folding in every day but the last.

    The same arithmetic as `DailyProfile._fold` a day at a time (each operation on the same
    operands, the reductions over one day's 48 slots), in three passes: the scalar recurrences
    that do not depend on the profile (the weekday level, each day's reference, the days learned per
    type and their weight alpha); the profiles' own recurrence, the only one on arrays, a day at a
    time for every series at once; then, from the rows they went through, each day's misfit and the
    R^2 and weight recurrences. `last[j]` is day j's last slot (`last[j, v]` series v's, with gaps):
    the offset given out there becomes the hold when the day ends."""
    m, size = len(day_list), len(profiles)
    # counts and what follows from them per (day, column, slot): one column shared by every series,
    # or a column per series (with gaps); col[v] is series v's
    counts3 = counts[:, None, :] if counts.ndim == 2 else counts
    col = [0] * size if counts.ndim == 2 else list(range(size))
    seen = counts3 > 0
    slots_a = np.count_nonzero(seen, axis=2)  # (days, columns)
    means = sums / np.where(seen, counts3, 1.0)
    kinds = [day_type(d) for d in day_list]
    kinds_a = np.array(kinds, dtype=np.int64)
    learned_a = (np.arange(m) < m - 1)[:, None] & (slots_a >= MIN_SLOTS)  # (days, columns)
    learned_c = learned_a.T.tolist()
    fold_0 = learned_a & (kinds_a == 0)[:, None]
    before_0 = np.cumsum(fold_0, axis=0) - fold_0  # weekdays folded before day j
    # The days folded in per type and each one's alpha: the same for series that folded as many
    # days before, of the same days (the usual case in a group), so worked out once per case.
    schedules: dict[tuple[int, int, int], tuple[list[float], list[bool], list[int]]] = {}
    alphas = np.empty((m, size))
    firsts: list[list[bool]] = []
    for v, p in enumerate(profiles):
        key = (p._days[0], p._days[1], col[v])
        plan = schedules.get(key)
        if plan is None:
            done = [key[0], key[1]]
            alpha_v, first_v = [0.0] * m, [False] * m
            for j, folds in enumerate(learned_c[col[v]]):
                if not folds:
                    continue
                kind = kinds[j]
                first_v[j] = done[kind] == 0
                alpha_v[j] = 1.0 / (done[kind] + 1) if done[kind] < 4 else ALPHA
                done[kind] += 1
            plan = schedules[key] = (alpha_v, first_v, done)
        alpha_v, first_v, done = plan
        p._days = list(done)
        firsts.append(first_v)
        alphas[:, v] = alpha_v
    # The weekday level and each day's reference, as _learn runs them: a weekday's reference is its
    # own mean, a weekend day's the level then (its own mean before any weekday). The level, an EWMA
    # of the weekday means, is a loop over floats per series; the rest is for all at once.
    day_means = means.sum(axis=2) / np.maximum(slots_a, 1)  # (days, series); used where slots >= MIN_SLOTS
    fold_v = fold_0[:, col]  # (days, series)
    refs_a = np.where(fold_v, day_means, 0.0)
    weekend_v = (learned_a & (kinds_a == 1)[:, None])[:, col]
    for v, p in enumerate(profiles):
        level = p._level
        trail = [level]
        for day_mean in day_means[fold_v[:, v], v].tolist():
            level = level + ALPHA * (day_mean - level) if level == level else day_mean
            trail.append(level)
        p._level = level
        weekends = np.flatnonzero(weekend_v[:, v])
        if weekends.size:
            then = np.array(trail)[before_0[weekends, col[v]]]
            refs_a[weekends, v] = np.where(then != then, day_means[weekends, v], then)
    alphas_a = alphas[:, :, None]
    dev = np.subtract(means, refs_a[:, :, None], out=means)  # in place: these are days x series x 48
    dev *= seen
    # The profiles' recurrence: row j is the shape day j is scored with (and learned against).
    # _fold's `shape += alpha * ((dev - shape) * seen)` as `shape += (dev - shape) * (seen * alpha)`:
    # seen is 0 or 1, so each product is the same number (a 0 where not seen, and adding a zero
    # leaves a shape unchanged: it is never -0.0); a day not folded in has alpha 0.
    gain = seen * alphas_a
    rows = np.empty((m, size, SLOTS))
    misses = np.empty((m, size, SLOTS))  # dev - shape, before `* seen`
    shapes = np.stack([p._profile for p in profiles], axis=1)  # type: ignore[misc]
    # Each day's update is written where it is next read: the row of the next day of its type (the
    # shape that day is scored with), after the last one the type's shape itself.
    targets: list[np.ndarray] = [shapes[0]] * m
    latest: list[int | None] = [None, None]
    for j, kind in enumerate(kinds):
        at = latest[kind]
        if at is None:
            rows[j] = shapes[kind]
        else:
            targets[at] = rows[j]
        latest[kind] = j
    for kind in (0, 1):
        at = latest[kind]
        if at is not None:
            targets[at] = shapes[kind]
    step = np.empty((size, SLOTS))
    subtract, multiply, add = np.subtract, np.multiply, np.add
    for dev_j, gain_j, row, miss, target in zip(dev, gain, rows, misses, targets, strict=True):
        subtract(dev_j, row, out=miss)
        multiply(miss, gain_j, out=step)
        add(row, step, out=target)
    misses *= seen
    square = np.multiply(misses, misses, out=gain)  # gain is spent: its room holds the squares
    sse = np.add.reduce(square, axis=2).T.tolist()
    np.multiply(dev, dev, out=square)
    ss = np.add.reduce(square, axis=2).T.tolist()
    if isinstance(last, np.ndarray):
        at_last = rows[np.arange(m)[:, None], np.arange(size), last].T.tolist()
    else:
        at_last = rows[np.arange(m), :, last].T.tolist()
    weights = np.empty((size, m))
    holds = np.empty((size, m))
    span = R2_FULL - R2_OFF
    for v, p in enumerate(profiles):
        assert p._profile is not None
        p._profile[...] = shapes[:, v]
        weight, r2s, first, c = p._weight, p._r2, firsts[v], col[v]
        w_v: list[float] = []
        h_v: list[float] = []
        hold = p._hold
        for j, (kind, at, folds, sse_j, ss_j) in enumerate(zip(kinds, at_last[v], learned_c[c], sse[v], ss[v],
                                                               strict=True)):
            w = weight[kind]
            w_v.append(w)
            h_v.append(hold)
            hold = w * at + (1.0 - w) * hold
            if not folds:
                continue
            if first[j]:
                r2 = r2s[kind] = _first_r2(sums[j, v], sumsqs[j, v], counts3[j, c], seen[j, c])
            else:
                fit = 1.0 - sse_j / ss_j if ss_j > 0.0 else 0.0
                r2 = r2s[kind] = r2s[kind] + R2_LAG * (fit - r2s[kind])
            w = (r2 - R2_OFF) / span
            weight[kind] = 0.0 if w < 0.0 else (1.0 if w > 1.0 else w)
        weights[v] = w_v
        holds[v] = h_v
        p._last = hold
        p._hold = h_v[-1]
        p._day = day_list[-1]
        p._sum, p._sumsq, p._count = sums[-1, v].copy(), sumsqs[-1, v].copy(), counts3[-1, c].copy()
    return rows, weights, holds
