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
Two shorter forms of the same line: windows of one reading each write `value`
(and `mean`, `at` only where they differ from it and the starts) for count,
mean, min, max and their times; starts evenly spaced (a regular feed) write
`first` and `step` (start k = first + step * k, exact) for `start`.

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
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from operator import truediv
from typing import Any

import numpy as np
import orjson

from mass_tui.window_columns import Block, Dumps, Rows, daily_lines, member, window_line, window_lines
from mass_tui.window_stats import FIGURES, ROWS, SUMMED, Scope, Stats, round6, window_head
from sources.schema import iso_utc

__all__ = ["ROWS", "SUMMED", "WINDOWS", "Aggregator", "Scope", "Stats", "daily_summary", "decode", "expand",
           "latest", "parse_window"]

WINDOWS: dict[str, float] = {"1m": 60.0, "1h": 3600.0, "1d": 86400.0}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_window(spec: str) -> float:
    """"1m", "15m", "1h", "1d", "30s" -> seconds. Raises ValueError on anything else."""
    text = str(spec).strip()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"{spec!r} is not a window length like 1m, 1h or 1d")
    return int(text[:-1]) * _UNITS[text[-1]]


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
        # Windows a batch left open, kept as columns until something needs them as Stats (`Block`);
        # in `_open`'s insertion order they come after every window there.
        self._blocks: dict[tuple[Scope, str], list[Block]] = {}
        self.watermark: dict[Scope, float] = {}
        # station -> window -> readings older than the watermark that updated an open window,
        # and readings whose window had closed (left out of that window size's aggregates).
        self.late: dict[str, dict[str, int]] = {}
        self.too_late: dict[str, dict[str, int]] = {}
        # the same for group scopes, by "group=key" (building=b2): a reading on time for its station
        # may come after its group's watermark passed its window (a station that lags the others)
        self.group_late: dict[str, dict[str, int]] = {}
        self.group_too_late: dict[str, dict[str, int]] = {}

    # --- input -------------------------------------------------------------
    def _late_tables(self, scope: Scope) -> tuple[tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]], str]:
        """The (late, too_late) tables a scope counts in, and its name there."""
        if scope[0] == "station":
            return (self.late, self.too_late), scope[1]
        return (self.group_late, self.group_too_late), f"{scope[0]}={scope[1]}"

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
        names = list(columns)
        # The columns as one matrix (variables x rows), so a scope's rows are one take, not one a column.
        stacked = (np.stack([np.asarray(columns[name], dtype=np.float64) for name in names])
                   if self._shortcuts and len(names) > 1 and len(rows) > 1 else None)
        # Each row's station number (len(rows): none), for a group's rows: when the stations' rows
        # are disjoint lists of row numbers (as `_by_station_rows` gives), a lookup of each row's
        # station gives a group's rows in batch order without a sort.
        codes: np.ndarray | None = None
        looked = not self._shortcuts  # for codes (once, when a group needs them)
        for scope, parts in scoped.items():
            if len(parts) > 1 and not looked:
                codes, looked = self._station_codes(rows, len(ts)), True
                number = {id(p): k for k, p in enumerate(rows.values())}
            if len(parts) == 1:
                idx = parts[0]
            elif codes is not None:  # the same rows as the sorted concatenation below
                in_group = np.zeros(len(rows) + 1, dtype=bool)
                in_group[[number[id(p)] for p in parts]] = True
                idx = np.flatnonzero(in_group[codes])
            else:  # a group of several stations: their rows back in batch order
                idx = np.sort(np.concatenate([np.arange(len(ts)) if p is None else p for p in parts]))
            t = ts if idx is None else ts[idx]
            if len(t) == 1:
                out += self._add_one(scope, float(t[0]), {k: float(c[0] if idx is None else c[idx[0]])
                                                          for k, c in columns.items()})
            elif len(t):
                if stacked is not None:
                    matrix = stacked if idx is None else np.take(stacked, idx, axis=1)
                    scope_columns: Mapping[str, np.ndarray] = dict(zip(names, matrix, strict=True))
                else:
                    matrix = None
                    scope_columns = columns if idx is None else {k: c[idx] for k, c in columns.items()}
                out += self._add_scope(scope, np.asarray(t, dtype=np.float64), scope_columns, matrix)
        return out

    @staticmethod
    def _station_codes(rows: Mapping[str, np.ndarray | None], n: int) -> np.ndarray | None:
        """Each of n rows' station, numbered in `rows`' order (len(rows) for a row of none); None
        unless every station has a list of row numbers and no row is in two of them."""
        if len(rows) < 2 or any(p is None for p in rows.values()):
            return None
        codes = np.full(n, len(rows), dtype=np.int64)
        for k, p in enumerate(rows.values()):
            codes[p] = k
        listed = sum(len(p) for p in rows.values())  # type: ignore[arg-type]
        return codes if int(np.count_nonzero(codes < len(rows))) == listed else None

    def _add_scope(self, scope: Scope, ts: np.ndarray, columns: Mapping[str, np.ndarray],
                   stacked: np.ndarray | None = None) -> list[bytes | list[bytes]]:
        """A scope's rows (two or more), a column at a time; lines as `_add_many`. `stacked`: the
        columns as one matrix (columns x rows, in `columns`' order), when the caller has it."""
        if stacked is not None and columns and not np.isnan(stacked).any():  # a value in every row and column
            any_value = np.ones(len(ts), dtype=bool)
            present = dict.fromkeys(columns, any_value)
            everywhere = [True] * (len(columns) + 1)
        else:
            present = {name: ~np.isnan(col) for name, col in columns.items()}
            any_value = np.zeros(len(ts), dtype=bool)
            for mask in present.values():
                any_value |= mask
            everywhere = [bool(any_value.all()), *(bool(has.all()) for has in present.values())]
        # A series with a value in every row shares its windows with the others (`Rows`), and
        # their stats are computed together, one numpy call for all of them (`Rows.stats_of`).
        series = [(ROWS, np.zeros(len(ts)), any_value), *((n, c, present[n]) for n, c in columns.items())]
        shortcuts = self._shortcuts
        full = [name for (name, _col, _has), every in zip(series[1:], everywhere[1:], strict=True) if every]
        if not (shortcuts and full):
            matrix = None
        elif stacked is not None and len(full) == len(columns):
            matrix = stacked
        else:
            matrix = np.stack([columns[name] for name in full])
        position = {name: j for j, name in enumerate(full)}  # a series' row in `matrix` (and its picks)
        ordered = bool(np.all(ts[1:] >= ts[:-1]))
        out: list[bytes | list[bytes]] = []
        station = scope[1] if scope[0] == "station" else None
        before = self.watermark.get(scope, -math.inf)
        # Rows in time order from the watermark on: none is late, and each row's window is open when
        # it comes (its end, (floor(t / width) + 1) * width + lateness, is after t: floor of the
        # rounded quotient is never above the true one, and the products of whole widths are exact).
        clean = shortcuts and ordered and float(ts[0]) >= before
        if clean:
            accepted, late = np.ones(len(ts), dtype=bool), np.zeros(len(ts), dtype=bool)
            mark = max(before, float(ts[-1]))
        else:
            # What the watermark was when each row arrived: rows come in order within the batch.
            seen = np.maximum(before, np.concatenate(([-np.inf], np.maximum.accumulate(ts)[:-1])))
            mark = max(before, float(ts.max()))
        for wname, width in self.windows.items():
            bucket = np.floor(ts / width)
            end = (bucket + 1.0) * width + self.lateness
            if not clean:
                accepted = end > seen
                late = accepted & (ts < seen)
            if not clean:
                tables, who = self._late_tables(scope)
                _count(tables[1], who, wname, int((~accepted & any_value).sum()))
                _count(tables[0], who, wname, int((late & any_value).sum()))
            key = (scope, wname)
            windows = self._open.setdefault(key, {})
            blocks = self._blocks.get(key)
            # Windows this batch opens and closes go straight to lines (a station's days to daily
            # summaries as well, from the same column stats); the rest stay open.
            direct = accepted & (end <= mark)
            held = None  # rows whose window is open already
            if windows or blocks:
                starts = (bucket * width).astype(np.int64)
                if clean:
                    # Rows from the watermark on, and windows opened by rows up to it: the rows' first
                    # window is the only one of theirs that can be open, and then the last one opened.
                    first = int(starts[0])
                    if first in windows or any(b.starts.size and int(b.starts[-1]) == first for b in blocks or ()):
                        held = starts == first
                    else:
                        held = np.zeros(len(ts), dtype=bool)
                else:
                    known = np.fromiter(windows, np.int64, len(windows))
                    if blocks:
                        known = np.concatenate([known, *(b.starts for b in blocks)])
                    held = member(starts, known)
                direct &= ~held
            # The windows left open: a new block (and merged into the last block for readings that
            # land in its windows), or, when that does not fit, Stats merged one window at a time.
            into: Block | None = None
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
            shared_rows: dict[str, tuple[Rows, np.ndarray | None]] = {}  # and the Rows and values behind them
            dumps = Dumps() if shortcuts else None
            common = None  # the parts of the series with a value in every row: the same for each
            quick: dict[str, list[bytes]] = {}  # their lines of the windows that close (`window_lines`)
            old_totals: np.ndarray | None = None  # their sums in the windows of the "old" part, carried on
            for (name, col, has), every in zip(series, everywhere, strict=True):
                if shortcuts and every:
                    if common is None:
                        common = _parts(accepted, direct, held, into is not None, columnar)
                    parts = common
                else:
                    parts = _parts(accepted & has, direct, held, into is not None, columnar)
                for part, rows in parts:
                    if part == "quick" and name == ROWS and days is None:
                        continue
                    if shortcuts and every:
                        if part not in shared:
                            pick = _selection(rows)
                            together = Rows(bucket[pick], ts[pick], late[pick], ordered)
                            picked = None if matrix is None else matrix[:, pick] if isinstance(pick, slice) else \
                                np.compress(pick, matrix, axis=1)
                            shared[part] = together.stats_of(full, picked)
                            shared_rows[part] = (together, picked)
                            if part == "quick" and dumps is not None and together.matrices is not None:
                                # the lines of these series, their figures a matrix at a time
                                quick = dict(zip(full, window_lines(scope, wname, width, full, together.matrices,
                                                                    True, dumps), strict=True))
                        stats = shared[part][name]
                        if part == "old" and name != ROWS:
                            if old_totals is None:  # every such series' sums carried on at once: one fold
                                together, picked = shared_rows[part]
                                at = (stats[0] * width).astype(np.int64)
                                carry = np.stack([into.totals(x, at) for x in full])  # type: ignore[union-attr]
                                old_totals = together.fold(picked, carry)
                            fold = partial(_row, old_totals[position[name]])
                        elif part == "slow" and name != ROWS:
                            together, picked = shared_rows[part]
                            fold = partial(together.fold, picked[position[name]])  # type: ignore[index]
                    else:
                        alone = Rows(bucket[rows], ts[rows], late[rows], ordered and shortcuts, shortcuts)
                        values = col[rows]
                        stats = alone.stats(values)
                        fold = partial(alone.fold, values)
                    # Readings into windows open already: their sums carried on (`Rows.fold`), so a
                    # window's sum is the same whichever batches its readings came in. ROWS sums 0.0s.
                    if part == "slow":
                        self._merge(windows, width, name, stats, None if name == ROWS else fold)
                    elif part == "new":
                        fresh.append((name, stats))
                    elif part == "old":
                        at = (stats[0] * width).astype(np.int64)
                        if name != ROWS:
                            stats = (*stats[:2], fold(into.totals(name, at)), *stats[3:])  # type: ignore[union-attr]
                        into.merge(name, at, stats)  # type: ignore[union-attr]
                    else:
                        if name != ROWS:
                            line = quick.get(name) if shortcuts and every else None
                            out.append(line if line is not None else
                                       window_line(scope, wname, width, name, stats, True, dumps))
                        if days is not None:
                            days[name] = stats
            if fresh:
                block = Block(width, fresh)
                if days is not None:  # a station's open days: the UI reads them (open_daily) as Stats
                    block.materialize(windows)
                else:
                    self._blocks.setdefault(key, []).append(block)
            if days:
                out += daily_lines(scope[1], width, days)
        self.watermark[scope] = mark
        out += self._close(scope)
        return out

    def _add_one(self, scope: Scope, t: float, values: dict[str, float]) -> list[bytes]:
        """One reading of a scope, in plain floats (the live path: no numpy call per variable)."""
        items = [(k, v) for k, v in values.items() if v == v]
        if not items:  # no value, but its time moves the watermark on, as in a batch (`_add_scope`)
            if t > self.watermark.get(scope, -math.inf):
                self.watermark[scope] = t
                return self._close(scope)
            return []
        items.insert(0, (ROWS, 0.0))
        out: list[bytes] = []
        for wname in self.windows:
            self._materialize((scope, wname))
        seen = self.watermark.get(scope, -math.inf)
        is_late = t < seen
        for wname, width in self.windows.items():
            bucket = math.floor(t / width)
            if (bucket + 1.0) * width + self.lateness <= seen:
                tables, who = self._late_tables(scope)
                _count(tables[1], who, wname, 1)
                continue
            if is_late:
                tables, who = self._late_tables(scope)
                _count(tables[0], who, wname, 1)
            windows = self._open.setdefault((scope, wname), {})
            start = int(bucket * width)
            stats = windows.get(start)
            if stats is None:
                stats = windows[start] = {}
            for name, v in items:
                s = stats.get(name)
                if s is None:
                    stats[name] = Stats(1, 0.0 + v, v, t, v, t, int(is_late))  # a sum is 0.0 + v, as `Rows.fold`
                else:
                    s.merge(1, v, v, t, v, t, int(is_late))
        if t > seen:
            self.watermark[scope] = t
        out += self._close(scope)
        return out

    def _merge(self, windows: dict[int, dict[str, Stats]], width: float, name: str, stats: tuple,
               fold: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """A series' stats of a batch's readings into its windows as Stats; with `fold` (`Rows.fold`
        of the readings' values) each window's sum is its readings added onto the sum it had."""
        starts, counts, totals, lo, lo_ts, hi, hi_ts, lates = stats
        at = (starts * width).astype(np.int64).tolist()
        if fold is not None:
            carry = [0.0] * len(at)
            for k, start in enumerate(at):
                entry = windows.get(start, {}).get(name)
                if entry is not None:
                    carry[k] = entry.total
            totals = fold(np.array(carry))
        # Python numbers a column at a time: numpy scalars one by one cost several times as much.
        for start, count, total, *figures in zip(at, counts.tolist(), totals.tolist(), lo.tolist(), lo_ts.tolist(),
                                                 hi.tolist(), hi_ts.tolist(),
                                                 np.asarray(lates, dtype=np.int64).tolist(), strict=True):
            per = windows.get(start)
            if per is None:
                per = windows[start] = {}
            entry = per.get(name)
            if entry is None:
                entry = per[name] = Stats()
            entry.merge(count, 0.0, *figures)
            entry.total = total if fold is not None else entry.total + total

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
        head = window_head(scope, wname, width)
        out = []
        if len(due) == 1:  # the live case: one window closes
            start, stats = due[0]
            for name, x in stats.items():
                if name != ROWS:
                    record = {**head, "variable": name, "final": final, "seconds": width, "start": [float(start)],
                              "count": [x.count], "mean": [round6(x.total / x.count)], "min": [x.low],
                              "min_ts": [x.low_ts], "max": [x.high], "max_ts": [x.high_ts]}
                    if name in SUMMED:
                        record["sum"] = [round6(x.total)]
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
            count, total, low, low_ts, high, high_ts, late = map(list, zip(*[FIGURES(st[name]) for _s, st in due
                                                                            if name in st], strict=True))
            record = {**head, "variable": name, "final": final, "seconds": width, "start": starts, "count": count,
                      "mean": list(map(round6, map(truediv, total, count))), "min": low, "min_ts": low_ts, "max": high,
                      "max_ts": high_ts}
            if name in SUMMED:
                record["sum"] = list(map(round6, total))
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


# A "windows" line's per-window array that sizes it: `count`, or `value` in the compact form (numbers only)
_SIZING = re.compile(rb'"(?:count|value)":\[')


def records_in(data: bytes) -> int:
    """How many records (`expand`, the SQL view `aggregates`) the stored lines in `data` hold: one
    per window of a "windows" line, one per other line (a daily summary); `data`: lines as the
    aggregator writes them, each ending in a newline or not. Counted on the bytes: the arrays hold
    numbers only, so a window is a comma more; the lines are not parsed."""
    body = data.strip(b"\n")
    if not body:
        return 0
    total = body.count(b"\n") + 1 - body.count(b'{"kind":"windows"')
    for found in _SIZING.finditer(body):
        start = found.end()
        end = body.find(b"]", start)
        if end > start:
            total += body.count(b",", start, end) + 1
    return total


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
    if "start" not in arrays:
        start = _stepped_starts(record, arrays)
        if start is not None:
            arrays["start"] = start
    if "count" not in arrays and isinstance(record.get("value"), list) and "start" in arrays:
        arrays = _single_arrays(record, arrays["start"])
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


def _stepped_starts(record: Mapping[str, Any], arrays: Mapping[str, list]) -> list[float] | None:
    """The starts of a line written with `first` and `step` (window_columns.Dumps.starts): first +
    step * k for each window k, the arithmetic the writer checked bit for bit; None if not such a line."""
    first, step = record.get("first"), record.get("step")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (first, step)):
        return None
    sized = arrays.get("count", record.get("value"))  # the full form's counts, or the compact form's values
    if not isinstance(sized, list):
        return None
    return [float(first) + float(step) * k for k in range(len(sized))]


