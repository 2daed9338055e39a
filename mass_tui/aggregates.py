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

Records (one per scope, window, start and variable, `kind` "window"):
`{kind, ts (window start, ISO UTC), end, window ("1m"/"1h"/"1d"), scope
("station", or a group such as "building" or "building+floor"), key (the
station name, or the group's label values joined by "/"), station (station
scope only), variable, count, mean, min, min_ts, max, max_ts, sum (only for
accumulated quantities: precipitation, energy), late, final}`. A window
written at stop before it closed has `final: false`; a later record of the
same window supersedes it.

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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sources.schema import iso_utc

WINDOWS: dict[str, float] = {"1m": 60.0, "1h": 3600.0, "1d": 86400.0}
# Quantities that accumulate: a sum over a window means something (rain in a day, energy in an hour).
SUMMED = frozenset({"precip_mm", "energy_kwh"})
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
    low: float = np.inf
    low_ts: float = 0.0
    high: float = -np.inf
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


Scope = tuple[str, str]  # ("station", name) or (group spec, label values joined by "/")


class Aggregator:
    """Tumbling-window aggregates of scored batches; no I/O (the sink writes what `add` returns).

    `windows`: name -> length in seconds. `lateness`: seconds a window stays
    open after its end in event time. `groups`: group specs, each a label name
    or names joined by "+" ("building", "building+floor"): a station with all
    of a spec's labels is aggregated in that group too.
    """

    def __init__(self, windows: Mapping[str, float] | None = None, lateness: float = 3600.0,
                 groups: Sequence[str] = ("building", "building+floor")) -> None:
        self.windows = dict(WINDOWS if windows is None else windows)
        if lateness < 0:
            raise ValueError(f"lateness {lateness} must be >= 0")
        self.lateness = float(lateness)
        self.groups = [tuple(spec.split("+")) for spec in groups]
        self._group_names = list(groups)
        self._open: dict[tuple[Scope, str], dict[int, dict[str, Stats]]] = {}
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
            columns: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
        """One station's rows (epoch seconds, any order; NaN = absent). Returns the records of the
        windows this closed."""
        ts = np.asarray(ts, dtype=np.float64)
        if len(ts) == 0:
            return []
        present = {name: ~np.isnan(col) for name, col in columns.items()}
        any_value = np.zeros(len(ts), dtype=bool)
        for mask in present.values():
            any_value |= mask
        closed: list[dict[str, Any]] = []
        for scope in self.scopes(station, labels):
            before = self.watermark.get(scope, -np.inf)
            # What the watermark was when each row arrived: rows come in order within the batch.
            seen = np.maximum(before, np.concatenate(([-np.inf], np.maximum.accumulate(ts)[:-1])))
            for wname, width in self.windows.items():
                bucket = np.floor(ts / width)
                accepted = (bucket + 1.0) * width + self.lateness > seen
                late = accepted & (ts < seen)
                if scope[0] == "station":
                    _count(self.too_late, station, wname, int((~accepted & any_value).sum()))
                    _count(self.late, station, wname, int((late & any_value).sum()))
                self._merge(scope, wname, width, bucket, ts, accepted, late, any_value, columns, present)
            self.watermark[scope] = max(before, float(ts.max()))
            closed.extend(self._close(scope))
        return closed

    def _merge(self, scope: Scope, wname: str, width: float, bucket: np.ndarray, ts: np.ndarray,
               accepted: np.ndarray, late: np.ndarray, any_value: np.ndarray,
               columns: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray]) -> None:
        windows = self._open.setdefault((scope, wname), {})
        series = [(ROWS, np.zeros(len(ts)), any_value), *((n, c, present[n]) for n, c in columns.items())]
        for name, col, has in series:
            use = accepted & has
            if not use.any():
                continue
            b, t, v, lt = bucket[use], ts[use], col[use], late[use]
            starts, inv = np.unique(b, return_inverse=True)
            counts = np.bincount(inv)
            totals = np.bincount(inv, weights=v)
            lates = np.bincount(inv, weights=lt.astype(np.float64))
            first = np.concatenate(([0], np.cumsum(counts)[:-1]))
            lo = np.lexsort((t, v, inv))[first]  # per window: the smallest value, earliest first
            hi = np.lexsort((t, -v, inv))[first]  # the largest value, earliest first
            for k, start in enumerate((starts * width).astype(np.int64).tolist()):
                stats = windows.setdefault(start, {})
                entry = stats.get(name)
                if entry is None:
                    entry = stats[name] = Stats()
                entry.merge(int(counts[k]), float(totals[k]), float(v[lo[k]]), float(t[lo[k]]),
                            float(v[hi[k]]), float(t[hi[k]]), int(lates[k]))

    def _close(self, scope: Scope) -> list[dict[str, Any]]:
        mark = self.watermark.get(scope, -np.inf)
        out: list[dict[str, Any]] = []
        for wname, width in self.windows.items():
            windows = self._open.get((scope, wname))
            if not windows:
                continue
            due = sorted(s for s in windows if s + width + self.lateness <= mark)
            for start in due:
                out.extend(self._records(scope, wname, width, start, windows.pop(start), final=True))
        return out

    # --- output ------------------------------------------------------------
    def flush(self) -> list[dict[str, Any]]:
        """Every window still open, as records with `final: false` (at stop); the state is kept."""
        out: list[dict[str, Any]] = []
        for (scope, wname), windows in self._open.items():
            width = self.windows[wname]
            for start in sorted(windows):
                out.extend(self._records(scope, wname, width, start, windows[start], final=False))
        return out

    def open_daily(self, station: str) -> list[dict[str, Any]]:
        """The daily summaries of a station's days still open (today, so far), oldest first."""
        day = _day_window(self.windows)
        if day is None:
            return []
        windows = self._open.get((("station", station), day), {})
        return [daily_summary(station, start, self.windows[day], windows[start], final=False)
                for start in sorted(windows)]

    def _records(self, scope: Scope, wname: str, width: float, start: int, stats: dict[str, Stats],
                 final: bool) -> list[dict[str, Any]]:
        head: dict[str, Any] = {"kind": "window", "ts": iso_utc(start), "end": iso_utc(start + width),
                                "window": wname, "scope": scope[0], "key": scope[1]}
        if scope[0] == "station":
            head["station"] = scope[1]
        out = []
        for name, s in stats.items():
            if name == ROWS:
                continue
            record = {**head, "variable": name, "count": s.count, "mean": _r(s.total / s.count), "min": s.low,
                      "min_ts": iso_utc(s.low_ts), "max": s.high, "max_ts": iso_utc(s.high_ts)}
            if name in SUMMED:
                record["sum"] = _r(s.total)
            record["late"] = s.late
            record["final"] = final
            out.append(record)
        if scope[0] == "station" and wname == _day_window(self.windows):
            out.append(daily_summary(scope[1], start, width, stats, final))
        return out


def _count(table: dict[str, dict[str, int]], station: str, window: str, n: int) -> None:
    if n:
        per = table.setdefault(station, {})
        per[window] = per.get(window, 0) + n


def _r(value: float) -> float:
    """Derived figures (means, sums, ranges) to 6 decimals: no binary-fraction noise like 5.400000000000091."""
    return round(value, 6)


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


def latest(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One record per window (kind, window, scope, key, variable, start): the last written wins."""
    out: dict[tuple, Mapping[str, Any]] = {}
    for r in records:
        out[(r.get("kind"), r.get("window"), r.get("scope"), r.get("key"), r.get("variable"), r.get("ts"))] = r
    return list(out.values())
