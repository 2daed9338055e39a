"""What the stored stream already holds, by (station, ts): for the duplicate check after a restart.

The duplicate check (`mass_tui.lateness.OrderCheck`) keeps the most recently stored
instants in memory; everything else it asks of the store, through the two reads here:

- `scan_stored` reads the whole stored stream once (at the first batch after a start)
  and returns the last `keep` records in store order, which is transport order (a
  re-read after a crash is a suffix of it), and, for the records before them, each
  station's newest instant: a reading of that station at or before it may be stored.
- `recall_stored` returns what the store holds of some stations from an instant on (at
  most `limit` instants, the oldest first), for a re-delivery older than that memory
  (a position file deleted, a recording replayed over a data dir holding its span).

An entry is `(names, values)`: variable names and their stored values (floats), the
form `OrderCheck` keeps. Times are epoch seconds (UTC). Lines that do not parse, or
lack a station or a usable `ts`, are skipped (the store's readers count them), and so is a
torn last line (no newline: a crash inside a write; the store cuts it before appending).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from mass_tui.store import STREAM, JsonlStore
from sources.schema import parse_time
from sources.variables import REGISTRY

Entry = tuple[tuple[str, ...], tuple[float, ...]]


@dataclass
class Recalled:
    """Stored instants of `stations` with lo <= ts < hi (hi = inf: everything from lo on)."""

    stations: frozenset[str]
    lo: float
    hi: float
    seen: dict[str, dict[float, Entry]] = field(default_factory=dict)  # station -> ts -> entry

    def covers(self, station: str, ts: float) -> bool:
        return station in self.stations and self.lo <= ts < self.hi

    def size(self) -> int:
        return sum(map(len, self.seen.values()))


def _records(store: JsonlStore) -> Iterator[tuple[str, float, bytes]]:
    """(station, ts, line) of every stored observation, in store order (rotated files first), read
    line by line. The store's own lines begin `{"ts":"…","station":"…",`: those two are cut out of the
    bytes without parsing the rest (the scan's whole cost); any other line is parsed whole."""
    times: dict[bytes, float] = {}  # one instant is many stations' time: parse each text once
    for path in store.files(STREAM):
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below; a file rotated away meanwhile is skipped
        except FileNotFoundError:
            continue
        with fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    continue  # torn: cut off at the next append, so not stored
                key = _fast_key(line)
                if key is None:
                    key = _slow_key(line)
                    if key is None:
                        continue
                station, raw = key
                ts = times.get(raw)
                if ts is None:
                    try:
                        ts = parse_time(raw.decode() if isinstance(raw, bytes) else raw)
                    except (ValueError, UnicodeDecodeError):
                        continue
                    if len(times) > 65536:
                        times.clear()
                    times[raw] = ts
                yield station, ts, line


def _fast_key(line: bytes) -> tuple[str, bytes] | None:
    if not line.startswith(b'{"ts":"'):
        return None
    end = line.find(b'"', 7)
    if end < 0 or not line.startswith(b',"station":"', end + 1):
        return None
    start = end + 13
    stop = line.find(b'"', start)
    name = line[start:stop]
    if stop < 0 or b"\\" in name:
        return None  # an escaped character: leave it to the parser
    try:
        return name.decode(), line[7:end]
    except UnicodeDecodeError:
        return None


def _slow_key(line: bytes) -> tuple[str, Any] | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("station"), str):
        return None
    raw = record.get("ts")
    if isinstance(raw, str):
        raw = raw.encode()
    elif not isinstance(raw, int | float) or isinstance(raw, bool):
        return None
    return record["station"], raw


def _record(line: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return record if isinstance(record, dict) else {}


class _Names:
    """One shared names tuple per set of variables, so an entry costs its values only."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, ...], tuple[str, ...]] = {}

    def entry(self, record: dict[str, Any]) -> Entry:
        pairs = [(k, float(v)) for k, v in record.items()
                 if k in REGISTRY and isinstance(v, int | float) and not isinstance(v, bool)]
        names = tuple(k for k, _ in pairs)
        names = self._known.setdefault(names, names)
        return names, tuple(v for _, v in pairs)


def scan_stored(store: JsonlStore, keep: int) -> tuple[list[tuple[str, float, Entry]], dict[str, float]]:
    """(the last `keep` stored observations as (station, ts, entry), oldest first; station -> the
    newest ts among the stored observations before those). One pass over the stored stream:
    about 1 s per million lines (see README, Performance)."""
    tail: deque[tuple[str, float, bytes]] = deque()
    floors: dict[str, float] = {}
    for item in _records(store):
        tail.append(item)
        if len(tail) > keep:
            station, ts, _ = tail.popleft()
            if ts > floors.get(station, -math.inf):
                floors[station] = ts
    names = _Names()
    return [(s, t, names.entry(_record(line))) for s, t, line in tail], floors


def recall_stored(store: JsonlStore, stations: Iterable[str], lo: float, limit: int) -> Recalled:
    """What the store holds of `stations` from `lo` on: the oldest instants first, as many as
    fit in `limit` entries (all of those at `lo` whatever the limit, so a recall always covers
    its first instant). `hi` says where the answer stops being complete. One pass over the store."""
    wanted = frozenset(stations)
    heap: list[tuple[float, int, str, bytes]] = []  # max-heap by ts (negated)
    at_lo: list[tuple[str, float, bytes]] = []
    hi = math.inf
    for n, (station, ts, line) in enumerate(_records(store)):
        if station not in wanted or ts < lo or ts >= hi:
            continue
        if ts == lo:
            at_lo.append((station, ts, line))
            continue
        heapq.heappush(heap, (-ts, n, station, line))
        if len(heap) > limit:
            hi = -heap[0][0]  # the newest kept goes, and every other at its time: the answer ends there
            while heap and -heap[0][0] >= hi:
                heapq.heappop(heap)
    names = _Names()
    out = Recalled(wanted, lo, hi)
    for station, ts, line in at_lo + [(s, -t, r) for t, _, s, r in heap]:
        seen = out.seen.setdefault(station, {})
        entry = names.entry(_record(line))
        before = seen.get(ts)  # one instant stored in two rows (complementary values): both count
        seen[ts] = entry if before is None else merged(before, entry)
    return out


def merged(a: Entry | dict[str, float], b: Entry | dict[str, float]) -> dict[str, float]:
    """The values of two entries of one instant together (b's where both have one)."""
    out = dict(items(a))
    out.update(items(b))
    return out


def items(entry: Entry | dict[str, float]) -> Iterator[tuple[str, float]]:
    """(name, value) of an entry's present values (NaN is absent)."""
    if isinstance(entry, dict):
        return iter(entry.items())
    names, values = entry
    return ((k, v) for k, v in zip(names, values, strict=True) if v == v)
