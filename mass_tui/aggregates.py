"""Tumbling windows in event time per station and per group label, and the daily summary.

Windows are aligned to the UTC epoch (a 1 h window is [HH:00, HH+1:00) UTC,
a day is the UTC day), as in Flink's and Kafka Streams' tumbling windows.
Each reading goes to the window its own timestamp falls in (event time),
not the one it arrived in.

Lateness (the Dataflow model: Akidau et al., "The Dataflow Model", VLDB
2015): every scope (a station, or a group such as a building) has a
watermark, the newest event time it has seen. A window [start, end) stays
open until the watermark passes `end + lateness`; a reading older than the
watermark whose window is still open updates it (and is counted as `late`
in it); a reading whose window has closed already is counted in
`too_late` and left out of the aggregates (it is still in the stored stream).

Records (one per scope, window size, window start and variable; what the
SQL view `aggregates`, `decode` and the PostgreSQL table give): `{kind
"window", ts (window start, ISO UTC), end, window ("1m"/"1h"/"1d"), scope
("station", or a group such as "building" or "building+floor"), key (the
station name, or the group's label values joined by "/"), station (station
scope only), variable, count, mean, min, min_ts, max, max_ts, sum (only for
accumulated quantities: precipitation, energy), late, final}`. A window
written at stop before it closed has `final: false`; a later record of the
same window supersedes it.

Stored form (`aggregates.jsonl`): the windows of one variable and scope that
close together are one "windows" line of arrays, `{kind "windows", window,
scope, key, station, variable, final, seconds (the window length), start,
count, mean, min, min_ts, max, max_ts, sum, late}` (times as epoch seconds),
so a replay that closes a 1 min window per reading writes one line per
variable per batch, not one per window; `expand` turns a line into records.

Daily summary (`kind` "daily", per station and UTC day, from the 1 d
windows, as a weather observer's daily log: WMO No. 8, Guide to
Instruments and Methods of Observation): `gust_max` with `gust_max_ts`,
`wind_max`, `temp_min`/`temp_max` with their times, `temp_mean`,
`precip_total` (mm), `pressure_min`/`pressure_max`/`pressure_range` (hPa,
sea-level pressure when the station reports it, else station pressure)
and `observations` (rows that day). A quantity the station does not
report is null.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, truediv
from typing import Any

import numpy as np
import orjson

from sources.schema import iso_utc

WINDOWS: dict[str, float] = {"1m": 60.0, "1h": 3600.0, "1d": 86400.0}
# Quantities that accumulate: a sum over a window means something (rain in a day, energy in an hour).
SUMMED = frozenset({"precip_mm", "snow_mm", "energy_kwh"})
ROWS = "_rows"  # the stats key counting rows (any variable present) in a window
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_window(spec: str) -> float:
    """"1m", "15m", "1h", "1d", "30s" -> seconds. Raises ValueError on anything else."""
    text = str(spec).strip()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"{spec!r} is not a window length like 1m, 1h or 1d")
    return int(text[:-1]) * _UNITS[text[-1]]


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


_FIGURES = attrgetter("count", "total", "low", "low_ts", "high", "high_ts", "late")

Scope = tuple[str, str]  # ("station", name) or (group spec, label values joined by "/")


class Aggregator:
    """Tumbling-window aggregates of scored batches; no I/O (the sink writes the lines `add` returns).

    `windows`: name -> length in seconds. `lateness`: seconds a window stays
    open after its end in event time. `groups`: group specs, each a label name
    or names joined by "+" ("building", "building+floor"): a station with all
    of a spec's labels is aggregated in that group too.

    One reading (the live case) goes through plain-float code; a batch is
    computed a column at a time, and the windows that open and close within
    it (most of a replay's) become JSON lines without a Python object per
    window. Both give the same lines (a property test holds them equal).
    """

    def __init__(self, windows: Mapping[str, float] | None = None, lateness: float = 3600.0,
                 groups: Sequence[str] = ("building", "building+floor")) -> None:
        self.windows = dict(WINDOWS if windows is None else windows)
        if lateness < 0:
            raise ValueError(f"lateness {lateness} must be >= 0")
        self.lateness = float(lateness)
        self.groups = [tuple(spec.split("+")) for spec in groups]
        # False: every window through segment reductions and every line through one orjson call
        # (the plain path a property test holds the shortcuts equal to).
        self._shortcuts = True
        self._group_names = list(groups)
        # (scope, window) -> window start -> variable -> stats; in insertion order, which is start
        # order but for late readings, so closing looks at the front only.
        self._open: dict[tuple[Scope, str], dict[int, dict[str, Stats]]] = {}
        # Windows a batch left open, kept as columns until something needs them as Stats (`_Block`);
        # in `_open`'s insertion order they come after every window there.
        self._blocks: dict[tuple[Scope, str], list[_Block]] = {}
        self.watermark: dict[Scope, float] = {}
        # station -> window -> readings older than the watermark that updated an open window,
        # and readings whose window had closed (left out of that window size's aggregates).
        self.late: dict[str, dict[str, int]] = {}
        self.too_late: dict[str, dict[str, int]] = {}

    # --- input -------------------------------------------------------------
    def scopes(self, station: str, labels: Mapping[str, str]) -> list[Scope]:
        """The station itself, then each group whose labels the station has."""
        out: list[Scope] = [("station", station)]
        for name, parts in zip(self._group_names, self.groups, strict=True):
            if all(labels.get(p) for p in parts):
                out.append((name, "/".join(labels[p] for p in parts)))
        return out

    def add(self, station: str, labels: Mapping[str, str], ts: np.ndarray,
            columns: Mapping[str, np.ndarray]) -> list[bytes]:
        """One station's rows (epoch seconds, any order; NaN = absent). Returns the JSON lines of the
        windows this closed (`decode` turns them into records)."""
        return self.add_many({station: None}, {station: labels}, ts, columns)

    def add_many(self, rows: Mapping[str, np.ndarray | None], labels: Mapping[str, Mapping[str, str]],
                 ts: np.ndarray, columns: Mapping[str, np.ndarray]) -> list[bytes]:
        """Several stations' rows of one batch: `rows` station -> its row indices, ascending (None:
        every row). A group scope takes the rows of all its stations in batch order, as one reading
        at a time would (its watermark, hence lateness, depends on that order). Returns lines as `add`."""
        lines = self._add_many(rows, labels, ts, columns)
        return [line if isinstance(line, bytes) else b"".join(line) for line in lines]

    def add_many_data(self, rows: Mapping[str, np.ndarray | None], labels: Mapping[str, Mapping[str, str]],
                      ts: np.ndarray, columns: Mapping[str, np.ndarray]) -> tuple[bytes, int]:
        """`add_many`'s lines as one bytes, each ending in a newline, and how many: what a store
        appends, put together once (a line of a batch's windows can be tens of megabytes)."""
        lines = self._add_many(rows, labels, ts, columns)
        pieces: list[bytes] = []
        for line in lines:
            if isinstance(line, bytes):
                pieces += (line, b"\n")
            else:
                pieces += line
                pieces.append(b"\n")
        return b"".join(pieces), len(lines)

    def _add_many(self, rows: Mapping[str, np.ndarray | None], labels: Mapping[str, Mapping[str, str]],
                  ts: np.ndarray, columns: Mapping[str, np.ndarray]) -> list[bytes | list[bytes]]:
        """`add_many`'s lines, a line either bytes or the list of its parts."""
        scoped: dict[Scope, list[np.ndarray | None]] = {}
        for station, idx in rows.items():
            for scope in self.scopes(station, labels.get(station, {})):
                scoped.setdefault(scope, []).append(idx)
        out: list[bytes | list[bytes]] = []
        for scope, parts in scoped.items():
            if len(parts) == 1:
                idx = parts[0]
            else:  # a group of several stations: their rows back in batch order
                idx = np.sort(np.concatenate([np.arange(len(ts)) if p is None else p for p in parts]))
            t = ts if idx is None else ts[idx]
            if len(t) == 1:
                out += self._add_one(scope, float(t[0]), {k: float(c[0] if idx is None else c[idx[0]])
                                                          for k, c in columns.items()})
            elif len(t):
                out += self._add_scope(scope, np.asarray(t, dtype=np.float64),
                                       columns if idx is None else {k: c[idx] for k, c in columns.items()})
        return out

    def _add_scope(self, scope: Scope, ts: np.ndarray, columns: Mapping[str, np.ndarray]
                   ) -> list[bytes | list[bytes]]:
        """A scope's rows (two or more), a column at a time; lines as `_add_many`."""
        present = {name: ~np.isnan(col) for name, col in columns.items()}
        any_value = np.zeros(len(ts), dtype=bool)
        for mask in present.values():
            any_value |= mask
        series = [(ROWS, np.zeros(len(ts)), any_value), *((n, c, present[n]) for n, c in columns.items())]
        # A series with a value in every row shares its windows with the others (`_Rows`), and
        # their stats are computed together, one numpy call for all of them (`_Rows.stats_of`).
        everywhere = [bool(has.all()) for _name, _col, has in series]
        shortcuts = self._shortcuts
        full = [name for (name, _col, _has), every in zip(series[1:], everywhere[1:], strict=True) if every]
        matrix = np.stack([columns[name] for name in full]) if shortcuts and full else None
        ordered = bool(np.all(ts[1:] >= ts[:-1]))
        out: list[bytes | list[bytes]] = []
        station = scope[1] if scope[0] == "station" else None
        before = self.watermark.get(scope, -math.inf)
        # What the watermark was when each row arrived: rows come in order within the batch.
        seen = np.maximum(before, np.concatenate(([-np.inf], np.maximum.accumulate(ts)[:-1])))
        mark = max(before, float(ts.max()))
        for wname, width in self.windows.items():
            bucket = np.floor(ts / width)
            end = (bucket + 1.0) * width + self.lateness
            accepted = end > seen
            late = accepted & (ts < seen)
            if station is not None:
                _count(self.too_late, station, wname, int((~accepted & any_value).sum()))
                _count(self.late, station, wname, int((late & any_value).sum()))
            key = (scope, wname)
            windows = self._open.setdefault(key, {})
            blocks = self._blocks.get(key)
            # Windows this batch opens and closes go straight to lines (a station's days to daily
            # summaries as well, from the same column stats); the rest stay open.
            direct = accepted & (end <= mark)
            held = None  # rows whose window is open already
            if windows or blocks:
                starts = (bucket * width).astype(np.int64)
                known = np.fromiter(windows, np.int64, len(windows))
                if blocks:
                    known = np.concatenate([known, *(b.starts for b in blocks)])
                held = np.isin(starts, known)
                direct &= ~held
            # The windows left open: a new block (and merged into the last block for readings that
            # land in its windows), or, when that does not fit, Stats merged one window at a time.
            into: _Block | None = None
            columnar = shortcuts
            if shortcuts and held is not None and (held & accepted & any_value).any():
                into = blocks[-1] if blocks else None
                if into is None or not into.takes(starts[held & accepted & any_value],
                                                  [(name, starts[held & accepted & has])
                                                   for name, _col, has in series]):
                    self._materialize(key)
                    into, columnar = None, False
            fresh: list[tuple[str, tuple]] = []
            days: dict[str, tuple] | None = {} if station is not None and width == 86400.0 else None
            # the stats of the series with a value in each row, by part (see below)
            shared: dict[str, dict[str, tuple]] = {}
            dumps = _Dumps() if shortcuts else None
            for (name, col, has), every in zip(series, everywhere, strict=True):
                use = accepted & has
                if not use.any():
                    continue
                # "quick": windows the batch closes; "new": windows it opens and leaves open;
                # "old": windows open already (only with `into`); "slow": new and old, merged as Stats
                parts = (("quick", use & direct), *((("new", use & ~direct & ~held), ("old", use & held))
                                                    if into is not None else
                                                    (("new" if columnar else "slow", use & ~direct),)))
                for part, rows in parts:
                    if not rows.any() or (part == "quick" and name == ROWS and days is None):
                        continue
                    if shortcuts and every:
                        if part not in shared:
                            together = _Rows(bucket[rows], ts[rows], late[rows], ordered)
                            shared[part] = together.stats_of(full, None if matrix is None else
                                                             np.compress(rows, matrix, axis=1))
                        stats = shared[part][name]
                    else:
                        stats = _Rows(bucket[rows], ts[rows], late[rows], ordered and shortcuts,
                                      shortcuts).stats(col[rows])
                    if part == "slow":
                        self._merge(windows, width, name, stats)
                    elif part == "new":
                        fresh.append((name, stats))
                    elif part == "old":
                        into.merge(name, (stats[0] * width).astype(np.int64), stats)  # type: ignore[union-attr]
                    else:
                        if name != ROWS:
                            out.append(_line(scope, wname, width, name, stats, True, dumps))
                        if days is not None:
                            days[name] = stats
            if fresh:
                block = _Block(width, fresh)
                if days is not None:  # a station's open days: the UI reads them (open_daily) as Stats
                    block.materialize(windows)
                else:
                    self._blocks.setdefault(key, []).append(block)
            if days:
                out += _daily_lines(scope[1], width, days)
        self.watermark[scope] = mark
        out += self._close(scope)
        return out

    def _add_one(self, scope: Scope, t: float, values: dict[str, float]) -> list[bytes]:
        """One reading of a scope, in plain floats (the live path: no numpy call per variable)."""
        items = [(k, v) for k, v in values.items() if v == v]
        if not items:
            return []
        items.insert(0, (ROWS, 0.0))
        out: list[bytes] = []
        station = scope[1] if scope[0] == "station" else None
        for wname in self.windows:
            self._materialize((scope, wname))
        seen = self.watermark.get(scope, -math.inf)
        is_late = t < seen
        for wname, width in self.windows.items():
            bucket = math.floor(t / width)
            if (bucket + 1.0) * width + self.lateness <= seen:
                if station is not None:
                    _count(self.too_late, station, wname, 1)
                continue
            if is_late and station is not None:
                _count(self.late, station, wname, 1)
            windows = self._open.setdefault((scope, wname), {})
            start = int(bucket * width)
            stats = windows.get(start)
            if stats is None:
                stats = windows[start] = {}
            for name, v in items:
                s = stats.get(name)
                if s is None:
                    stats[name] = Stats(1, v, v, t, v, t, int(is_late))
                else:
                    s.merge(1, v, v, t, v, t, int(is_late))
        if t > seen:
            self.watermark[scope] = t
        out += self._close(scope)
        return out

    def _merge(self, windows: dict[int, dict[str, Stats]], width: float, name: str, stats: tuple) -> None:
        starts, counts, totals, lo, lo_ts, hi, hi_ts, lates = stats
        # Python numbers a column at a time: numpy scalars one by one cost several times as much.
        for start, *figures in zip((starts * width).astype(np.int64).tolist(), counts.tolist(), totals.tolist(),
                                   lo.tolist(), lo_ts.tolist(), hi.tolist(), hi_ts.tolist(),
                                   np.asarray(lates, dtype=np.int64).tolist(), strict=True):
            per = windows.get(start)
            if per is None:
                per = windows[start] = {}
            entry = per.get(name)
            if entry is None:
                entry = per[name] = Stats()
            entry.merge(*figures)

    def _materialize(self, key: tuple[Scope, str]) -> None:
        """The blocks of a scope's window size as Stats in `_open`, after its windows there."""
        blocks = self._blocks.pop(key, None)
        if blocks:
            windows = self._open.setdefault(key, {})
            for block in blocks:
                block.materialize(windows)

    def _close(self, scope: Scope) -> list[bytes]:
        mark = self.watermark.get(scope, -math.inf)
        out: list[bytes] = []
        for wname, width in self.windows.items():
            key = (scope, wname)
            windows = self._open.get(key)
            blocks = self._blocks.get(key)
            if blocks:
                due = blocks[0].due(width, self.lateness, mark)
                if not windows and (due < len(blocks[0].starts) or len(blocks) == 1
                                    or blocks[1].due(width, self.lateness, mark) == 0):
                    # the windows that close are all in the first block: their lines from its columns
                    if due:
                        out += blocks[0].lines(scope, wname, width, due)
                        if blocks[0].drop(due):
                            blocks.pop(0)
                            if not blocks:
                                del self._blocks[key]
                    continue
                if due and all(start + width + self.lateness <= mark for start in windows or ()):
                    self._materialize(key)  # the windows that close run on into the blocks
                    windows = self._open.get(key)
            due_windows: list[tuple[int, dict[str, Stats]]] = []
            while windows:
                start = next(iter(windows))
                if start + width + self.lateness > mark:
                    break  # a late-opened window behind it waits its turn: it takes no reading meanwhile
                due_windows.append((start, windows.pop(start)))
            if due_windows:
                out += self._records(scope, wname, width, due_windows, final=True)
        return out

    # --- output ------------------------------------------------------------
    def flush(self) -> list[bytes]:
        """Every window still open, as lines (`final: false` unless its time has passed); state kept."""
        for key in list(self._blocks):
            self._materialize(key)
        out: list[bytes] = []
        for (scope, wname), windows in self._open.items():
            width = self.windows[wname]
            mark = self.watermark.get(scope, -math.inf)
            ordered = sorted(windows.items())
            for final in (True, False):
                part = [(start, stats) for start, stats in ordered if (start + width + self.lateness <= mark) == final]
                if part:
                    out += self._records(scope, wname, width, part, final)
        return out

    def open_daily(self, station: str) -> list[dict[str, Any]]:
        """The daily summaries of a station's days still open (today, so far), oldest first."""
        day = _day_window(self.windows)
        if day is None:
            return []
        windows = self._open.get((("station", station), day), {})
        return [daily_summary(station, start, self.windows[day], windows[start], final=False)
                for start in sorted(windows)]

    def _records(self, scope: Scope, wname: str, width: float, due: list[tuple[int, dict[str, Stats]]],
                 final: bool) -> list[bytes]:
        """Lines of windows kept as `Stats`: one per variable (all its windows), and a day's summary."""
        head = _head(scope, wname, width)
        out = []
        if len(due) == 1:  # the live case: one window closes
            start, stats = due[0]
            for name, x in stats.items():
                if name != ROWS:
                    record = {**head, "variable": name, "final": final, "seconds": width, "start": [float(start)],
                              "count": [x.count], "mean": [_r(x.total / x.count)], "min": [x.low],
                              "min_ts": [x.low_ts], "max": [x.high], "max_ts": [x.high_ts]}
                    if name in SUMMED:
                        record["sum"] = [_r(x.total)]
                    record["late"] = [x.late]
                    out.append(orjson.dumps(record))
            if scope[0] == "station" and width == 86400.0:
                out.append(orjson.dumps(daily_summary(scope[1], start, width, stats, final)))
            return out
        names: dict[str, None] = {}
        for _start, stats in due:
            names.update(dict.fromkeys(stats))
        for name in names:
            if name == ROWS:
                continue
            starts = [float(start) for start, st in due if name in st]
            # one tuple per window, turned into one list per field
            count, total, low, low_ts, high, high_ts, late = map(list, zip(*[_FIGURES(st[name]) for _s, st in due
                                                                            if name in st], strict=True))
            record = {**head, "variable": name, "final": final, "seconds": width, "start": starts, "count": count,
                      "mean": list(map(_r, map(truediv, total, count))), "min": low, "min_ts": low_ts, "max": high,
                      "max_ts": high_ts}
            if name in SUMMED:
                record["sum"] = list(map(_r, total))
            record["late"] = late
            out.append(orjson.dumps(record))
        if scope[0] == "station" and width == 86400.0:  # the daily log, from the day's window
            out += [orjson.dumps(daily_summary(scope[1], start, width, stats, final)) for start, stats in due]
        return out


def decode(lines: Iterable[bytes]) -> list[dict[str, Any]]:
    """The records of aggregate lines: one per window (a "windows" line holds several) or day."""
    out: list[dict[str, Any]] = []
    for line in lines:
        out += expand(orjson.loads(line))
    return out


_PER_WINDOW = ("start", "count", "mean", "min", "min_ts", "max", "max_ts", "sum", "late")


def expand(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A stored line as records: a "windows" line (arrays, one entry per window) as one "window"
    record per window, with `ts` its start; any other line as it is."""
    if record.get("kind") != "windows":
        return [dict(record)]
    head = {"kind": "window", "window": record.get("window"), "scope": record.get("scope"),
            "key": record.get("key")}
    if record.get("station") is not None:
        head["station"] = record["station"]
    head["variable"] = record.get("variable")
    arrays = {k: record[k] for k in _PER_WINDOW if isinstance(record.get(k), list)}
    n = len(arrays.get("start", ()))
    if any(len(a) != n for a in arrays.values()):
        return []  # not a line mass wrote
    seconds = record.get("seconds")
    out = []
    for i in range(n):
        r = dict(head)
        for k, a in arrays.items():
            if k == "start":
                r["ts"] = iso_utc(a[i])
                if isinstance(seconds, int | float):
                    r["end"] = iso_utc(a[i] + seconds)
            elif k in ("min_ts", "max_ts"):
                r[k] = iso_utc(a[i])
            else:
                r[k] = a[i]
        r["final"] = record.get("final")
        out.append(r)
    return out


class _Block:
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
        if not bool(np.isin(starts, self.starts).all()):
            return False
        for name, where in per_series:
            if where.size:
                got = self.series.get(name)
                if got is None:
                    return False
                if got[0] is not None and not bool(got[0][np.searchsorted(self.starts, where)].all()):
                    return False
        return True

    def merge(self, name: str, starts: np.ndarray, stats: tuple) -> None:
        """A series' stats of more readings (windows starting at `starts`, each once) into its
        windows here, as `Stats.merge` would: counts and sums added, the lower (higher) value
        or the earlier time of an equal one."""
        _starts, counts, totals, lo, lo_ts, hi, hi_ts, lates = stats
        at = np.searchsorted(self.starts, starts)
        count, total, low, low_ts, high, high_ts, late = self.series[name][1]
        count[at] += np.asarray(counts, dtype=np.int64)
        total[at] += totals
        take = (lo < low[at]) | ((lo == low[at]) & (lo_ts < low_ts[at]))
        low[at], low_ts[at] = np.where(take, lo, low[at]), np.where(take, lo_ts, low_ts[at])
        take = (hi > high[at]) | ((hi == high[at]) & (hi_ts < high_ts[at]))
        high[at], high_ts[at] = np.where(take, hi, high[at]), np.where(take, hi_ts, high_ts[at])
        late[at] += np.asarray(lates, dtype=np.int64)

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
        head = _head(scope, wname, width)
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
            count, total, low, low_ts, high, high_ts, late = (np.ascontiguousarray(f[:k] if pick is None else
                                                                                   f[:k][pick]) for f in figures)
            # `_r` is np.round(x, 6) but for a -0.0 it rounds to (its round() gives 0): + 0.0
            record = {**head, "variable": name, "final": True, "seconds": width,
                      "start": starts if pick is None else starts[pick], "count": count,
                      "mean": np.round(total / count, 6) + 0.0, "min": low, "min_ts": low_ts, "max": high,
                      "max_ts": high_ts}
            if name in SUMMED:
                record["sum"] = np.round(total, 6) + 0.0
            record["late"] = late
            out.append(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY))
        return out


class _Rows:
    """The rows of one scope's window size that one or more series take (in a batch: their window
    numbers `bucket`, times `t`, late flags): their windows, found once for every series with a value
    in each of these rows. `stats(v)` gives a series' stats per window: (starts as bucket numbers,
    count, sum, min, its time, max, its time, late).

    Ties keep the earliest time. Rows in time order (`ordered`: a replay, a backlog) take segment
    reductions, others a sort. With `shortcuts`, rows that are each alone in their window (hourly
    data in 1 min and 1 h windows) are their own stats: no reduction at all."""

    __slots__ = ("bucket", "t", "late", "ordered", "single", "edges", "counts", "lates", "starts", "segment")

    def __init__(self, bucket: np.ndarray, t: np.ndarray, late: np.ndarray, ordered: bool,
                 shortcuts: bool = True) -> None:
        self.bucket, self.t, self.late = bucket, t, late
        n = len(t)
        self.ordered = ordered or n < 2 or bool(np.all(t[1:] >= t[:-1]))
        self.single = False
        self.segment: np.ndarray | None = None
        if not self.ordered:
            return
        if shortcuts and (n < 2 or bool(np.all(bucket[1:] != bucket[:-1]))):
            self.single = True
            self.starts, self.counts, self.lates = bucket, np.ones(n, dtype=np.int64), late.astype(np.float64)
            return
        self.edges = np.concatenate(([0], np.flatnonzero(bucket[1:] != bucket[:-1]) + 1))
        self.counts = np.diff(np.append(self.edges, n))
        self.lates = np.add.reduceat(late.astype(np.float64), self.edges)
        self.starts = bucket[self.edges]

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
            out.update((name, (self.starts, self.counts, v, v, t, v, t, self.lates))
                       for name, v in zip(names, values, strict=True))
            return out
        edges, counts = self.edges, self.counts
        zero, first = np.zeros(len(edges)), t[edges]  # ROWS: all 0.0, so the first row is min and max
        out = {ROWS: (self.starts, counts, zero, zero, first, zero, first, self.lates)}
        totals = np.add.reduceat(values, edges, axis=1)
        lows, highs = np.minimum.reduceat(values, edges, axis=1), np.maximum.reduceat(values, edges, axis=1)
        # per window, the first row holding its min (max): the least row number where the value is it
        where = np.arange(len(t))
        low_at = np.minimum.reduceat(np.where(values == np.repeat(lows, counts, axis=1), where, len(t)), edges,
                                     axis=1)
        high_at = np.minimum.reduceat(np.where(values == np.repeat(highs, counts, axis=1), where, len(t)), edges,
                                      axis=1)
        low_ts, high_ts = t[low_at], t[high_at]
        out.update((name, (self.starts, counts, totals[j], lows[j], low_ts[j], highs[j], high_ts[j], self.lates))
                   for j, name in enumerate(names))
        return out

    def stats(self, v: np.ndarray) -> tuple:
        t = self.t
        if not self.ordered:
            bucket = self.bucket
            starts, inv = np.unique(bucket, return_inverse=True)
            counts = np.bincount(inv)
            totals = np.bincount(inv, weights=v)
            lates = np.bincount(inv, weights=self.late.astype(np.float64))
            first = np.concatenate(([0], np.cumsum(counts)[:-1]))
            lo = np.lexsort((t, v, inv))[first]  # per window: the smallest value, earliest first
            hi = np.lexsort((t, -v, inv))[first]  # the largest value, earliest first
            return starts, counts, totals, v[lo], t[lo], v[hi], t[hi], lates
        if self.single:
            return self.starts, self.counts, v, v, t, v, t, self.lates
        edges = self.edges
        if self.segment is None:
            self.segment = np.repeat(np.arange(len(edges)), self.counts)
        segment = self.segment
        totals = np.add.reduceat(v, edges)
        lows, highs = np.minimum.reduceat(v, edges), np.maximum.reduceat(v, edges)
        return (self.starts, self.counts, totals, lows, t[_first_where(v == lows[segment], segment)], highs,
                t[_first_where(v == highs[segment], segment)], self.lates)


def _first_where(mask: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Per segment (segments consecutive, each with a True), the first index where mask holds."""
    hits = np.flatnonzero(mask)
    seg = segment[hits]
    return hits[np.concatenate(([True], seg[1:] != seg[:-1]))]


