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

Both reads take a `StoreIndex`: the time span of each block of BLOCK_LINES stored lines,
learnt as a read passes over them. A recall then reads only the blocks that can hold what
it asks for (a replay in time order stores blocks in time order): re-delivering a whole
recording, one recall per REMEMBERED instants, read the whole store each time (quadratic:
a 200 k-line file replayed a second time took 8x its first replay); with the index the
recalls together read the store about once. The answers are the same lines in the same
order as without it.
"""

from __future__ import annotations

import heapq
import io
import math
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from mass_tui.store import STREAM, JsonlStore, cached_time, store_key
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


# Lines per block of a StoreIndex: a recall reads whole blocks (about 1 MB of stored lines each).
BLOCK_LINES = 4096
# Bytes kept of a file's start and of each block's last line, to tell a changed file (rewritten in
# place, or another file that got its inode after it was deleted) from the one indexed.
_PRINT = 64


@dataclass
class _Block:
    """Stored lines [start, end) (bytes) of one file, and the oldest and newest instant among them."""

    start: int
    end: int
    lo: float = math.inf
    hi: float = -math.inf
    # The bytes at `mark_at` when indexed: the start of its last line (that line's time and
    # station), or its last bytes. A file rewritten in place (lines sorted, shifted) shows here.
    mark_at: int = 0
    mark: bytes = b""


@dataclass
class _FileBlocks:
    blocks: list[_Block]
    head: bytes  # the file's first bytes when indexed


class StoreIndex:
    """Where the stored stream's instants are: the time span of each block of BLOCK_LINES complete
    lines of each stream file, by the file's (device, inode), so a rotation (a rename) keeps it.

    Filled by the passes of `scan_stored` and `recall_stored` as they read; a file whose indexed
    bytes changed (shorter than indexed, or other bytes at its start or at the start of a block's
    last line: a file deleted and its inode reused, or rewritten in place) is indexed again from
    its start. Memory: ~250 bytes per block of 4,096 lines (its span, offsets and mark)."""

    def __init__(self, block_lines: int = BLOCK_LINES) -> None:
        if block_lines < 1:
            raise ValueError(f"block_lines {block_lines} must be >= 1")
        self.block_lines = block_lines
        self._files: dict[tuple[int, int], _FileBlocks] = {}

    def blocks(self, fh: Any) -> tuple[tuple[int, int], list[_Block]]:
        """(the open file's key, its indexed blocks still valid: [] when none)."""
        st = os.fstat(fh.fileno())
        key = (st.st_dev, st.st_ino)
        known = self._files.get(key)
        if known is None or not known.blocks:
            return key, []
        fd = fh.fileno()
        # one read of a few bytes per block (~250 per million lines) against trusting a changed file
        if st.st_size < known.blocks[-1].end or os.pread(fd, len(known.head), 0) != known.head or \
                any(os.pread(fd, len(b.mark), b.mark_at) != b.mark for b in known.blocks):
            del self._files[key]
            return key, []
        return key, known.blocks

    def extend(self, fh: Any, key: tuple[int, int], block: _Block, last: bytes) -> None:
        """Add the block after the file's indexed ones (blocks are added in file order); `last`: the
        last line of it that had a time and station."""
        fd = fh.fileno()
        known = self._files.get(key)
        if known is None:
            known = self._files[key] = _FileBlocks([], os.pread(fd, _PRINT, 0))
        block.mark_at = block.end - len(last)
        if block.mark_at < block.start or os.pread(fd, len(last), block.mark_at) != last:
            block.mark_at = max(block.start, block.end - _PRINT)  # lines without a time came after it
        block.mark = os.pread(fd, min(_PRINT, block.end - block.mark_at), block.mark_at)
        known.blocks.append(block)

    def forget_missing(self, keys: set[tuple[int, int]]) -> None:
        """Drop the files not among `keys` (deleted by the store's retention)."""
        for key in [k for k in self._files if k not in keys]:
            del self._files[key]


@dataclass
class Span:
    """The instants a read wants, lo <= ts < hi; a recall narrows `hi` as it goes."""

    lo: float = -math.inf
    hi: float = math.inf


def _records(store: JsonlStore, index: StoreIndex | None = None, span: Span | None = None
             ) -> Iterator[tuple[str, float, bytes]]:
    """(station, ts, line) of every stored observation, in store order (rotated files first), read
    line by line. The store's own lines begin `{"ts":"…","station":"…",`: those two are cut out of the
    bytes without parsing the rest (the scan's whole cost); any other line is parsed whole.

    With `index`, the indexed blocks whose instants all fall outside `span` (read at each block,
    as a recall narrows it) are skipped, and the lines after the indexed ones are indexed as read."""
    times: dict[bytes, float] = {}  # one instant is many stations' time: parse each text once
    present: set[tuple[int, int]] = set()
    torn = [0]
    for path in store.files(STREAM):
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below; a file rotated away meanwhile is skipped
        except FileNotFoundError:
            continue
        with fh:
            if index is None:
                yield from _keyed(fh, times, torn)
                continue
            key, known = index.blocks(fh)
            present.add(key)
            for block in known:
                if span is not None and (block.hi < span.lo or block.lo >= span.hi):
                    continue
                fh.seek(block.start)
                yield from _keyed(io.BytesIO(fh.read(block.end - block.start)), times, torn)
            start = known[-1].end if known else 0
            fh.seek(start)
            block, lines = _Block(start, start), 0
            torn[0] = 0
            for item in _keyed(fh, times, torn):
                t = item[1]
                if t < block.lo:
                    block.lo = t
                if t > block.hi:
                    block.hi = t
                lines += 1
                yield item
                if lines == index.block_lines:  # the file's position is just past this line
                    block.end = fh.tell()
                    index.extend(fh, key, block, item[2])
                    block, lines = _Block(block.end, block.end), 0
            if lines:
                block.end = fh.tell() - torn[0]  # before a torn last line, which is not stored
                index.extend(fh, key, block, item[2])
    if index is not None:
        index.forget_missing(present)


def _keyed(lines: Iterable[bytes], times: dict[bytes, float], torn: list[int]) -> Iterator[tuple[str, float, bytes]]:
    """(station, ts, line) of each complete line with a station and a usable time; stops at a torn
    last line (no newline), its length put in `torn[0]`."""
    for line in lines:
        if not line.endswith(b"\n"):
            torn[0] = len(line)
            return  # torn: cut off at the next append, so not stored
        key = store_key(line)
        if key is None:
            key = _slow_key(line)
            if key is None:
                continue
        station, raw = key
        ts = times.get(raw)  # the usual case, without a call: the scan's time is per line
        if ts is None:
            try:
                ts = cached_time(raw, times)
            except ValueError:
                continue
        yield station, ts, line


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


def scan_stored(store: JsonlStore, keep: int, index: StoreIndex | None = None
                ) -> tuple[list[tuple[str, float, Entry]], dict[str, float]]:
    """(the last `keep` stored observations as (station, ts, entry), oldest first; station -> the
    newest ts among the stored observations before those). One pass over the stored stream:
    about 1 s per million lines (see README, Performance); it fills `index` as it reads."""
    tail: deque[tuple[str, float, bytes]] = deque()
    floors: dict[str, float] = {}
    for item in _records(store, index):
        tail.append(item)
        if len(tail) > keep:
            station, ts, _ = tail.popleft()
            if ts > floors.get(station, -math.inf):
                floors[station] = ts
    names = _Names()
    return [(s, t, names.entry(_record(line))) for s, t, line in tail], floors


def recall_stored(store: JsonlStore, stations: Iterable[str], lo: float, limit: int,
                  index: StoreIndex | None = None) -> Recalled:
    """What the store holds of `stations` from `lo` on: the oldest instants first, as many as
    fit in `limit` entries (all of those at `lo` whatever the limit, so a recall always covers
    its first instant). `hi` says where the answer stops being complete. One pass over the store,
    or, with `index`, over its blocks that hold instants in [lo, hi) and those not indexed yet."""
    wanted = frozenset(stations)
    heap: list[tuple[float, int, str, bytes]] = []  # max-heap by ts (negated)
    at_lo: list[tuple[str, float, bytes]] = []
    span = Span(lo)
    for n, (station, ts, line) in enumerate(_records(store, index, span)):
        if station not in wanted or ts < lo or ts >= span.hi:
            continue
        if ts == lo:
            at_lo.append((station, ts, line))
            continue
        heapq.heappush(heap, (-ts, n, station, line))
        if len(heap) > limit:
            span.hi = -heap[0][0]  # the newest kept goes, and every other at its time: the answer ends there
            while heap and -heap[0][0] >= span.hi:
                heapq.heappop(heap)
    names = _Names()
    out = Recalled(wanted, lo, span.hi)
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
