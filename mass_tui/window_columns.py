"""Windowed aggregates a column at a time: what `Aggregator` does with a batch's rows.

`Rows` finds the windows of a scope's rows for one window size and each series'
stats in them (segment reductions on rows in time order, a sort otherwise, none
when each row is alone in its window); `window_line` writes a series' closed
windows as one stored "windows" line; `daily_lines` the daily records of the
days a batch opened and closed; `Block` holds the windows a batch left open as
columns until they close or something needs them as `Stats`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import orjson

from mass_tui.window_stats import ROWS, SUMMED, Scope, Stats, round6, window_head
from sources.schema import iso_utc


class Block:
    """Windows one batch opened and left open (those within the lateness of its end), as columns:
    their starts (epoch s, ascending) and, per series (ROWS first, then in series order), which
    windows have it (None: all) and its figures as `Stats` hold them (count, total, low, low_ts,
    high, high_ts, late; the Stats a merge into `Stats()` gives: 0.0 + sum, the min/max rule).

    They stay so until something needs them as Stats (`materialize`, in the order `_merge` of each
    series in turn would have added them): readings landing in them merge a column at a time
    (`merge`), and the ones that close become lines from the columns (`lines`), the lines
    `Aggregator._records` writes of the same windows."""

    __slots__ = ("starts", "series")

    def __init__(self, width: float, fresh: list[tuple[str, tuple]]) -> None:
        rows = fresh[0][1][0]  # ROWS has every window
        n = len(rows)
        self.starts = (rows * width).astype(np.int64)
        self.series: dict[str, tuple[np.ndarray | None, list[np.ndarray]]] = {}
        for name, stats in fresh:
            starts, counts, totals, lo, lo_ts, hi, hi_ts, lates = stats
            if not lo.size or (lo.max() < math.inf and hi.min() > -math.inf):  # each window takes its min and max
                figures = [np.array(counts, dtype=np.int64), totals + 0.0, np.array(lo), np.array(lo_ts),
                           np.array(hi), np.array(hi_ts), np.array(lates, dtype=np.int64)]
            else:
                low = (lo < math.inf) | ((lo == math.inf) & (lo_ts < 0.0))
                high = (hi > -math.inf) | ((hi == -math.inf) & (hi_ts < 0.0))
                figures = [np.array(counts, dtype=np.int64), totals + 0.0, np.where(low, lo, math.inf),
                           np.where(low, lo_ts, 0.0), np.where(high, hi, -math.inf), np.where(high, hi_ts, 0.0),
                           np.array(lates, dtype=np.int64)]
            has = None
            if len(starts) != n:
                at = np.searchsorted(rows, starts)
                has = np.zeros(n, dtype=bool)
                has[at] = True
                dense = [np.zeros(n, dtype=f.dtype) for f in figures]
                for d, f in zip(dense, figures, strict=True):
                    d[at] = f
                figures = dense
            self.series[name] = (has, figures)

    def takes(self, starts: np.ndarray, per_series: list[tuple[str, np.ndarray]]) -> bool:
        """Whether readings in windows starting at `starts` all land in this block, each series
        (name, its readings' window starts) in windows that have it already: then `merge` keeps
        each window's series in the order Stats would have them."""
        if not bool(member(starts, self.starts).all()):
            return False
        for name, where in per_series:
            if where.size:
                got = self.series.get(name)
                if got is None:
                    return False
                if got[0] is not None and not bool(got[0][np.searchsorted(self.starts, where)].all()):
                    return False
        return True

    def totals(self, name: str, starts: np.ndarray) -> np.ndarray:
        """A series' sums so far in its windows starting at `starts` (windows here that have it)."""
        return self.series[name][1][1][np.searchsorted(self.starts, starts)]

    def merge(self, name: str, starts: np.ndarray, stats: tuple) -> None:
        """A series' stats of more readings (windows starting at `starts`, each once) into its
        windows here, as `Stats.merge` would: counts added, the lower (higher) value or the earlier
        time of an equal one. The sums in `stats` are the windows' new sums: the readings added onto
        `totals` (`Rows.fold`), not a batch's own sums to add."""
        _starts, counts, totals, lo, lo_ts, hi, hi_ts, lates = stats
        if len(starts) == 1:  # one window (rows in time order: the one open when the batch came)
            self._merge_one(name, int(starts[0]), [float(f[0]) for f in stats[1:]])
            return
        at = np.searchsorted(self.starts, starts)
        count, total, low, low_ts, high, high_ts, late = self.series[name][1]
        count[at] += np.asarray(counts, dtype=np.int64)
        total[at] = totals
        take = (lo < low[at]) | ((lo == low[at]) & (lo_ts < low_ts[at]))
        low[at], low_ts[at] = np.where(take, lo, low[at]), np.where(take, lo_ts, low_ts[at])
        take = (hi > high[at]) | ((hi == high[at]) & (hi_ts < high_ts[at]))
        high[at], high_ts[at] = np.where(take, hi, high[at]), np.where(take, hi_ts, high_ts[at])
        late[at] += np.asarray(lates, dtype=np.int64)

    def _merge_one(self, name: str, start: int, figures: list[float]) -> None:
        """`merge` of one window's figures, in Python floats: numpy's calls cost more than the work."""
        counts, totals, lo, lo_ts, hi, hi_ts, lates = figures
        i = int(np.searchsorted(self.starts, start))
        count, total, low, low_ts, high, high_ts, late = self.series[name][1]
        count[i] += int(counts)
        total[i] = totals
        if lo < low[i] or (lo == low[i] and lo_ts < low_ts[i]):
            low[i], low_ts[i] = lo, lo_ts
        if hi > high[i] or (hi == high[i] and hi_ts < high_ts[i]):
            high[i], high_ts[i] = hi, hi_ts
        late[i] += int(lates)

    def due(self, width: float, lateness: float, mark: float) -> int:
        """How many windows, from the first, have closed: start + width + lateness <= mark."""
        return int(np.count_nonzero(self.starts + width + lateness <= mark))  # starts ascend: a prefix

    def drop(self, k: int) -> bool:
        """Forget the first k windows; True when none is left."""
        self.starts = self.starts[k:]
        for name, (has, figures) in self.series.items():
            self.series[name] = (None if has is None else has[k:], [f[k:] for f in figures])
        return not len(self.starts)

    def materialize(self, windows: dict[int, dict[str, Stats]]) -> None:
        """The windows as `Stats` in `windows` (each window's series in series order)."""
        per: list[dict[str, Stats]] = [{} for _ in range(len(self.starts))]
        for name, (has, figures) in self.series.items():
            entries = map(Stats, *(f.tolist() for f in figures))
            if has is None:
                for window, entry in zip(per, entries, strict=True):
                    window[name] = entry
            else:
                for window, entry, there in zip(per, entries, has.tolist(), strict=True):
                    if there:
                        window[name] = entry
        windows.update(zip(self.starts.tolist(), per, strict=True))

    def lines(self, scope: Scope, wname: str, width: float, k: int) -> list[bytes]:
        """The lines of the first k windows, closed (`final`): what `Aggregator._records` writes of
        them as Stats (one window: its series in order; several: a line per series, in the order
        the windows first have them)."""
        head = window_head(scope, wname, width)
        starts = self.starts[:k].astype(np.float64)
        named = [(name, has, figures) for name, (has, figures) in self.series.items() if name != ROWS]
        if k > 1:  # the series in the order the windows first have them, then series order
            first = {name: 0 if has is None else int(np.argmax(has[:k])) for name, has, _f in named
                     if has is None or has[:k].any()}
            named = sorted((x for x in named if x[0] in first), key=lambda x: first[x[0]])
        out = []
        for name, has, figures in named:
            pick = None if has is None or has[:k].all() else has[:k]
            if pick is not None and not pick.any():
                continue
            count, total, low, low_ts, high, high_ts, late = (
                figures if pick is None and k == len(self.starts) else  # the whole block closes (as usual)
                (np.ascontiguousarray(f[:k] if pick is None else f[:k][pick]) for f in figures))
            # round6 a column at a time: np.round, and + 0.0 (its round() makes a 0 result 0.0, numpy -0.0)
            record = {**head, "variable": name, "final": True, "seconds": width,
                      "start": starts if pick is None else starts[pick], "count": count,
                      "mean": np.round(total / count, 6) + 0.0, "min": low, "min_ts": low_ts, "max": high,
                      "max_ts": high_ts}
            if name in SUMMED:
                record["sum"] = np.round(total, 6) + 0.0
            record["late"] = late
            out.append(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY))
        return out