def _head(scope: Scope, wname: str, width: float) -> dict[str, Any]:
    head: dict[str, Any] = {"kind": "windows", "window": wname, "scope": scope[0], "key": scope[1]}
    if scope[0] == "station":
        head["station"] = scope[1]
    return head


def _line(scope: Scope, wname: str, width: float, name: str, stats: tuple, final: bool,
          dumps: _Dumps | None = None) -> bytes | list[bytes]:
    """One variable's closed windows of one scope as one line of arrays (a "windows" line, see `expand`).

    A batch's windows cost one orjson call per variable, not one object per window: a replay of
    minute data closes a 1 min window per reading. Times are epoch seconds here (`expand`, the SQL
    view and the PostgreSQL sink turn them into times). With `dumps` (the lines of one scope's
    window size) the line is put together from each array dumped once: an array the same as one
    dumped already (a window per reading: min = max = mean = the values, their times = the starts)
    is not dumped again, and the line is the list of its parts (joined once with the others'): the
    same bytes as one orjson call for the record."""
    starts, counts, totals, lo, lo_ts, hi, hi_ts, lates = stats
    record = {**_head(scope, wname, width), "variable": name, "final": final, "seconds": width}
    if dumps is None:
        record.update({"start": starts * width, "count": np.asarray(counts, dtype=np.int64),
                       "mean": np.round(totals / counts, 6), "min": lo, "min_ts": lo_ts, "max": hi,
                       "max_ts": hi_ts})
        if name in SUMMED:
            record["sum"] = np.round(totals, 6)
        record["late"] = np.asarray(lates, dtype=np.int64)
        return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)
    parts = [orjson.dumps(record)[:-1],
             b',"start":', dumps.times(starts, width, lo_ts), b',"count":', dumps.ints(counts),
             b',"mean":', dumps(np.round(totals / counts, 6), totals), b',"min":', dumps(lo),
             b',"min_ts":', dumps(lo_ts), b',"max":', dumps(hi), b',"max_ts":', dumps(hi_ts)]
    if name in SUMMED:
        parts += [b',"sum":', dumps(np.round(totals, 6), totals)]
    parts += [b',"late":', dumps.ints(lates), b"}"]
    return parts