def _single_arrays(record: Mapping[str, Any], start: list) -> dict[str, list]:
    """The full form's arrays of a compact line of one-reading windows (`value`, `mean` when it is
    not the value, `at` when the times are not the starts; see window_columns._single_parts)."""
    value = record["value"]
    mean = record["mean"] if isinstance(record.get("mean"), list) else value
    at = record["at"] if isinstance(record.get("at"), list) else start
    ones = [1] * len(start)
    out = {"start": start, "count": ones, "mean": mean, "min": value, "min_ts": at, "max": value, "max_ts": at}
    if record.get("variable") in SUMMED:
        out["sum"] = mean
    out["late"] = [0] * len(start)
    return out


def _parts(use: np.ndarray, direct: np.ndarray, held: np.ndarray | None, old: bool,
           columnar: bool) -> list[tuple[str, np.ndarray]]:
    """A series' rows (`use`: accepted, with a value) by part, the parts that have any: "quick"
    (windows the batch closes), "new" (windows it opens and leaves open), "old" (windows open
    already; only when they merge into a block, `old`), "slow" (new and old, merged as Stats)."""
    if not use.any():
        return []
    parts = [("quick", use & direct)]
    if old:
        parts += [("new", use & ~direct & ~held), ("old", use & held)]  # type: ignore[operator]
    else:
        parts.append(("new" if columnar else "slow", use & ~direct))
    return [(part, rows) for part, rows in parts if rows.any()]