class Rows:
    """The rows of one scope's window size that one or more series take (in a batch: their window
    numbers `bucket`, times `t`, late flags): their windows, found once for every series with a value
    in each of these rows. `stats(v)` gives a series' stats per window: (starts as bucket numbers,
    count, sum, min, its time, max, its time, late).

    Ties keep the earliest time. Rows in time order (`ordered`: a replay, a backlog) take segment
    reductions, others a sort. With `shortcuts`, rows that are each alone in their window (hourly
    data in 1 min and 1 h windows) are their own stats: no reduction at all."""

    __slots__ = ("bucket", "t", "late", "ordered", "single", "edges", "counts", "lates", "starts", "segment",
                 "matrices", "_unique")

    def __init__(self, bucket: np.ndarray, t: np.ndarray, late: np.ndarray, ordered: bool,
                 shortcuts: bool = True) -> None:
        self.bucket, self.t, self.late = bucket, t, late
        n = len(t)
        self.ordered = ordered or n < 2 or bool(np.all(t[1:] >= t[:-1]))
        self.single = False
        self.segment: np.ndarray | None = None
        self._unique: tuple[np.ndarray, np.ndarray] | None = None  # rows out of order: (window starts, each row's)
        # after `stats_of` with values, its series' stats as matrices (series x windows; the times of
        # windows of one row each are the rows' times, one array for all series), else None
        self.matrices: tuple | None = None
        if not self.ordered:
            return
        change = bucket[1:] != bucket[:-1]
        if shortcuts and (n < 2 or bool(change.all())):
            self.single = True
            self.starts, self.counts, self.lates = bucket, np.ones(n, dtype=np.int64), late.astype(np.float64)
            return
        self.edges = edges = np.concatenate(([0], np.flatnonzero(change) + 1))
        self.counts = counts = np.empty(len(edges), dtype=np.int64)  # np.diff(append=) costs several calls
        np.subtract(edges[1:], edges[:-1], out=counts[:-1])
        counts[-1] = n - edges[-1]
        # nothing late (rows in time order from the watermark on): no reduction
        self.lates = np.add.reduceat(late.astype(np.float64), edges) if late.any() else np.zeros(len(edges))
        self.starts = bucket[edges]

    def _windows(self) -> tuple[np.ndarray, int]:
        """Each row's window, numbered as the stats list the windows, and how many windows."""
        n = len(self.t)
        if not self.ordered:
            if self._unique is None:
                self._unique = np.unique(self.bucket, return_inverse=True)
            return self._unique[1].reshape(-1), len(self._unique[0])
        if self.single:
            return np.arange(n), n
        if self.segment is None:
            self.segment = np.repeat(np.arange(len(self.edges)), self.counts)
        return self.segment, len(self.edges)

    def fold(self, values: np.ndarray, carry: np.ndarray | None = None) -> np.ndarray:
        """Each window's sum of `values` (one per row, or series x rows: then series x windows),
        its values added one at a time in row order onto `carry` (each window's sum so far, the
        result's shape) or onto 0.0: ((carry + v1) + v2) + ...

        A window's sum is then the same bits however its rows were split into batches and which
        batches were aggregated together: the order of the additions is the order the readings came
        in, as the live path (`Stats.merge`, one reading at a time) adds them. Segment sums by
        np.add.reduceat are pairwise, and a merge would add a batch's partial sum: both round
        differently with the split. np.bincount adds its weights in index order, one at a time."""
        segment, k = self._windows()
        matrix = values.ndim == 2
        if matrix:
            size = len(values)
            bins = (segment[None, :] + (np.arange(size) * k)[:, None]).reshape(-1)
            values = values.reshape(-1)
        else:
            size, bins = 1, segment
        if carry is not None:
            bins = np.concatenate((np.arange(size * k), bins))
            values = np.concatenate((carry.reshape(-1), values))
        out = np.bincount(bins, weights=values, minlength=size * k)
        return out.reshape(size, k) if matrix else out

    def stats_of(self, names: list[str], values: np.ndarray | None) -> dict[str, tuple]:
        """`stats` of ROWS (no values: every row counts) and of each series of `names`, whose
        values are the rows of `values` (series x rows), computed together."""
        t = self.t
        if not self.ordered or values is None:
            return {ROWS: self.stats(np.zeros(len(t))),
                    **({} if values is None else {name: self.stats(v) for name, v in zip(names, values, strict=True)})}
        if self.single:
            zero = np.zeros(len(t))
            out = {ROWS: (self.starts, self.counts, zero, zero, t, zero, t, self.lates)}
            totals = _summed_alone(values)
            out.update((name, (self.starts, self.counts, total, v, t, v, t, self.lates))
                       for name, v, total in zip(names, values, totals, strict=True))
            self.matrices = (self.starts, self.counts, totals, values, t, values, t, self.lates)
            return out
        edges, counts = self.edges, self.counts
        zero, first = np.zeros(len(edges)), t[edges]  # ROWS: all 0.0, so the first row is min and max
        out = {ROWS: (self.starts, counts, zero, zero, first, zero, first, self.lates)}
        k = int(counts[0])
        if k * len(edges) == len(t) and bool((counts == k).all()) and not _negative_zero(values):
            # Every window holds k rows (a feed on a fixed clock, stations in step): windows x k, and
            # numpy's argmin (argmax) is the first row holding the min (max). Without -0.0 (nor NaN:
            # these series have a value in every row) a min is one bit pattern, whichever way found.
            cube = values.reshape(len(values), len(edges), k)
            totals = _column_sums(cube) if k <= 8 else self.fold(values)
            (low_at, lows), (high_at, highs) = _first_best(cube, np.less), _first_best(cube, np.greater)
            low_ts, high_ts = t[edges + low_at], t[edges + high_at]
            out.update((name, (self.starts, counts, totals[j], lows[j], low_ts[j], highs[j], high_ts[j],
                               self.lates)) for j, name in enumerate(names))
            self.matrices = (self.starts, counts, totals, lows, low_ts, highs, high_ts, self.lates)
            return out
        totals = self.fold(values)
        lows, highs = np.minimum.reduceat(values, edges, axis=1), np.maximum.reduceat(values, edges, axis=1)
        # per window, the first row holding its min (max): the least row number where the value is it
        where = np.arange(len(t))
        low_at = np.minimum.reduceat(np.where(values == np.repeat(lows, counts, axis=1), where, len(t)), edges,
                                     axis=1)
        high_at = np.minimum.reduceat(np.where(values == np.repeat(highs, counts, axis=1), where, len(t)), edges,
                                      axis=1)
        low_ts, high_ts = t[low_at], t[high_at]
        if _negative_zero(values):  # 0.0 and -0.0 tie: the value is the first row's, as a merge keeps it
            series = np.arange(len(values))[:, None]
            lows, highs = values[series, low_at], values[series, high_at]
        out.update((name, (self.starts, counts, totals[j], lows[j], low_ts[j], highs[j], high_ts[j], self.lates))
                   for j, name in enumerate(names))
        self.matrices = (self.starts, counts, totals, lows, low_ts, highs, high_ts, self.lates)
        return out

    def stats(self, v: np.ndarray) -> tuple:
        """A series' stats per window (see the class) from its values `v`, one per row."""
        t = self.t
        if not self.ordered:
            inv, _k = self._windows()
            starts = self._unique[0]  # type: ignore[index]
            counts = np.bincount(inv)
            totals = self.fold(v)
            lates = np.bincount(inv, weights=self.late.astype(np.float64))
            first = np.concatenate(([0], np.cumsum(counts)[:-1]))
            lo = np.lexsort((t, v, inv))[first]  # per window: the smallest value, earliest first
            hi = np.lexsort((t, -v, inv))[first]  # the largest value, earliest first
            return starts, counts, totals, v[lo], t[lo], v[hi], t[hi], lates
        if self.single:
            return self.starts, self.counts, _summed_alone(v), v, t, v, t, self.lates
        edges = self.edges
        segment, _k = self._windows()
        totals = self.fold(v)
        lows, highs = np.minimum.reduceat(v, edges), np.maximum.reduceat(v, edges)
        low_at, high_at = first_where(v == lows[segment], segment), first_where(v == highs[segment], segment)
        if _negative_zero(v):  # 0.0 and -0.0 tie: the value is the first row's, as a merge keeps it
            lows, highs = v[low_at], v[high_at]
        return self.starts, self.counts, totals, lows, t[low_at], highs, t[high_at], self.lates