class _Dumps:
    """orjson.dumps of numpy arrays, each array (by identity; kept alive here, so ids stay unique)
    dumped once: the lines of one scope's window size share their windows' starts, counts and
    late counts, and a window per reading has one array for its values, minima and maxima."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done: dict[tuple[int, str], tuple[np.ndarray, bytes]] = {}

    def __call__(self, a: np.ndarray, same_as: np.ndarray | None = None) -> bytes:
        """`a` as orjson writes it; `same_as`: an array `a` may equal (bit for bit), dumped instead."""
        got = self._done.get((id(a), ""))
        if got is not None:
            return got[1]
        if same_as is not None and _same(a, same_as):
            data = self(same_as)
        else:
            data = orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)
        self._done[(id(a), "")] = (a, data)
        return data

    def ints(self, a: np.ndarray) -> bytes:
        """Whole numbers (counts) as int64."""
        got = self._done.get((id(a), "int"))
        if got is None:
            got = self._done[(id(a), "int")] = (a, orjson.dumps(np.asarray(a, dtype=np.int64),
                                                                 option=orjson.OPT_SERIALIZE_NUMPY))
        return got[1]

    def times(self, starts: np.ndarray, width: float, like: np.ndarray) -> bytes:
        """Window starts (bucket numbers) as epoch seconds; `like`: times they may equal."""
        got = self._done.get((id(starts), "times"))
        if got is None:
            got = self._done[(id(starts), "times")] = (starts, self(starts * width, like))
        return got[1]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit the same float64 arrays (so -0.0 is not 0.0)."""
    return (a.shape == b.shape and a.dtype == b.dtype == np.float64
            and bool(np.array_equal(np.ascontiguousarray(a).view(np.int64), np.ascontiguousarray(b).view(np.int64))))


