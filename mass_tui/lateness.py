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
  In a replay, the values of duplicates that come before any kept reading of
  their station and are later than all their series' detectors have seen (a
  replay run again after it stopped part way) are handed back as
  `Ordered.unseen`, for the engine to feed to the detectors as a warm start
  does: the rows after them are then scored as by one run that never stopped.

Lateness is per (station, variable), because one station's products arrive on
their own clocks (Open-Meteo's weather and air quality have different time
steps). Cross-variable rules (the fire pattern) take a station's rows only
while the station's clock moves forward.

What "already stored" means survives a restart: with a store, the check reads the
stored stream at its first batch (`mass_tui.stored_keys`), remembers its last
REMEMBERED instants and, for each station, the newest instant of the rest. A reading
the memory does not hold but whose station has stored readings at or after its time
is looked up in the store, so a re-read after `kill -9`, a deleted position file or a
recording replayed twice is a duplicate, never stored twice.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from mass_tui.store import JsonlStore
from mass_tui.stored_keys import Recalled, StoreIndex, merged, recall_stored, scan_stored
from sources.batch import ObservationBatch, rows_by_station
from sources.schema import FieldRejection, Rejection, iso_utc

# Stored instants remembered, over all stations: a restart re-reads what was read after the last
# committed position, at most one transport read (4,096 messages, one reading each but for
# Telegraf's batched messages), and the store's last lines are exactly those; four times that
# covers it with room, whatever the data's time step. About 530 bytes an instant: ~8 MiB
# (bench/dedupe_cost.py).
REMEMBERED = 16384


@dataclass
class Ordered:
    """A batch after the order check: the rows to store, which values to score, what was set aside."""

    batch: ObservationBatch
    fed: dict[str, np.ndarray] | None = None  # variable -> True where the value goes to the detectors; None: all
    composite: np.ndarray | None = None  # rows the cross-variable rules take; None: all
    quarantined: list[Rejection | FieldRejection] = field(default_factory=list)
    duplicates: int = 0  # readings dropped whole as duplicates
    # Duplicates the detectors of their series have not seen (a replay run again after it stopped part
    # way): given to the detectors as a warm start is (scored, not stored, counted or reported), before
    # the batch, so its new rows are scored as by one run that never stopped. None: there are none.
    unseen: ObservationBatch | None = None
    late: int = 0  # readings with at least one late value
    conflicts: int = 0  # values quarantined as conflicting duplicates


