"""Time order per series: late readings, duplicates and conflicts, before anything is scored.

The detectors and rules of a (station, variable) must never see its time run
backwards (a pressure tendency over a reversed span reads a rise as a fall).
The engine takes readings in arrival order and, per value:

- **new** (later than every value of its series so far): scored and stored;
- **late** (older than the latest value of its series): stored, not given to the
  detectors, counted under `late` (and `out_of_order`). This is the lateness
  policy of a live stream; a recording replayed from a file is put in time order
  before it gets here (see `mass_tui.replay`), so nothing in it is late;
- at an instant the station already has a value of that variable for: the same
  value is a **duplicate** (a re-poll, a re-read after a crash) and is dropped; a
  different value is a **conflict**: counted, and the later one quarantined as
  "conflicting duplicate" (the whole reading when none of its values is new).

Lateness is per (station, variable), because one station's products arrive on
their own clocks (Open-Meteo's weather and air quality have different time
steps). Cross-variable rules (the fire pattern) take a station's rows only
while the station's clock moves forward.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from sources.batch import ObservationBatch, rows_by_station
from sources.schema import FieldRejection, Rejection, iso_utc

# Instants remembered per station for the duplicate and conflict checks: those within `horizon_s`
# of the station's newest one, and at most this many. A restart re-reads at most one transport batch
# (4,096 messages) and rebuilds this from the warm start's span, so both bounds cover a re-read.
SEEN_PER_STATION = 4096
DEFAULT_HORIZON_S = 6 * 3600.0


@dataclass
class Ordered:
    """A batch after the order check: the rows to store, which values to score, what was set aside."""

    batch: ObservationBatch
    fed: dict[str, np.ndarray] | None = None  # variable -> True where the value goes to the detectors; None: all
    composite: np.ndarray | None = None  # rows the cross-variable rules take; None: all
    quarantined: list[Rejection | FieldRejection] = field(default_factory=list)
    duplicates: int = 0  # readings dropped whole as duplicates
    late: int = 0  # readings with at least one late value
    conflicts: int = 0  # values quarantined as conflicting duplicates


class OrderCheck:
    """The lateness, duplicate and conflict policy above, with bounded memory per station.

    A duplicate older than `horizon_s` before its station's newest reading (or past the
    newest SEEN_PER_STATION instants) is no longer recognised: it counts as late, and is
    stored. The engine sets the horizon to the warm start's span (`store.warm_hours`).
    """

    def __init__(self, horizon_s: float = DEFAULT_HORIZON_S) -> None:
        self.horizon_s = float(horizon_s)
        self._seen: dict[str, dict[float, object]] = {}  # station -> ts -> (names, values) or {name: value}
        self._last_station: dict[str, float] = {}  # the latest instant stored per station
        self._last: dict[tuple[str, str], float] = {}  # (station, variable) -> latest instant scored
        self._last_composite: dict[str, float] = {}

    def check(self, batch: ObservationBatch, warming: bool = False) -> Ordered:
        n = len(batch)
        if n == 0:
            return Ordered(batch)
        by_station = rows_by_station(batch.station)
        names = tuple(batch.columns)
        cols = list(batch.columns.values())
        ts = batch.ts
        keep = np.ones(n, dtype=bool)
        fed: dict[str, np.ndarray] | None = None
        composite: np.ndarray | None = None
        out = Ordered(batch)
        drop_values: list[tuple[int, str]] = []
        for station, rows in by_station.items():
            idx = np.asarray(rows)
            t = ts[idx]
            last = self._last_station.get(station, -np.inf)
            if t[0] > last and (t.size == 1 or bool(np.all(np.diff(t) > 0))):
                self._last_station[station] = float(t[-1])
                self._remember(station, t, idx, names, cols)
                for name, col in zip(names, cols, strict=True):
                    present = ~np.isnan(col[idx])
                    if present.any():
                        self._last[(station, name)] = float(t[present][-1])
                self._last_composite[station] = float(t[-1])
                continue
            # The slow path: some instant of this station repeats or goes back.
            if fed is None:
                fed = {name: ~np.isnan(col) for name, col in zip(names, cols, strict=True)}
                composite = np.ones(n, dtype=bool)
            seen = self._seen.setdefault(station, {})
            for i in rows:
                ti = float(ts[i])
                before = seen.get(ti)
                new_values: dict[str, float] = {}
                conflicts: list[tuple[str, float, float]] = []
                dup = late = 0
                for name, col in zip(names, cols, strict=True):
                    v = float(col[i])
                    if v != v:
                        continue
                    old = _value(before, name, names) if before is not None else None
                    if old is not None:
                        fed[name][i] = False
                        if old == v:
                            dup += 1
                        else:
                            conflicts.append((name, v, old))
                        continue
                    new_values[name] = v
                    key = (station, name)
                    if ti < self._last.get(key, -np.inf):
                        fed[name][i] = False
                        late += 1
                    else:
                        self._last[key] = ti
                if not new_values:
                    keep[i] = False
                    if conflicts:
                        out.conflicts += len(conflicts)
                        detail = ", ".join(f"{name}={v:g} (already {old:g})" for name, v, old in conflicts[:4])
                        out.quarantined.append(Rejection(
                            f"conflicting duplicate: {station} at {iso_utc(ti)} has other values: {detail}",
                            _row_json(batch, i), "conflict"))
                    else:
                        out.duplicates += 1
                    continue
                for name, v, old in conflicts:
                    out.conflicts += 1
                    drop_values.append((i, name))
                    out.quarantined.append(FieldRejection(
                        station, ti, name, repr(v), f"conflicting duplicate: {name}={v:g} at {iso_utc(ti)} "
                        f"where {old:g} was already taken", "conflict", name))
                if late:
                    out.late += 1
                merged = dict(_items(before, names)) if before is not None else {}
                merged.update(new_values)
                seen[ti] = merged
                last = self._last_station.get(station, -np.inf)
                self._last_station[station] = max(last, ti)
                if ti < self._last_composite.get(station, -np.inf) or late:
                    composite[i] = False
                else:
                    self._last_composite[station] = ti
            self._trim(station, seen)
        if warming:
            out.duplicates = out.late = out.conflicts = 0
            out.quarantined = []
        if drop_values or not keep.all():
            columns = {name: col.copy() for name, col in batch.columns.items()} if drop_values else batch.columns
            for i, name in drop_values:
                columns[name][i] = np.nan
            batch = dataclasses.replace(batch, columns=columns)
            if not keep.all():
                rows = np.flatnonzero(keep)
                batch = batch.select(rows)
                fed = {name: f[rows] for name, f in fed.items()} if fed is not None else None
                composite = composite[rows] if composite is not None else None
        out.batch, out.fed, out.composite = batch, fed, composite
        return out

    def forget(self, station: str) -> None:
        """Drop what is kept of a station (the detector bank evicted it, idle, to make room)."""
        self._seen.pop(station, None)
        self._last_station.pop(station, None)
        self._last_composite.pop(station, None)
        for key in [k for k in self._last if k[0] == station]:
            del self._last[key]

    def _remember(self, station: str, t: np.ndarray, idx: np.ndarray, names: tuple[str, ...],
                  cols: list[np.ndarray]) -> None:
        seen = self._seen.setdefault(station, {})
        if t.size > SEEN_PER_STATION:
            # Only the last SEEN_PER_STATION can survive the trim when the batch's instants are all
            # new and distinct (a replay's batch): everything kept before goes, as _trim would do.
            instants = t.tolist()
            if seen.keys().isdisjoint(instants) and len(set(instants)) == len(instants):
                seen.clear()
                t, idx = t[-SEEN_PER_STATION:], idx[-SEEN_PER_STATION:]
        values = zip(*[col[idx].tolist() for col in cols], strict=True) if cols else [()] * t.size
        seen.update(zip(t.tolist(), [(names, v) for v in values], strict=True))
        self._trim(station, seen)

    def _trim(self, station: str, seen: dict) -> None:
        excess = len(seen) - SEEN_PER_STATION
        if excess > 0:  # dicts keep insertion order: the oldest go
            for old in list(islice(seen, excess)):
                del seen[old]
        # Beyond the horizon: readings arrive mostly in time order, so the oldest sit in front.
        cutoff = self._last_station.get(station, -np.inf) - self.horizon_s
        stale = []
        for instant in seen:
            if instant >= cutoff:
                break
            stale.append(instant)
        for instant in stale:
            del seen[instant]


def _value(entry: object, name: str, names: tuple[str, ...]) -> float | None:
    if isinstance(entry, dict):
        return entry.get(name)
    entry_names, values = entry  # type: ignore[misc]
    try:
        v = values[entry_names.index(name)]
    except ValueError:
        return None
    return None if v != v else v


def _items(entry: object, names: tuple[str, ...]):
    if isinstance(entry, dict):
        return entry.items()
    entry_names, values = entry  # type: ignore[misc]
    return ((k, v) for k, v in zip(entry_names, values, strict=True) if v == v)


def _row_json(batch: ObservationBatch, i: int) -> bytes:
    import orjson

    return orjson.dumps(batch.observation(i).to_wire())