def _count(table: dict[str, dict[str, int]], station: str, window: str, n: int) -> None:
    if n:
        per = table.setdefault(station, {})
        per[window] = per.get(window, 0) + n


def _r(value: float) -> float:
    """Derived figures (means, sums, ranges) to 6 decimals: no binary-fraction noise like 5.400000000000091.

    The arithmetic of `np.round(x, 6)` (scale, round half to even, unscale), so one reading at a
    time and a batch write the same numbers."""
    return round(value * 1e6) / 1e6





def _day_window(windows: Mapping[str, float]) -> str | None:
    for name, width in windows.items():
        if width == 86400.0:
            return name
    return None


def daily_summary(station: str, start: float, width: float, stats: Mapping[str, Stats],
                  final: bool) -> dict[str, Any]:
    """The daily record (see the module docstring) from one station's 1 d window stats."""

    def get(name: str) -> Stats | None:
        s = stats.get(name)
        return s if s is not None and s.count else None

    gust, wind, temp, rain = get("gust_mps"), get("wind_mps"), get("temp_c"), get("precip_mm")
    pressure_var = "pressure_msl_hpa" if get("pressure_msl_hpa") else "pressure_hpa"
    pressure = get(pressure_var)
    rows = get(ROWS)
    return {
        "kind": "daily", "ts": iso_utc(start), "end": iso_utc(start + width), "window": "1d",
        "scope": "station", "key": station, "station": station, "day": iso_utc(start)[:10],
        "observations": rows.count if rows else 0,
        "gust_max": gust.high if gust else None, "gust_max_ts": iso_utc(gust.high_ts) if gust else None,
        "wind_max": wind.high if wind else None,
        "temp_min": temp.low if temp else None, "temp_min_ts": iso_utc(temp.low_ts) if temp else None,
        "temp_max": temp.high if temp else None, "temp_max_ts": iso_utc(temp.high_ts) if temp else None,
        "temp_mean": _r(temp.total / temp.count) if temp else None,
        "precip_total": _r(rain.total) if rain else None,
        "pressure_min": pressure.low if pressure else None, "pressure_max": pressure.high if pressure else None,
        "pressure_range": _r(pressure.high - pressure.low) if pressure else None,
        "pressure_variable": pressure_var if pressure else None,
        "final": final,
    }