class OrderCheck:
    """The lateness, duplicate and conflict policy above, with bounded memory.

    Memory: the `capacity` most recently stored instants (all stations together, so it does
    not grow with the number of stations, nor depend on the data's time step), plus one
    float per station that has forgotten instants (the newest of them, its "floor"), plus,
    while a re-delivery older than that is going on, at most 2 x `capacity` instants read
    back from the store. An instant leaves the memory only by raising its station's floor,
    so a reading at or before the floor that the memory lacks is looked up in `store`
    (one pass over the stored stream per `capacity` instants re-delivered, counted in
    `recalls`): exceeding the memory costs time, never a second copy. Without a store
    (a bare check) such a reading cannot be told from a new late one: it is stored, late.
    """

    def __init__(self, capacity: int = REMEMBERED, store: JsonlStore | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be >= 1")
        self.capacity = int(capacity)
        self.store = store
        self._loaded = store is None  # the stored stream is read at the first batch that is not warming
        self._seen: dict[str, dict[float, object]] = {}  # station -> ts -> (names, values) or {name: value}
        # (station, ts) of each remembered instant, oldest first. Not the station alone with the
        # oldest key found by next(iter(seen)): after many deletions at a dict's front, that scan
        # walks the deleted slots, and trimming cost 1.4 s of a 200 k-line replay.
        self._order: deque[tuple[str, float]] = deque()
        self._floor: dict[str, float] = {}  # station -> newest stored instant no longer remembered
        # Instants remembered after those of `_order`, not yet put into `_seen`: (station, times,
        # names, value columns) of the rows the fast path took. Most batches of a replay or a live
        # feed are all new, and then nothing asks the memory anything; building its entries costs
        # more than the rest of the check (0.12 of 0.15 s for 200 k lines), so it waits until a
        # row that repeats or goes back, `forget` or `remembered` needs it (`_settle`).
        self._deferred: deque[tuple[str, np.ndarray, tuple[str, ...], list[np.ndarray]]] = deque()
        self._deferred_size = 0
        self._recall: Recalled | None = None
        self.recalls = 0  # passes over the store for re-deliveries older than the memory
        self._index = StoreIndex()  # where the stored instants are: a recall reads only what can answer it
        self._last_station: dict[str, float] = {}  # the latest instant stored per station
        self._last: dict[tuple[str, str], float] = {}  # (station, variable) -> latest instant scored
        self._last_composite: dict[str, float] = {}

    def remembered(self) -> int:
        """Instants held in memory now (at most `capacity` between batches)."""
        self._settle()
        return sum(map(len, self._seen.values()))

    def _settle(self) -> None:
        """Put the deferred instants into the memory (`_seen`, `_order`), oldest first."""
        while self._deferred:
            station, t, names, values = self._deferred.popleft()
            self._remember(station, t, names, values)
        self._deferred_size = 0

    def check(self, batch: ObservationBatch, warming: bool = False,
              by_station: dict[str, list[int]] | None = None, unseen: bool = False) -> Ordered:
        """Sort one batch out (rows of a station in time order within it); `warming`: the stored
        stream replayed into the detectors at a start (nothing counted, nothing looked up);
        `by_station`: the batch's `rows_by_station`, when the caller has it already; `unseen`:
        hand back the duplicates the detectors have not seen (`Ordered.unseen`: a replay; a live
        consumer warms from the store instead, and an evicted series starts cold)."""
        n = len(batch)
        if n == 0:
            return Ordered(batch)
        if not warming and not self._loaded:
            self._load()
        if by_station is None:
            by_station = rows_by_station(batch.station)
        names = tuple(batch.columns)
        cols = list(batch.columns.values())
        ts = batch.ts
        keep = np.ones(n, dtype=bool)
        fed: dict[str, np.ndarray] | None = None
        composite: np.ndarray | None = None
        out = Ordered(batch)
        drop_values: list[tuple[int, str]] = []
        slow: list[tuple[str, list[int]]] = []
        fresh: list[tuple[str, np.ndarray, np.ndarray]] = []  # stations whose rows are all new, in order
        for station, rows in by_station.items():
            idx = np.asarray(rows)
            t = ts[idx]
            last = max(self._last_station.get(station, -math.inf), self._floor.get(station, -math.inf))
            if t[0] > last and (t.size == 1 or bool(np.all(np.diff(t) > 0))):
                self._last_station[station] = float(t[-1])
                values = [col[idx] for col in cols]
                fresh.append((station, t, values))
                for name, v in zip(names, values, strict=True):
                    present = ~np.isnan(v)
                    if present.any():
                        self._last[(station, name)] = float(t[present][-1])
                self._last_composite[station] = float(t[-1])
            else:
                slow.append((station, rows))
        self._remember_fresh(fresh, names)
        if slow:
            self._settle()
        stored = {} if warming or not slow else self._look_up(slow, ts)
        feed: list[int] = []  # rows of unseen duplicates
        unfed: list[tuple[int, list[str]]] = []  # and of those, the values not to feed (seen, or conflicting)
        for station, rows in slow:
            # Some instant of this station repeats or goes back.
            if fed is None:
                fed = {name: ~np.isnan(col) for name, col in zip(names, cols, strict=True)}
                composite = np.ones(n, dtype=bool)
            seen = self._seen.setdefault(station, {})
            leading = unseen and not warming  # no row of the station kept yet: its duplicates may be unseen
            for i in rows:
                ti = float(ts[i])
                before = seen.get(ti)
                if before is None:
                    before = stored.get((station, ti))
                new_values: dict[str, float] = {}
                conflicts: list[tuple[str, float, float]] = []
                repeated: list[str] = []  # values the instant already has, the same
                late = 0
                for name, col in zip(names, cols, strict=True):
                    v = float(col[i])
                    if v != v:
                        continue
                    old = _value(before, name, names) if before is not None else None
                    if old is not None:
                        fed[name][i] = False
                        if old == v:
                            repeated.append(name)
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
                    # values stored by a run whose detectors this process does not have: each value
                    # whose series has not come this far (a second reading of the instant may bring
                    # another variable: a special report, a late row new for one of its variables)
                    names_fed = [name for name in repeated if ti > self._last.get((station, name), -math.inf)]
                    if leading and names_fed:
                        feed.append(i)
                        if len(names_fed) < len(repeated) or conflicts:
                            unfed.append((i, [n for n in repeated if n not in names_fed] + [c[0] for c in conflicts]))
                        for name in names_fed:
                            self._last[(station, name)] = ti
                        self._last_composite[station] = max(self._last_composite.get(station, -math.inf), ti)
                    if conflicts:
                        out.conflicts += len(conflicts)
                        detail = ", ".join(f"{name}={v:g} (already {old:g})" for name, v, old in conflicts[:4])
                        out.quarantined.append(Rejection(
                            f"conflicting duplicate: {station} at {iso_utc(ti)} has other values: {detail}",
                            _row_json(batch, i), "conflict"))
                    else:
                        out.duplicates += 1
                    if before is not None and ti not in seen:  # known from the store: remember it now
                        self._add(station, seen, ti, before)
                    continue
                # A reading that brings a new value for an instant already stored (a special report
                # with the rain the routine one lacked) is stored with its new values only: the
                # repeated ones are stored already, and counting them again would double them in the
                # aggregates. Not counted under `duplicates`, which counts readings dropped whole.
                drop_values.extend((i, name) for name in repeated)
                for name, v, old in conflicts:
                    out.conflicts += 1
                    drop_values.append((i, name))
                    out.quarantined.append(FieldRejection(
                        station, ti, name, repr(v), f"conflicting duplicate: {name}={v:g} at {iso_utc(ti)} "
                        f"where {old:g} was already taken", "conflict", name))
                leading = False
                if late:
                    out.late += 1
                entry = merged(before, new_values) if before is not None else new_values
                self._add(station, seen, ti, entry)
                last = self._last_station.get(station, -np.inf)
                self._last_station[station] = max(last, ti)
                if ti < self._last_composite.get(station, -np.inf) or late:
                    composite[i] = False
                else:
                    self._last_composite[station] = ti
        self._trim()
        if warming:
            out.duplicates = out.late = out.conflicts = 0
            out.quarantined = []
        if feed:
            feed.sort()
            out.unseen = batch.select(np.asarray(feed))
            if unfed:  # most rows feed every value they have: only the others are copied and blanked
                at = {i: k for k, i in enumerate(feed)}
                columns = {name: col.copy() for name, col in out.unseen.columns.items()}
                for i, names in unfed:
                    for name in names:
                        columns[name][at[i]] = np.nan
                out.unseen = dataclasses.replace(out.unseen, columns=columns)
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
        """Drop what is kept of a station (the detector bank evicted it, idle, to make room); its
        newest instant stays as its floor, so a re-delivery of it is still looked up."""
        self._settle()
        seen = self._seen.pop(station, None)
        newest = max(seen, default=-math.inf) if seen else -math.inf
        newest = max(newest, self._last_station.pop(station, -math.inf))
        if newest > self._floor.get(station, -math.inf):
            self._floor[station] = newest
        self._last_composite.pop(station, None)
        for key in [k for k in self._last if k[0] == station]:
            del self._last[key]

    def _load(self) -> None:
        """Remember the stored stream's last `capacity` instants, and each station's floor."""
        self._loaded = True
        if self.store is None:
            return
        self._settle()
        tail, floors = scan_stored(self.store, self.capacity, self._index)
        for station, ts in floors.items():
            if ts > self._floor.get(station, -math.inf):
                self._floor[station] = ts
        for station, ts, entry in tail:
            seen = self._seen.setdefault(station, {})
            before = seen.get(ts)
            if before is None:
                self._add(station, seen, ts, entry)
            else:  # also in the warm span, or one instant stored in two rows
                seen[ts] = merged(before, entry)
            if ts > self._last_station.get(station, -math.inf):
                self._last_station[station] = ts
        self._trim()

    def _look_up(self, slow: list[tuple[str, list[int]]], ts: np.ndarray) -> dict[tuple[str, float], object]:
        """What the store holds at the instants of these rows that the memory cannot answer for."""
        if self.store is None:
            return {}
        wanted: list[tuple[str, float]] = []
        for station, rows in slow:
            floor = self._floor.get(station)
            if floor is None:
                continue
            seen = self._seen.get(station, {})
            wanted.extend((station, t) for t in ts[rows].tolist() if t <= floor and t not in seen)
        found: dict[tuple[str, float], object] = {}
        while wanted:
            recall = self._recall
            if recall is not None:
                rest = []
                for station, t in wanted:
                    if not recall.covers(station, t):
                        rest.append((station, t))
                    elif (entry := recall.seen.get(station, {}).get(t)) is not None:
                        found[(station, t)] = entry
                wanted = rest
                if not wanted:
                    break
            # Each pass covers at least the oldest instant asked for: the loop ends.
            self._recall = recall_stored(self.store, {s for s, _ in wanted}, min(t for _, t in wanted),
                                         self.capacity, self._index)
            self.recalls += 1
        return found

    def _remember_fresh(self, fresh: list[tuple[str, np.ndarray, list[np.ndarray]]], names: tuple[str, ...]) -> None:
        """Remember new instants (station, times, value columns), in this order, as `_remember` one by
        one then `_trim` would: deferred (`_settle`), and of more than the memory holds only the last
        `capacity` instants are kept, the older ones raising their stations' floors."""
        total = sum(t.size for _, t, _ in fresh)
        if self._recall is not None:  # the trim hands forgotten instants to the recall: one by one
            self._settle()
            for station, t, values in fresh:
                self._remember(station, t, names, values)
            return
        over = len(self._order) + self._deferred_size + total - self.capacity
        if over > 0 and self._order:
            drop = min(over, len(self._order))
            self._trim(keep=len(self._order) - drop)
            over -= drop
        while over > 0 and self._deferred:  # the oldest deferred instants go next
            station, t, old_names, values = self._deferred[0]
            skip = min(over, t.size)
            self._raise_floor(station, float(t[skip - 1]))
            if skip == t.size:
                self._deferred.popleft()
            else:
                self._deferred[0] = (station, t[skip:], old_names, [v[skip:] for v in values])
            self._deferred_size -= skip
            over -= skip
        for station, t, values in fresh:
            skip = max(0, min(over, t.size))
            if skip:
                self._raise_floor(station, float(t[skip - 1]))
                over -= skip
            if skip < t.size:
                self._deferred.append((station, t[skip:], names, [v[skip:] for v in values] if skip else values))
                self._deferred_size += t.size - skip

    def _raise_floor(self, station: str, ts: float) -> None:
        if ts > self._floor.get(station, -math.inf):
            self._floor[station] = ts

    def _remember(self, station: str, t: np.ndarray, names: tuple[str, ...], values: list[np.ndarray]) -> None:
        seen = self._seen.setdefault(station, {})
        rows = zip(*[v.tolist() for v in values], strict=True) if values else [()] * t.size
        times = t.tolist()
        # entries made in C, no bytecode per row (repeat is endless: the other side bounds each zip)
        seen.update(zip(times, zip(repeat(names), rows, strict=False), strict=True))
        self._order.extend(zip(repeat(station), times, strict=False))

    def _add(self, station: str, seen: dict, ts: float, entry: object) -> None:
        if ts not in seen:
            self._order.append((station, ts))
        seen[ts] = entry

    def _trim(self, keep: int | None = None) -> None:
        """Forget the oldest remembered instants past `keep` (default `capacity`), each raising its
        station's floor."""
        recall = self._recall
        keep = self.capacity if keep is None else keep
        if keep == 0 and recall is None:  # a batch larger than the memory replaces it whole
            for station, seen in self._seen.items():
                newest = max(seen, default=-math.inf)
                if newest > self._floor.get(station, -math.inf):
                    self._floor[station] = newest
            self._seen.clear()
            self._order.clear()
            return
        while len(self._order) > keep:
            station, ts = self._order.popleft()
            seen = self._seen.get(station)
            if not seen or ts not in seen:
                continue  # the station was forgotten whole
            entry = seen.pop(ts)
            if not seen:
                del self._seen[station]
            if ts > self._floor.get(station, -math.inf):
                self._floor[station] = ts
            if recall is not None and recall.covers(station, ts):  # stored after the recall read the store
                known = recall.seen.setdefault(station, {})
                known[ts] = entry if ts not in known else merged(known[ts], entry)
        if recall is not None and recall.size() > 2 * self.capacity:
            self._recall = None  # read again when needed, rather than grow


def _value(entry: object, name: str, names: tuple[str, ...]) -> float | None:
    if isinstance(entry, dict):
        return entry.get(name)
    entry_names, values = entry  # type: ignore[misc]
    try:
        v = values[entry_names.index(name)]
    except ValueError:
        return None
    return None if v != v else v


def _row_json(batch: ObservationBatch, i: int) -> bytes:
    import orjson

    return orjson.dumps(batch.observation(i).to_wire())