def member(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """`np.isin(values, known)` (int64 arrays; `known` in any order) by a binary search in the known
    values sorted: they are few (the windows left open), and isin sorts both arrays together, or
    makes a table as wide as their range, when it is not small (a window opened far back)."""
    if not known.size:
        return np.zeros(values.shape, dtype=bool)
    known = np.sort(known)
    at = np.searchsorted(known, values)
    np.minimum(at, known.size - 1, out=at)
    return known[at] == values


def _first_best(cube: np.ndarray, better: np.ufunc) -> tuple[np.ndarray, np.ndarray]:
    """Per row of the last axis, the index of its first min (`np.less`) or max (`np.greater`), and
    that value: argmin/argmax, but for a short axis (numpy's call per row costs more) a column at
    a time."""
    k = cube.shape[-1]
    if k > 4:  # no -0.0 here (see `stats_of`): the min (max) is one bit pattern, the value at its index
        if better is np.less:
            return cube.argmin(axis=-1), cube.min(axis=-1)
        return cube.argmax(axis=-1), cube.max(axis=-1)
    best, at = cube[..., 0], np.zeros(cube.shape[:-1], dtype=np.intp)
    for j in range(1, k):
        column = cube[..., j]
        wins = better(column, best)  # strictly: a tie keeps the earlier
        best = np.where(wins, column, best)
        at[wins] = j
    return at, best


def _column_sums(cube: np.ndarray) -> np.ndarray:
    """Per row of the last axis (short), its values added one at a time onto 0.0: the additions
    `Rows.fold` (np.bincount) makes, in its order, a column at a time."""
    total = 0.0 + cube[..., 0]
    for j in range(1, cube.shape[-1]):
        total = total + cube[..., j]
    return total


def _summed_alone(values: np.ndarray) -> np.ndarray:
    """The sums of windows of one reading each: 0.0 + the reading (`Rows.fold`), which is the
    reading itself but for -0.0 (then 0.0)."""
    return values + 0.0 if _negative_zero(values) else values


def _negative_zero(values: np.ndarray) -> bool:
    """Whether any value is -0.0 (its bits: the sign bit alone)."""
    return bool((values.view(np.int64) == np.iinfo(np.int64).min).any())


def first_where(mask: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Per segment (segments consecutive, each with a True), the first index where mask holds."""
    hits = np.flatnonzero(mask)
    seg = segment[hits]
    return hits[np.concatenate(([True], seg[1:] != seg[:-1]))]


def window_line(scope: Scope, wname: str, width: float, name: str, stats: tuple, final: bool,
                dumps: Dumps | None = None) -> bytes | list[bytes]:
    """One variable's closed windows of one scope as one line of arrays (a "windows" line, see `expand`).

    A batch's windows cost one orjson call per variable, not one object per window: a replay of
    minute data closes a 1 min window per reading. Times are epoch seconds here (`expand`, the SQL
    view and the PostgreSQL sink turn them into times). With `dumps` (the lines of one scope's
    window size) the line is put together from each array dumped once: an array the same as one
    dumped already (a window per reading: min = max = mean = the values, their times = the starts)
    is not dumped again, and the line is the list of its parts (joined once with the others'): the
    same bytes as one orjson call for the record."""
    starts, counts, totals, lo, lo_ts, hi, hi_ts, lates = stats
    record = {**window_head(scope, wname, width), "variable": name, "final": final, "seconds": width}
    if dumps is None:
        record.update({"start": starts * width, "count": np.asarray(counts, dtype=np.int64),
                       "mean": np.round(totals / counts, 6) + 0.0, "min": lo, "min_ts": lo_ts, "max": hi,
                       "max_ts": hi_ts})
        if name in SUMMED:
            record["sum"] = np.round(totals, 6) + 0.0
        record["late"] = np.asarray(lates, dtype=np.int64)
        return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)
    if dumps.single(counts, lates):
        return _single_parts(record, starts, width, totals, lo, lo_ts, dumps)
    parts = [orjson.dumps(record)[:-1],
             *dumps.starts(starts, width, lo_ts), b',"count":', dumps.ints(counts),
             b',"mean":', dumps(np.round(totals / counts, 6) + 0.0, totals), b',"min":', dumps(lo),
             b',"min_ts":', dumps(lo_ts), b',"max":', dumps(hi), b',"max_ts":', dumps(hi_ts)]
    if name in SUMMED:
        parts += [b',"sum":', dumps(np.round(totals, 6) + 0.0, totals)]
    parts += [b',"late":', dumps.ints(lates), b"}"]
    return parts


def window_lines(scope: Scope, wname: str, width: float, names: list[str], stats: tuple, final: bool,
                 dumps: Dumps) -> list[list[bytes]]:
    """`window_line` (with `dumps`) of several series that share their windows, from their stats as
    matrices (`Rows.matrices`: series x windows, in `names`' order): the same bytes, the derived
    figures (means, sums, which of them equal an array dumped already) a matrix at a time."""
    starts, counts, totals, lo, lo_ts, hi, hi_ts, lates = stats
    head = window_head(scope, wname, width)
    shared_times = lo_ts.ndim == 1  # windows of one row each: every series' times are the rows'
    out = []
    if dumps.single(counts, lates):
        mean = np.round(totals, 6) + 0.0  # as `_single_parts`
        own_mean = ~_rows_same(mean, lo)
        for j, name in enumerate(names):
            at = lo_ts if shared_times else lo_ts[j]
            parts = [orjson.dumps({**head, "variable": name, "final": final, "seconds": width})[:-1],
                     *dumps.starts(starts, width, at), b',"value":', dumps(lo[j])]
            if own_mean[j]:
                parts += [b',"mean":', dumps(mean[j])]
            if not dumps.same_times(starts, width, at):
                parts += [b',"at":', dumps(at)]
            parts.append(b"}")
            out.append(parts)
        return out
    mean = np.round(totals / counts, 6) + 0.0
    mean_total = _rows_same(mean, totals)  # the mean is the total (windows of one row): dumped once
    summed = [j for j, name in enumerate(names) if name in SUMMED]
    rounded = np.round(totals[summed], 6) + 0.0 if summed else None
    rounded_total = _rows_same(rounded, totals[summed]) if summed else None
    for j, name in enumerate(names):
        total = totals[j]
        low_ts, high_ts = (lo_ts, hi_ts) if shared_times else (lo_ts[j], hi_ts[j])
        parts = [orjson.dumps({**head, "variable": name, "final": final, "seconds": width})[:-1],
                 *dumps.starts(starts, width, low_ts), b',"count":', dumps.ints(counts),
                 b',"mean":', dumps(total if mean_total[j] else mean[j]), b',"min":', dumps(lo[j]),
                 b',"min_ts":', dumps(low_ts), b',"max":', dumps(hi[j]), b',"max_ts":', dumps(high_ts)]
        if name in SUMMED:
            k = summed.index(j)
            parts += [b',"sum":', dumps(total if rounded_total[k] else rounded[k])]  # type: ignore[index]
        parts += [b',"late":', dumps.ints(lates), b"}"]
        out.append(parts)
    return out


def _rows_same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row of two float64 matrices of one shape, whether the rows are the same bit for bit."""
    return (a.view(np.int64) == b.view(np.int64)).all(axis=1)


def single(counts: np.ndarray, lates: np.ndarray) -> bool:
    """Every window holds one reading, in time (a replay of data sparser than the window)."""
    return bool(np.all(counts == 1)) and not np.any(lates)


def _single_parts(record: dict, starts: np.ndarray, width: float, totals: np.ndarray, lo: np.ndarray,
                  lo_ts: np.ndarray, dumps: Dumps) -> list[bytes]:
    """A "windows" line of windows that hold one reading each, in its compact form: `value` (the
    reading: min, max and, unless a `mean` array is written, the mean and the sum), `at` (its time:
    min_ts and max_ts) only where the times are not the window starts; count 1 and late 0 implied.
    `expand` and the SQL view give the very records of the full form (a test holds them equal).
    Minute windows over hourly data wrote each value four times and each time three: 175 MB of
    aggregates for a 60 MB recording, the most of a replay's bytes."""
    parts = [orjson.dumps(record)[:-1], *dumps.starts(starts, width, lo_ts), b',"value":', dumps(lo)]
    mean = np.round(totals, 6) + 0.0  # the full form's mean (and sum); a zero is 0.0, as `round6` writes it
    if not same_bits(mean, lo):
        parts += [b',"mean":', dumps(mean)]
    if not dumps.same_times(starts, width, lo_ts):
        parts += [b',"at":', dumps(lo_ts)]
    parts.append(b"}")
    return parts


class Dumps:
    """orjson.dumps of numpy arrays, each array dumped once: by identity (kept alive here, so ids
    stay unique), and by content (the bits): the lines of one scope's window size share their
    windows' starts, counts and late counts, a window per reading has one array for its values,
    minima and maxima, and readings of a group's stations at the same instants give every variable
    the same times of its minima and maxima."""

    __slots__ = ("_done", "_bits")

    def __init__(self) -> None:
        # (id, what) -> (the array, kept alive so its id stays its own; the result[, the other array])
        self._done: dict[tuple[int, str], tuple] = {}
        # float64 arrays dumped, by (size, bits of the first and of the last value)
        self._bits: dict[tuple[int, bytes, bytes], list[tuple[np.ndarray, bytes]]] = {}

    def __call__(self, a: np.ndarray, same_as: np.ndarray | None = None) -> bytes:
        """`a` as orjson writes it; `same_as`: an array `a` may equal (bit for bit), dumped instead."""
        got = self._done.get((id(a), ""))
        if got is not None:
            return got[1]
        if same_as is not None and same_bits(a, same_as):
            data = self(same_as)
        elif a.dtype == np.float64 and a.ndim == 1 and a.size:
            key = (a.size, a[:1].tobytes(), a[-1:].tobytes())
            twins = self._bits.setdefault(key, [])
            for twin, dumped in twins:
                if same_bits(a, twin):
                    data = dumped
                    break
            else:
                data = orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)
                twins.append((a, data))
        else:
            data = orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)
        self._done[(id(a), "")] = (a, data)
        return data

    def single(self, counts: np.ndarray, lates: np.ndarray) -> bool:
        """`single(counts, lates)`, once for the lines that share these arrays."""
        got = self._done.get((id(counts), "single"))
        if got is None or got[2] is not lates:
            got = self._done[(id(counts), "single")] = (counts, single(counts, lates), lates)
        return got[1]

    def same_times(self, starts: np.ndarray, width: float, times: np.ndarray) -> bool:
        """Whether `times` are the windows' starts (bucket numbers) in seconds, bit for bit; once
        for the lines that share these arrays (a window per reading: every series' times)."""
        got = self._done.get((id(starts), "same"))
        if got is None or got[2] is not times:
            got = self._done[(id(starts), "same")] = (starts, same_bits(starts * width, times), times)
        return got[1]

    def ints(self, a: np.ndarray) -> bytes:
        """Whole numbers (counts) as int64."""
        got = self._done.get((id(a), "int"))
        if got is None:
            got = self._done[(id(a), "int")] = (a, orjson.dumps(np.asarray(a, dtype=np.int64),
                                                                 option=orjson.OPT_SERIALIZE_NUMPY))
        return got[1]

    def starts(self, starts: np.ndarray, width: float, like: np.ndarray) -> tuple[bytes, ...]:
        """The `start` of a line (bucket numbers as epoch seconds), as its key and value: evenly spaced
        starts (3 or more) as `first` and `step` when first + step * k gives each start bit for bit
        (`aggregates.expand` and the SQL view compute them so), else the array (`times`)."""
        got = self._done.get((id(starts), "starts"))
        if got is None:
            seconds = starts * width
            parts: tuple[bytes, ...] | None = None
            if seconds.size >= 3:
                first, step = float(seconds[0]), float(seconds[1] - seconds[0])
                if step > 0 and same_bits(first + step * np.arange(seconds.size, dtype=np.float64), seconds):
                    parts = (b',"first":', orjson.dumps(first), b',"step":', orjson.dumps(step))
            if parts is None:  # the array only when it is written: a replay's starts are mostly evenly spaced
                parts = (b',"start":', self.times(starts, width, like))
            got = self._done[(id(starts), "starts")] = (starts, parts)
        return got[1]

    def times(self, starts: np.ndarray, width: float, like: np.ndarray) -> bytes:
        """Window starts (bucket numbers) as epoch seconds; `like`: times they may equal."""
        got = self._done.get((id(starts), "times"))
        if got is None:
            got = self._done[(id(starts), "times")] = (starts, self(starts * width, like))
        return got[1]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit the same float64 arrays (so -0.0 is not 0.0)."""
    if not (a.shape == b.shape and a.dtype == b.dtype == np.float64):
        return False
    if a.size <= 4096:  # short: a copy of each and one memcmp costs less than numpy's calls
        return a.tobytes() == b.tobytes()
    return bool(np.array_equal(np.ascontiguousarray(a).view(np.int64), np.ascontiguousarray(b).view(np.int64)))


def daily_lines(station: str, width: float, stats: Mapping[str, tuple]) -> list[bytes]:
    """The daily records (`daily_summary`, final) of the days a batch opened and closed, from the
    per-day column stats of each variable (`Rows`; `ROWS` has every day)."""
    rows = stats[ROWS]
    starts = rows[0] * width
    n = len(starts)

    def spread(name: str) -> tuple | None:
        """The variable's stats over every day (NaN / 0 count where it has none), or None."""
        got = stats.get(name)
        if got is None:
            return None
        at = np.searchsorted(rows[0], got[0])
        full = []
        for k, a in enumerate(got[1:7]):
            b = np.zeros(n) if k == 0 else np.full(n, np.nan)
            b[at] = a
            full.append(b)
        return tuple(full)  # count, total, low, low_ts, high, high_ts

    gust, wind, temp, rain = spread("gust_mps"), spread("wind_mps"), spread("temp_c"), spread("precip_mm")
    msl, station_p = spread("pressure_msl_hpa"), spread("pressure_hpa")
    iso_start, iso_end = iso_many(starts), iso_many(starts + width)

    def values(s: tuple | None, k: int) -> list:
        return [None] * n if s is None else [v if c else None for c, v in zip(s[0].tolist(), s[k].tolist(),
                                                                             strict=True)]

    def times(s: tuple | None, k: int) -> list:
        if s is None:
            return [None] * n
        text = iso_many(np.where(s[0] > 0, s[k], 0.0))
        return [t if c else None for c, t in zip(s[0].tolist(), text, strict=True)]

    def derived(s: tuple | None, x: np.ndarray | None) -> list:
        return [None] * n if s is None or x is None else [round6(v) if c else None
                                                          for c, v in zip(s[0].tolist(), x.tolist(), strict=True)]

    gust_max, gust_ts = values(gust, 4), times(gust, 5)
    wind_max = values(wind, 4)
    temp_min, temp_min_ts, temp_max, temp_max_ts = values(temp, 2), times(temp, 3), values(temp, 4), times(temp, 5)
    with np.errstate(invalid="ignore", divide="ignore"):
        temp_mean = derived(temp, None if temp is None else temp[1] / temp[0])
    rain_total = derived(rain, None if rain is None else rain[1])
    has_msl = [False] * n if msl is None else (msl[0] > 0).tolist()
    per_var = {True: msl, False: station_p}
    lows = {m: values(s, 2) for m, s in per_var.items()}
    highs = {m: values(s, 4) for m, s in per_var.items()}
    ranges = {m: derived(s, None if s is None else s[4] - s[2]) for m, s in per_var.items()}
    counts = rows[1].tolist()
    out = []
    for i in range(n):
        m = has_msl[i]
        low = lows[m][i]
        out.append(orjson.dumps({
            "kind": "daily", "ts": iso_start[i], "end": iso_end[i], "window": "1d",
            "scope": "station", "key": station, "station": station, "day": iso_start[i][:10],
            "observations": counts[i],
            "gust_max": gust_max[i], "gust_max_ts": gust_ts[i], "wind_max": wind_max[i],
            "temp_min": temp_min[i], "temp_min_ts": temp_min_ts[i],
            "temp_max": temp_max[i], "temp_max_ts": temp_max_ts[i],
            "temp_mean": temp_mean[i], "precip_total": rain_total[i],
            "pressure_min": low, "pressure_max": highs[m][i], "pressure_range": ranges[m][i],
            "pressure_variable": ("pressure_msl_hpa" if m else "pressure_hpa") if low is not None else None,
            "final": True,
        }))
    return out


def iso_many(ts: np.ndarray) -> list[str]:
    """`iso_utc` of each time; whole seconds (the usual case) by numpy at once, the same text."""
    if len(ts) and bool(np.all(ts == np.floor(ts))) and bool(np.all(np.abs(ts) < 1e11)):
        return [s + "Z" for s in np.datetime_as_string(ts.astype(np.int64).astype("datetime64[s]"), unit="s").tolist()]
    return [iso_utc(t) for t in ts.tolist()]