def _daily_lines(station: str, width: float, stats: Mapping[str, tuple]) -> list[bytes]:
    """The daily records (`daily_summary`, final) of the days a batch opened and closed, from the
    per-day column stats of each variable (`_column_stats`; `ROWS` has every day)."""
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
    iso_start, iso_end = _iso_many(starts), _iso_many(starts + width)

    def values(s: tuple | None, k: int) -> list:
        return [None] * n if s is None else [v if c else None for c, v in zip(s[0].tolist(), s[k].tolist(),
                                                                             strict=True)]

    def times(s: tuple | None, k: int) -> list:
        if s is None:
            return [None] * n
        text = _iso_many(np.where(s[0] > 0, s[k], 0.0))
        return [t if c else None for c, t in zip(s[0].tolist(), text, strict=True)]

    def derived(s: tuple | None, x: np.ndarray | None) -> list:
        return [None] * n if s is None or x is None else [_r(v) if c else None
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


def _iso_many(ts: np.ndarray) -> list[str]:
    """`iso_utc` of each time; whole seconds (the usual case) by numpy at once, the same text."""
    if len(ts) and bool(np.all(ts == np.floor(ts))) and bool(np.all(np.abs(ts) < 1e11)):
        return [s + "Z" for s in np.datetime_as_string(ts.astype(np.int64).astype("datetime64[s]"), unit="s").tolist()]
    return [iso_utc(t) for t in ts.tolist()]


def latest(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One record per window (kind, window, scope, key, variable, start): the last written wins."""
    out: dict[tuple, Mapping[str, Any]] = {}
    for r in records:
        out[(r.get("kind"), r.get("window"), r.get("scope"), r.get("key"), r.get("variable"), r.get("ts"))] = r
    return list(out.values())