def _selection(rows: np.ndarray) -> slice | np.ndarray:
    """An index for the rows of a mask: a slice when they are one run (a view, no copy: in a
    replay a part is the rows of the windows before or after a time), else the mask itself."""
    at = np.flatnonzero(rows)
    first, last = int(at[0]), int(at[-1])
    return slice(first, last + 1) if last - first + 1 == len(at) else rows


def _row(row: np.ndarray, _carry: np.ndarray) -> np.ndarray:
    """A sum carried on already (a row of a matrix fold), in the place of the fold of one series."""
    return row


def _count(table: dict[str, dict[str, int]], station: str, window: str, n: int) -> None:
    if n:
        per = table.setdefault(station, {})
        per[window] = per.get(window, 0) + n


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
        "temp_mean": round6(temp.total / temp.count) if temp else None,
        "precip_total": round6(rain.total) if rain else None,
        "pressure_min": pressure.low if pressure else None, "pressure_max": pressure.high if pressure else None,
        "pressure_range": round6(pressure.high - pressure.low) if pressure else None,
        "pressure_variable": pressure_var if pressure else None,
        "final": final,
    }


def latest(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One record per window (kind, window, scope, key, variable, start): the last written wins."""
    out: dict[tuple, Mapping[str, Any]] = {}
    for r in records:
        out[(r.get("kind"), r.get("window"), r.get("scope"), r.get("key"), r.get("variable"), r.get("ts"))] = r
    return list(out.values())
