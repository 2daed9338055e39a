"""The columnar decoder: wire messages or CSV tables in, valid rows and quarantine records out.

Messages that share a key layout (nearly all of a recording) form a group that
is checked a column at a time with numpy: the time column, the station column,
then each variable column. A bad value is set aside alone (a `FieldRejection`
naming station, time, field, raw value and reason) and the row's other values
are kept; a row is rejected whole (a `Rejection`) only when its time or station
is unusable, its tags are not a flat object, its time, station, source or tags
hold text that is not valid Unicode (`bad_text`: a lone surrogate, see `_bad_text`),
or no valid value is left. A bad line or a bad field never sends its chunk to a
slower path: only a column whose cells are not all numbers is read cell by cell,
and only that column.

Nothing raises out of here: an unexpected exception while checking a group is
retried message by message, and a message that still raises is quarantined with
the exception as its reason (RecursionError and OverflowError included).

A chunk of 512 lines or more (a replay's) is first read by polars into typed
columns (`sources.json_columns`): the lines whose columns are proven to say what
orjson would give (nearly all of a recording) are not parsed into objects; their
group is checked from numpy arrays, and its stations, times, sources and tags once
per distinct value. The other lines are parsed and checked as above; those of the
same layout stay in the same group, so every row decodes as on the per-line path
(tests/test_typed_decode.py holds the two paths to that).

Accepted layouts: flat JSON (registry names, aliases, unit-suffixed names,
seed-device names), nested `fields` / `tags` objects, and Telegraf's JSON
serializer (`{"fields": {..}, "name": .., "tags": {..}, "timestamp": ..}`, also
batched as `{"metrics": [..]}`; station from the tag `station`, `station_id`,
`device` or `host`). Times: see `sources.times`. The Kafka record key and
timestamp stand in for a station and time the value lacks.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gc
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC
from itertools import compress
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from sources.batch import ObservationBatch, rows_by_station
from sources.fields import DEFAULT_NA, TRACE_MM, FieldSpec, na_markers, resolve, tidy
from sources.json_columns import ColumnReader, Columns, Numbers, Texts
from sources.schema import (
    MAX_MESSAGE_BYTES,
    MAX_STATION_CHARS,
    RAW_KEPT,
    FieldRejection,
    MessageMeta,
    Rejection,
)
from sources.text import brief, escape_surrogates, inert, json_safe, valid_unicode
from sources.times import (
    AHEAD,
    EARLIEST,
    LATEST,
    LocalTimes,
    TimeError,
    TimeSpan,
    epoch_seconds,
    epoch_seconds_array,
    iso_seconds_array,
    parse_iso,
)

TIME_KEYS = ("ts", "ts_iso", "timestamp", "time_utc", "time", "valid", "datetime")
STATION_KEYS = ("station", "station_id")
TAG_STATION_KEYS = ("station", "station_id", "device", "host")
SOURCE_KEYS = ("source", "provider")
COORD_KEYS = {"lat": ("lat", 90.0), "latitude": ("lat", 90.0), "lon": ("lon", 180.0), "longitude": ("lon", 180.0)}
META_KEYS = frozenset((*TIME_KEYS, *STATION_KEYS, *SOURCE_KEYS, *COORD_KEYS, "tags", "name", "fields", "metrics"))
_NO_TIME_KEY = f"missing ts: no field or column named {', '.join(TIME_KEYS[:-1])} or {TIME_KEYS[-1]}"
MAX_TAGS = 32
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256
_NAN = float("nan")
_NO_TAGS: dict[str, str] = {}
_NUMBER = (float, int)
TYPED_MIN_LINES = 512
# Fewer ISO time strings than this (a few odd lines of their own layout) are read one by one: parse_iso
# gives what the column path gives (tests/test_batch_decode.py), without its fixed cost (~0.4 ms).
_ISO_COLUMN_ROWS = 64
_Kinds = tuple[frozenset[type], bool]  # the types of a column's cells, one is a number of 2**53 or more


class IgnoredCounts(dict):
    """Field names that are no variable -> fields ignored under each name, at most `limit` names kept.

    A writer that invents a key per message (a UUID as a field name) would grow a plain count by a
    name per message for as long as a service runs; past `limit` names, a new name's fields are
    counted in `untracked` without the name. The names a feed sends all along are met first."""

    def __init__(self, limit: int = 4096) -> None:
        super().__init__()
        self.limit = limit
        self.untracked = 0

    def add(self, key: str, n: int) -> None:
        if key in self or len(self) < self.limit:
            self[key] = self.get(key, 0) + n
        else:
            self.untracked += n


@dataclass
class InputPolicy:
    """How to read values and times: missing markers, time zones, the plausible span of times."""

    na: frozenset[str] = field(default_factory=lambda: na_markers(DEFAULT_NA))
    tz: Any = None  # ZoneInfo for naive times, None: UTC
    station_tz: dict[str, Any] = field(default_factory=dict)  # station -> ZoneInfo
    span: TimeSpan = field(default_factory=TimeSpan)
    max_tags: int = MAX_TAGS

    def zone_for(self, station: str) -> Any:
        return self.station_tz.get(station, self.tz)


@dataclass
class Table:
    """A chunk of a text table (CSV, NDBC, IEM): a header and rows of cells, one raw line per row.

    `bad` holds records of the chunk that are not rows (a quote never closed, a wrong
    number of cells) as (position among the records, raw, reason): they keep their place.
    """

    header: list[str]
    rows: list[list[str]]
    raws: list[bytes]
    decimal_comma: bool = False
    dialect: str = ""  # "iem": IEM column names
    bad: list[tuple[int, bytes, str]] = field(default_factory=list)
    tz: Any = None  # ZoneInfo the file itself states for its naive times (an IEM download's debug line)
    # The rows as columns instead (`rows` empty): polars String Series, one per header column, every
    # row of the header's width; `raws` then encodes a row's line when one is asked for.
    columns: list[Any] | None = None

    @property
    def records(self) -> int:
        """How many records the chunk holds: rows and bad records."""
        return (len(self.columns[0]) if self.columns else len(self.rows)) + len(self.bad)


@dataclass
class Decoded:
    """What a chunk decodes to: valid rows (input order) and what was set aside."""

    batch: ObservationBatch
    rejected: list[Rejection] = field(default_factory=list)  # whole messages, input order
    fields: list[FieldRejection] = field(default_factory=list)  # single fields of kept rows
    missing: int = 0  # cells that held a missing marker

    @property
    def quarantined(self) -> list[Rejection | FieldRejection]:
        return [*self.rejected, *self.fields]


class _Out:
    """Accumulates the rows of one decode call, group by group."""

    def __init__(self) -> None:
        self.ids: list[np.ndarray] = []
        self.ts: list[np.ndarray] = []
        # Per group: (the kept rows' places in the group, None: all; its stations, sources, tags (None: none)).
        # Its lists are taken from once, in `batch`, with the reordering: not copied as each group is kept.
        self.lists: list[tuple[np.ndarray | None, list[str], list[str], list[dict[str, str]] | None]] = []
        self.cols: dict[str, list[tuple[int, np.ndarray]]] = {}
        self.lat: list[tuple[int, np.ndarray, np.ndarray]] = []  # (offset, lat, lon) of groups with positions
        self.n = 0
        self.rejected: dict[int, Rejection] = {}
        self.fields: list[tuple[int, FieldRejection]] = []
        self.missing = 0

    def batch(self) -> ObservationBatch:
        n = self.n
        ids = np.concatenate(self.ids) if self.ids else np.zeros(0, dtype=np.int64)
        ts = np.concatenate(self.ts) if self.ts else np.zeros(0)
        columns = {}
        for name, parts in self.cols.items():
            col = np.full(n, np.nan)
            for offset, part in parts:
                col[offset: offset + part.size] = part
            columns[name] = col
        lat = lon = None
        if self.lat:
            lat, lon = np.full(n, np.nan), np.full(n, np.nan)
            for offset, la, lo in self.lat:
                lat[offset: offset + la.size] = la
                lon[offset: offset + lo.size] = lo
        order = None
        if n and np.any(np.diff(ids) < 0):  # groups interleave: back to input order
            order = np.argsort(ids, kind="stable")
            ts = ts[order]
            columns = {name: col[order] for name, col in columns.items()}
            if lat is not None and lon is not None:
                lat, lon = lat[order], lon[order]
        station, source = self._kept(1, order), self._kept(2, order)
        tags = self._kept(3, order) if any(part[3] is not None for part in self.lists) else None
        return ObservationBatch(ts, station, source, columns, lat, lon, tags)

    def _kept(self, k: int, order: np.ndarray | None) -> list[Any]:
        """List `k` of the groups (1 stations, 2 sources, 3 tags: {} for a group without), their kept rows
        in the order of `ids` (`order`: put back in input order): one take from all the groups' lists."""
        if len(self.lists) == 1 and self.lists[0][0] is None and order is None:
            return list(self.lists[0][k])
        whole: list[Any] = []
        places = []
        for part in self.lists:
            kept, values = part[0], part[k]
            size = len(part[1])
            if values is None:
                values = [_NO_TAGS] * size
            places.append(len(whole) + (np.arange(size) if kept is None else kept))
            whole += values
        at = np.concatenate(places) if places else np.zeros(0, dtype=np.int64)
        return _take(whole, at if order is None else at[order])


@dataclass(slots=True)
class _Checked:
    """A checked group, not yet kept: what `Decoder._commit` adds to the output (j: position in `rows`)."""

    rows: list[int]
    raw_of: Callable[[int], bytes]
    metas: list[MessageMeta | None]
    bad: list[tuple[str, str] | None]  # (reason, code) of a row rejected whole
    rejected_rows: list[int]
    keep: np.ndarray
    by_row: dict[int, list[tuple[str, str, str, str, str]]]  # j -> field problems (field, variable, raw, reason, code)
    stations: list[str]
    ts: np.ndarray
    sources: list[str]
    cols: dict[str, np.ndarray]
    coords: tuple[np.ndarray, np.ndarray] | None
    tags: list[dict[str, str]] | None
    missing: int
    unknown: list[str]


class Decoder:
    """Decodes chunks of messages or table rows under an `InputPolicy`; keeps the state that spans
    chunks (the repeated-hour resolution per station) and counts what it resolved."""

    def __init__(self, policy: InputPolicy | None = None, *, typed_min_lines: int | None = None) -> None:
        self.policy = policy or InputPolicy()
        self.local = LocalTimes()
        # Chunks of at least this many lines are read by polars first (`sources.json_columns`); a live
        # source's few messages are not worth its fixed cost (and its import, 0.1 s, is never paid there).
        self.typed_min_lines = TYPED_MIN_LINES if typed_min_lines is None else typed_min_lines
        self._reader = ColumnReader()
        self._zoned_naive = False  # naive times under a time zone: row by row (see _typed)

    # --- entry points ----------------------------------------------------
    def decode(
        self, raws: Sequence[bytes], *, default_station: str | None = None, default_source: str = "unknown",
        meta: Sequence[MessageMeta | None] | None = None, ignored: dict[str, int] | None = None,
    ) -> Decoded:
        """Decode wire messages (JSON, one per item). `meta[i]` is message i's transport metadata."""
        if meta is None:
            with _collector_paused():
                fast = self._load_plain(raws)
                if fast is not None:
                    objs, out, groups, typed = fast
                    return self._objects(objs, raws, _NO_META, out, default_station, default_source, ignored,
                                         groups, typed)
        objs: list[Any] = []
        rows_raw: list[bytes] = []
        rows_meta: list[MessageMeta | None] = []
        out = _Out()
        for i, raw in enumerate(raws):
            m = meta[i] if meta is not None and i < len(meta) else None
            if b"\x00" in raw:
                out.rejected[len(objs)] = _nul_bytes(raw, m)
                objs.append(None), rows_raw.append(b""), rows_meta.append(m)
                continue
            if len(raw) > MAX_MESSAGE_BYTES:
                out.rejected[len(objs)] = Rejection(
                    f"message larger than {MAX_MESSAGE_BYTES} bytes (first {RAW_KEPT} kept)", raw[:RAW_KEPT],
                    "too_large", m)
                objs.append(None), rows_raw.append(b""), rows_meta.append(m)
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                obj = _lenient(raw)  # numbers beyond a double, NaN: the stdlib reads them, fields are judged later
                if obj is _NOT_JSON:
                    out.rejected[len(objs)] = Rejection(f"not JSON: {str(exc)[:200]}", raw, "not_json", m)
                    objs.append(None), rows_raw.append(b""), rows_meta.append(m)
                    continue
                self._add(obj, raw, m, objs, rows_raw, rows_meta, out, check_text=True)
                continue
            self._add(obj, raw, m, objs, rows_raw, rows_meta, out)
        return self._objects(objs, rows_raw, rows_meta, out, default_station, default_source, ignored)

    def decode_objects(
        self, items: Sequence[Any], *, default_station: str | None = None, default_source: str = "unknown",
        ignored: dict[str, int] | None = None,
    ) -> Decoded:
        """Decode already-parsed JSON values (their raw form is re-serialised for quarantine records)."""
        objs: list[Any] = []
        rows_raw: list[bytes] = []
        rows_meta: list[MessageMeta | None] = []
        out = _Out()
        for obj in items:
            try:
                raw, suspect = orjson.dumps(obj), False
            except TypeError:  # orjson.JSONEncodeError too: parsed by anyone, a string may hold a lone surrogate
                raw, suspect = _dumps(obj), True
            self._add(obj, raw, None, objs, rows_raw, rows_meta, out, check_text=suspect)
        return self._objects(objs, rows_raw, rows_meta, out, default_station, default_source, ignored)

    def decode_table(
        self, table: Table, *, default_station: str | None = None, default_source: str = "unknown",
        ignored: dict[str, int] | None = None,
    ) -> Decoded:
        """Decode the rows of a text table; every cell is text (missing markers per the policy)."""
        out = _Out()
        n = table.records
        bad_at = {pos: (raw, why) for pos, raw, why in table.bad}
        for pos, (raw, why) in bad_at.items():
            out.rejected[pos] = Rejection(why, raw, "malformed_row")
        header = [h.strip() for h in table.header]
        header = [h.lower() if h.lower() in META_KEYS else h for h in header]  # "Station", "Time", "Lat"
        cells = table.rows
        index = {key: j for j, key in enumerate(header)}
        keys = tuple(index)
        if table.columns:
            self._columnar_table(table, header, n, bad_at, out, default_station, default_source, ignored)
        elif cells:
            width = len(header)
            if bad_at:
                ids = [i for i in range(n) if i not in bad_at]
                raw_of = dict(zip(ids, table.raws, strict=True)).__getitem__
                local = {r: k for k, r in enumerate(ids)}.__getitem__
            else:  # every record a row: a row's position is its place in the chunk
                ids = list(range(n))
                raw_of = table.raws.__getitem__
                local = int

            # tables() keeps only rows of the header's width: a column is one itemgetter mapped over the rows
            full = all(map(width.__eq__, map(len, cells)))

            def column(key: str, rows: list[int]) -> list[str | None]:
                j = index[key]
                if rows is ids and full:
                    return list(map(itemgetter(j), cells))
                return [_cell(cells[local(r)], j, width) for r in rows]

            self._guarded(keys, ids, column, raw_of, _NO_META.__getitem__, out, default_station,
                          default_source, ignored, text=True, decimal_comma=table.decimal_comma,
                          dialect=table.dialect, tz=table.tz)
        return self._finish(out)

    def _columnar_table(self, table: Table, header: list[str], n: int, bad_at: dict, out: _Out, default_station,
                        default_source, ignored) -> None:
        """The rows of a table read into columns (`Table.columns`): as `decode_table` checks its rows,
        a variable's column and the time column handed over as polars columns (`Texts`), so long
        columns of plain decimals and of usual ISO times are read without a Python string per cell."""
        columns = table.columns or []
        index = {key: j for j, key in enumerate(header)}
        keys = tuple(index)
        ids: list[int] = [i for i in range(n) if i not in bad_at] if bad_at else list(range(n))
        raws = table.raws
        local = {r: k for k, r in enumerate(ids)}.__getitem__ if bad_at else int
        texts = {key: Texts(columns[j]) for key, j in index.items()
                 if key in TIME_KEYS or (key not in META_KEYS and resolve(key, table.dialect) is not None)}
        lists: dict[str, list[str]] = {}

        def cells(key: str) -> list[str]:
            if key not in lists:
                lists[key] = columns[index[key]].to_list()
            return lists[key]

        def column(key: str, rows: list[int]) -> Any:
            if rows is ids:
                return texts[key] if key in texts else cells(key)
            whole = cells(key)
            return [whole[local(r)] for r in rows]

        def raw_of(r: int) -> bytes:
            return raws[local(r)]

        self._guarded(keys, ids, column, raw_of, _NO_META.__getitem__, out, default_station, default_source,
                      ignored, text=True, decimal_comma=table.decimal_comma, dialect=table.dialect, tz=table.tz)

    def _load_plain(self, raws: Sequence[bytes]) -> tuple[list[Any], _Out, dict[tuple[str, ...], list[int]],
                                                         Columns | None] | None:
        """Parse messages without transport metadata in one C loop (orjson over the chunk, a bad
        line caught and handled alone, the rest continued); the same objects and rejections as
        one message at a time. A long chunk is read by polars first (`sources.json_columns`):
        the lines it describes exactly are not parsed here (None in the objects, in no group),
        their layout's group is checked from its columns. None (that path, then) when a message
        is too large or is a Telegraf batch or line (rows added or reshaped)."""
        if not raws:
            return None
        n = len(raws)
        ahead = getattr(raws, "columns", None)  # read while the chunk before was checked (formats.read_ahead)
        typed = self._typed(raws, ahead) if ahead is not None or n >= self.typed_min_lines else None
        if (typed.longest if typed is not None else max(map(len, raws))) > MAX_MESSAGE_BYTES:
            return None
        if typed is None:
            todo: Sequence[int] = range(n)
            lines: Sequence[bytes] = raws
        else:
            rest = np.ones(n, dtype=bool)
            rest[typed.rows] = False
            todo = np.flatnonzero(rest).tolist()
            lines = [raws[i] for i in todo]
        parsed: list[Any] = []
        # Each error's message, not the error: its traceback would hold this frame (the chunk's lines
        # and objects) in a cycle until the collector found it (milliseconds per chunk of bad lines).
        failed: dict[int, str] = {}
        remaining = iter(lines)
        while True:
            try:
                parsed.extend(map(orjson.loads, remaining))
                break
            except orjson.JSONDecodeError as exc:
                failed[todo[len(parsed)]] = str(exc)
                parsed.append(None)
        if typed is None:
            objs = parsed
        else:
            objs = [None] * n
            for i, obj in zip(todo, parsed, strict=True):
                objs[i] = obj
        out = _Out()
        for i, why in failed.items():
            obj = _lenient(raws[i])  # numbers beyond a double, NaN: the stdlib reads them, fields are judged later
            if obj is _NOT_JSON:
                out.rejected[i] = (_nul_bytes(raws[i], None) if b"\x00" in raws[i]
                                   else Rejection(f"not JSON: {why[:200]}", raws[i], "not_json", None))
            elif type(obj) is dict and (bad_text := _bad_text(obj)) is not None:
                out.rejected[i] = Rejection(bad_text, raws[i], "bad_text", None)
            else:
                objs[i] = obj
        if set(map(type, objs if typed is None else (objs[i] for i in todo))) != {dict}:
            for i in todo:
                obj = objs[i]
                if type(obj) is not dict and i not in out.rejected:  # JSON null included
                    out.rejected[i] = Rejection(f"not a JSON object but {_kind(obj)}", raws[i], "not_object", None)
                    objs[i] = None
        groups = _key_groups(objs, None if typed is None else todo)
        if any("fields" in keys or "metrics" in keys for keys in groups):
            return None  # Telegraf's shapes: the path that reshapes them (rare)
        return objs, out, groups, typed

    def _typed(self, raws: Sequence[bytes], ahead: Future | None) -> Columns | None:
        """The lines polars reads exactly (`sources.json_columns`; `ahead`: being read already), or
        None. Not under a time zone when their times are naive: those are resolved row by row, in
        order, per station."""
        try:
            typed = ahead.result() if ahead is not None else None if self._zoned_naive else self._reader.read(raws)
        except Exception:  # noqa: BLE001 - a shortcut only: whatever it stumbles on is read message by message
            return None
        if typed is None or self._zoned_naive:
            return None
        if self.policy.tz is None and not self.policy.station_tz:
            return typed
        present = [k for k in TIME_KEYS if k in typed.keys]
        if present and typed.numbers(present[0]) is None:
            _codes, values = typed.distinct(present[:1])
            if any(type(v) is not str or _naive(v) for v in values[present[0]]):
                self._zoned_naive = True
                return None
        return typed

    # --- JSON objects --------------------------------------------------------
    def _add(self, obj: Any, raw: bytes, m: MessageMeta | None, objs: list[Any], rows_raw: list[bytes],
             rows_meta: list[MessageMeta | None], out: _Out, check_text: bool = False) -> None:
        """One parsed message into `objs` (None and a rejection when it cannot be a row). `check_text`:
        it was not parsed by orjson, so its strings may hold lone surrogates (see `_bad_text`)."""
        batch = type(obj) is dict and type(obj.get("metrics")) is list and not any(k in obj for k in TIME_KEYS)
        if batch and obj["metrics"]:
            for sub in obj["metrics"]:  # Telegraf's batch format: one row per metric
                self._add(sub, _dumps(sub), m, objs, rows_raw, rows_meta, out, check_text)
            return
        if batch:  # no metrics: accounted for like any message, set aside with its reason
            out.rejected[len(objs)] = Rejection("a Telegraf batch with no metrics", raw, "no_values", m)
            objs.append(None)
        elif type(obj) is not dict:
            out.rejected[len(objs)] = Rejection(f"not a JSON object but {_kind(obj)}", raw, "not_object", m)
            objs.append(None)
        elif check_text and (bad_text := _bad_text(obj)) is not None:
            out.rejected[len(objs)] = Rejection(bad_text, raw, "bad_text", m)
            objs.append(None)
        else:
            objs.append(_flatten(obj) if "fields" in obj else obj)
        rows_raw.append(raw)
        rows_meta.append(m)

    def _objects(self, objs, rows_raw, rows_meta, out, default_station, default_source, ignored,
                 groups: dict[tuple[str, ...], list[int]] | None = None, typed: Columns | None = None) -> Decoded:
        if groups is None:
            groups = _key_groups(objs)
        order = list(groups.items())
        if typed is not None:
            # The claimed lines and the unclaimed ones of their layout are one group, in its place
            # (groups go in the order of their first row, as the state of the repeated hour needs).
            mixed = groups.get(typed.keys, [])
            first = min(int(typed.rows[0]), mixed[0]) if mixed else int(typed.rows[0])
            order = [(keys, rows) for keys, rows in order if keys != typed.keys]
            at = next((k for k, (_keys, rows) in enumerate(order) if rows[0] > first), len(order))
            order.insert(at, (typed.keys, mixed))
        for keys, rows in order:
            if typed is not None and keys == typed.keys:
                self._typed_group(typed, rows, objs, rows_raw, out, default_station, default_source, ignored)
                continue
            self._guarded(keys, rows, _object_column(objs, keys, rows), rows_raw.__getitem__, rows_meta.__getitem__,
                          out, default_station, default_source, ignored, text=False)
        return self._finish(out)

    def _typed_group(self, typed: Columns, mixed: list[int], objs, raws, out: _Out, default_station, default_source,
                     ignored) -> None:
        """The group of the claimed lines (checked from polars' columns) and of the unclaimed lines
        of the same layout (`mixed`, checked from their objects): what checking them as one group of
        objects gives, row for row."""
        keys = typed.keys
        rows = typed.rows
        try:
            checked = [self._check(keys, rows, _typed_column(typed), raws.__getitem__, _NO_META.__getitem__,
                                   default_station, default_source, text=False, typed=typed)]
            if mixed:
                # A column's numbers decide, with the other rows' cells, how those are read (see _values).
                also = {key: _claimed_kinds(typed, key) for key in keys if key not in META_KEYS}
                checked.append(self._check(keys, mixed, _object_column(objs, keys, mixed), raws.__getitem__,
                                           _NO_META.__getitem__, default_station, default_source, text=False,
                                           also=also))
        except Exception:  # noqa: BLE001 - as a group of objects would be: retried message by message
            for r in rows.tolist():
                objs[r] = orjson.loads(raws[r])
            every = sorted(rows.tolist() + mixed)
            self._guarded(keys, every, _object_column(objs, keys, every), raws.__getitem__, _NO_META.__getitem__,
                          out, default_station, default_source, ignored, text=False)
            return
        for part in checked:
            self._commit(part, out, ignored)

    def _finish(self, out: _Out) -> Decoded:
        return Decoded(
            batch=out.batch(),
            rejected=[out.rejected[i] for i in sorted(out.rejected)],
            fields=[f for _, f in sorted(out.fields, key=lambda item: item[0])],
            missing=out.missing,
        )

    # --- one group: the same keys in every row -------------------------------
    def _guarded(self, keys, rows, column, raw_of, meta_of, out: _Out, default_station, default_source, ignored,
                 **how) -> None:
        try:
            self._commit(self._check(keys, rows, column, raw_of, meta_of, default_station, default_source, **how),
                         out, ignored)
            return
        except Exception:  # noqa: BLE001 - never raise out of decoding: retry message by message
            pass
        for r in rows:
            try:
                self._commit(self._check(keys, [r], column, raw_of, meta_of, default_station, default_source, **how),
                             out, ignored)
            except Exception as exc:  # noqa: BLE001 - this message is the problem: quarantine it
                out.rejected[r] = Rejection(f"invalid message: {type(exc).__name__}: {str(exc)[:200]}", raw_of(r),
                                            "invalid", meta_of(r))

    def _check(self, keys, rows: list[int], column: Callable[[str, list[int]], Any], raw_of, meta_of,
               default_station, default_source, *, text: bool, decimal_comma: bool = False, dialect: str = "",
               tz: Any = None, typed: Columns | None = None, also: dict[str, _Kinds] | None = None,
               ) -> _Checked:
        """Check a group's rows; nothing is kept until `_commit`, so a group that raises half-way
        leaves nothing behind when it is retried message by message. `typed`: the rows are the
        claimed lines of those columns (their station, time, source and tags are worked out once
        per distinct value)."""
        n = len(rows)
        bad: list[tuple[str, str] | None] = [None] * n  # (reason, code) of a row rejected whole
        metas = [None] * n if meta_of == _NO_META.__getitem__ else [meta_of(r) for r in rows]
        if typed is None:
            stations = self._stations(keys, rows, column, metas, default_station, bad, text)
            ts = self._times(keys, rows, column, metas, stations, bad, text, tz)
            sources = self._sources(keys, rows, column, default_source, text)
        else:
            stations, ts, sources = self._typed_places(typed, column, default_station, default_source, bad)
        problems: list[tuple[int, str, str, str, str, str]] = []  # (j, field, variable, raw, reason, code)
        coords = self._coords(keys, rows, column, problems, text)
        if text or "tags" not in keys:
            tags = None
        else:
            tags = self._tags(column("tags", rows), bad) if typed is None else self._typed_tags(typed, bad)
        cols: dict[str, np.ndarray] = {}
        any_value = np.zeros(n, dtype=bool)
        missing = 0
        unknown = []
        for key in keys:
            if key in META_KEYS:
                continue
            spec = resolve(key, dialect)
            if spec is None:
                unknown.append(key)
                continue
            cells = column(key, rows)
            col, lost = self._values(spec, cells, text, decimal_comma, problems, also.get(key) if also else None)
            missing += lost
            any_value |= ~np.isnan(col)
            previous = cols.get(spec.name)
            if previous is None:
                cols[spec.name] = col
                continue
            # an alias and its registry name (or a column twice) in one message: the first value is
            # kept, a later one that differs is a conflicting duplicate, set aside alone (as at an
            # instant the store has already, `mass_tui.lateness`); one where the first is absent fills in
            clash = ~np.isnan(previous) & ~np.isnan(col) & ~np.isclose(previous, col, rtol=1e-9, atol=0.0)
            for j in np.flatnonzero(clash).tolist():
                shown = _raw_text(cells[j], text)
                problems.append((j, spec.field, spec.name, shown,
                                 f"conflicting duplicate: {spec.field}={shown} where this message's "
                                 f"{spec.name} is {float(previous[j]):g} already", "conflict"))
            cols[spec.name] = np.where(np.isnan(previous), col, previous)

        by_row: dict[int, list[tuple[str, str, str, str, str]]] = {}
        for j, fld, var, raw, reason, code in problems:
            by_row.setdefault(j, []).append((fld, var, raw, reason, code))
        keep = any_value.copy()
        for j in np.flatnonzero(~any_value).tolist():
            if bad[j] is not None:
                continue
            found = by_row.get(j)
            if found:
                detail = "; ".join(reason for _f, _v, _r, reason, _c in found[:4])
                bad[j] = (f"no valid value left ({detail})"[:400], "no_valid_value")
            else:
                bad[j] = ("no variable values", "no_values")
        rejected_rows = list(compress(range(n), bad)) if any(bad) else []  # a reason is a 2-tuple: true
        if rejected_rows:
            keep[rejected_rows] = False
        return _Checked(rows, raw_of, metas, bad, rejected_rows, keep, by_row, stations, ts, sources, cols, coords,
                        tags, missing, unknown)

    @staticmethod
    def _commit(c: _Checked, out: _Out, ignored: dict[str, int] | None) -> None:
        rows, n = c.rows, len(c.rows)
        if ignored is not None and n:  # a chunk with no row read (all malformed) ignored no field
            for key in c.unknown:
                key = escape_surrogates(key)  # a count by name, shown in the summary: written as UTF-8
                if isinstance(ignored, IgnoredCounts):
                    ignored.add(key, n)
                else:
                    ignored[key] = ignored.get(key, 0) + n
        out.missing += c.missing
        for j in c.rejected_rows:
            reason, code = c.bad[j]
            r = int(rows[j])
            out.rejected[r] = Rejection(reason, c.raw_of(r), code, c.metas[j])
        keep, stations, ts = c.keep, c.stations, c.ts
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            return
        offset = out.n
        for j, found in c.by_row.items():
            if keep[j]:
                for fld, var, raw, reason, code in found:
                    out.fields.append((int(rows[j]), FieldRejection(stations[j], float(ts[j]), inert(fld), raw, reason,
                                                                 code, var, c.metas[j])))
        whole = idx.size == n  # the group's arrays are its own: kept as they are
        out.ids.append(np.asarray(rows, dtype=np.int64) if whole else np.asarray(rows, dtype=np.int64)[idx])
        out.ts.append(ts if whole else ts[idx])
        for name, col in c.cols.items():
            out.cols.setdefault(name, []).append((offset, col if whole else col[idx]))
        coords = c.coords
        if coords is not None:
            lat, lon = coords if whole else (coords[0][idx], coords[1][idx])
            if not np.isnan(lat).all():
                out.lat.append((offset, lat, lon))
        tags = c.tags
        if tags is not None and not any(tags if whole else compress(tags, keep)):
            tags = None  # no kept row has tags
        out.lists.append((None if whole else idx, stations, c.sources, tags))
        out.n += idx.size

    # --- the claimed lines of polars' columns ----------------------------------
    def _typed_places(self, typed: Columns, column, default_station, default_source, bad
                      ) -> tuple[list[str], np.ndarray, list[str]]:
        """Station, time and source of each claimed row. A column of plain names is the answer as it
        is, a time column is read as a column (numbers, or strings in polars); otherwise the checks
        run once per distinct combination of the cells they read, then spread to the rows."""
        keys = typed.keys
        rows = typed.rows
        present = [k for k in STATION_KEYS if k in keys]
        stations = _plain_names(typed, present)
        if stations is None:
            read = present + (["tags"] if "tags" in keys else [])
            if "provider" in keys and "ts_iso" in keys:
                read += [k for k in ("provider", "lat", "lon") if k in keys]
            stations = _spread(*self._per_distinct(typed, read, bad, lambda rows, col, metas, dbad: self._stations(
                keys, rows, col, metas, default_station, dbad, False)))
        present = [k for k in TIME_KEYS if k in keys]
        if len(present) == 1 and (typed.numbers(present[0]) is not None or typed.texts(present[0]) is not None):
            # naive times under a time zone never get here (_typed), so no state is read or kept
            times = typed.numbers(present[0]) or typed.texts(present[0])
            ts = self._times(keys, rows, lambda key, rows: times, [None] * len(rows), stations, bad, False)
        else:
            codes, per_code = self._per_distinct(typed, present, bad, lambda rows, col, metas, dbad: self._times(
                keys, rows, col, metas, [""] * len(rows), dbad, False))
            ts = per_code[codes]
        present = [k for k in SOURCE_KEYS if k in keys]
        if not present:
            sources = [default_source] * len(rows)
        elif (sources := _plain_names(typed, present)) is None:
            sources = _spread(*self._per_distinct(typed, present, bad, lambda rows, col, metas, dbad: self._sources(
                keys, rows, col, default_source, False)))
        return stations, ts, sources

    def _typed_tags(self, typed: Columns, bad) -> list[dict[str, str]]:
        return _spread(*self._per_distinct(typed, ["tags"], bad, lambda rows, col, metas, dbad: self._tags(
            col("tags", rows), dbad)))

    @staticmethod
    def _per_distinct(typed: Columns, read: list[str], bad: list, check) -> tuple[np.ndarray, Any]:
        """(code of each row, check(rows, column, metas, bad) over the distinct combinations of the
        columns `read`); the reasons it gives a combination go to the rows that have no reason yet."""
        if read:
            codes, values = typed.distinct(read)
            k = len(values[read[0]])
        else:
            codes, values, k = np.zeros(len(bad), dtype=np.int64), {}, 1

        def column(key: str, rows: list[int]) -> list[Any]:
            cells = values[key]
            return [cells[r] for r in rows]

        found: list[tuple[str, str] | None] = [None] * k
        result = check(list(range(k)), column, [None] * k, found)
        if any(found):
            hit = np.zeros(k, dtype=bool)
            hit[[j for j, why in enumerate(found) if why is not None]] = True
            for r in np.flatnonzero(hit[codes]).tolist():
                if bad[r] is None:
                    bad[r] = found[codes[r]]
        return codes, result

    # --- columns ---------------------------------------------------------------
    def _stations(self, keys, rows, column, metas, default_station, bad, text) -> list[str]:
        present = [k for k in STATION_KEYS if k in keys]
        if len(present) == 1:
            values = column(present[0], rows)
            try:
                distinct = set(values)
            except TypeError:  # a list or an object as a station
                distinct = None
            if distinct is not None and all(type(s) is str and _plain_station(s) for s in distinct):
                return values
        seed = None
        if not present and not text and "tags" not in keys and "provider" in keys and "ts_iso" in keys:
            seed = self._seed_stations(keys, rows, column)
        out = []
        for j, r in enumerate(rows):
            if seed is not None and seed[j] is not None:
                station, why = seed[j]
                if why:
                    bad[j] = (why, "bad_station")
                out.append(station)
                continue
            value = None
            for k in present:
                value = column(k, [r])[0]
                if value is not None and not (text and not value.strip()):
                    break
                value = None
            if value is None and "tags" in keys and not text:
                tags = column("tags", [r])[0]
                if type(tags) is dict:
                    value = next((tags[k] for k in TAG_STATION_KEYS if type(tags.get(k)) is str), None)
            if value is None and "provider" in keys and "ts_iso" in keys:
                # The seed device wrote one stream per provider and location.
                provider = column("provider", [r])[0]
                if isinstance(provider, str) and provider:
                    lat = column("lat", [r])[0] if "lat" in keys else None
                    lon = column("lon", [r])[0] if "lon" in keys else None
                    value = f"{provider}@{lat},{lon}" if lat is not None else provider
            if value is None and metas[j] is not None and metas[j].key:
                value = metas[j].key.decode("utf-8", errors="backslashreplace")
            if value is None:
                value = default_station
            station, why = _station(value)
            if why:
                bad[j] = (why, "bad_station" if value is not None else "missing_station")
                station = ""
            out.append(station)
        return out

    @staticmethod
    def _seed_stations(keys, rows, column) -> list[tuple[str, str] | None]:
        """The seed device's streams, one per provider and location: `provider@lat,lon` (or the
        provider alone without a position) as (station, why not) per row, worked out once per
        distinct stream; None for a row without a provider string (found the general way)."""
        providers = column("provider", rows)
        lats = column("lat", rows) if "lat" in keys else [None] * len(rows)
        lons = column("lon", rows) if "lon" in keys else [None] * len(rows)
        known: dict[tuple, tuple[str, str] | None] = {}
        out: list[tuple[str, str] | None] = []

        def stream(p: Any, lat: Any, lon: Any) -> tuple[str, str] | None:
            if type(p) is not str or not p:
                return None
            return _station(f"{p}@{lat},{lon}" if lat is not None else p)

        for p, lat, lon in zip(providers, lats, lons, strict=True):
            # the types are part of the key: 1, 1.0 and True are equal but are written 1, 1.0, True
            key = (p, lat, lon, type(p), type(lat), type(lon))
            try:
                found = known[key]
            except KeyError:
                found = known[key] = stream(p, lat, lon)
            except TypeError:  # a list or an object as a coordinate: unhashable
                found = stream(p, lat, lon)
            out.append(found)
        return out

    def _times(self, keys, rows, column, metas, stations, bad, text, file_tz: Any = None) -> np.ndarray:
        n = len(rows)
        present = [k for k in TIME_KEYS if k in keys]
        span = self.policy.span
        ts = np.full(n, np.nan)
        values = column(present[0], rows) if len(present) == 1 else None
        # A file that states UTC (file_tz is UTC) is read as written, whatever --tz says.
        zones = file_tz is not UTC and (file_tz is not None or bool(self.policy.station_tz)
                                        or self.policy.tz is not None)
        todo = np.ones(n, dtype=bool)  # the rows read one by one below
        if values is not None:
            # The common cells a column at a time: epoch numbers, and ISO strings in the usual
            # fixed-width forms; anything else (and a naive time under a time zone) one by one.
            kinds = set() if type(values) in (Numbers, Texts) else set(map(type, values))
            numbers = None
            if type(values) is Numbers:
                numeric = np.ones(n, dtype=bool)
                numbers = values.floats
            elif not text and (int in kinds or float in kinds):
                numeric = (np.ones(n, dtype=bool) if kinds <= {float, int} else
                           np.fromiter((type(v) in _NUMBER for v in values), dtype=bool, count=n))
                try:
                    numbers = np.array([v if ok else 0.0 for v, ok in zip(values, numeric.tolist(), strict=True)],
                                       dtype=np.float64)
                except OverflowError:  # an integer beyond float range: one by one below
                    numbers = None
            if numbers is not None:
                secs = epoch_seconds_array(numbers)
                ready = numeric & np.isfinite(secs)
                ts[ready] = secs[ready]
                todo &= ~ready
            if type(values) is Texts:  # the claimed rows of polars' columns: all strings
                strings = np.arange(n)
                secs, naive, done = values.iso_seconds()
                if zones:
                    done &= ~naive
                ts[strings[done]] = secs[done]
                todo[strings[done]] = False
            if str in kinds and n >= _ISO_COLUMN_ROWS:
                if kinds == {str}:
                    strings = np.arange(n)
                    secs, naive, done = iso_seconds_array(values)
                else:
                    strings = np.flatnonzero(np.fromiter((type(v) is str for v in values), dtype=bool, count=n))
                    secs, naive, done = iso_seconds_array([values[j] for j in strings.tolist()])
                if zones:
                    done &= ~naive
                ts[strings[done]] = secs[done]
                todo[strings[done]] = False
            late = ~todo & ~span.inside(ts)
            if late.any():
                at = np.flatnonzero(late).tolist()
                shown = _cells(values, at)
                for j in at:
                    if bad[j] is None:  # a bad station was found first, as on the per-row path below
                        bad[j] = (span.reason(shown[j]), "ts_out_of_range")
                ts[late] = np.nan
            if not todo.any():
                return ts
        left = np.flatnonzero(todo).tolist()
        if values is not None:
            values = _cells(values, left)

        def time_of(j: int) -> Any:
            for k in present:
                value = values[j] if values is not None else column(k, [rows[j]])[0]
                if value is not None and not (text and not value.strip()):
                    return value
            return None

        by_station: dict[str, list[int]] = {}  # each station's positions in `left`, made when first asked

        def walls_after(at: int, wall: float) -> list[float]:
            """The naive wall times of the station of `left[at]` in the rows after it (LocalTimes), up
            to the first an hour or more from `wall` (outside the repeated hour that holds it)."""
            if not by_station:
                by_station.update(rows_by_station([stations[j] for j in left]))
            mine = by_station[stations[left[at]]]
            walls: list[float] = []
            for k in mine[bisect.bisect_right(mine, at):]:
                j = left[k]
                if bad[j] is None and type(value := time_of(j)) is str:
                    with contextlib.suppress(TimeError, OverflowError, ValueError, OSError):
                        seconds, naive = parse_iso(value)
                        if naive:
                            walls.append(seconds)
                            if len(walls) == AHEAD or abs(seconds - wall) >= 3600.0:
                                break
            return walls

        for at, j in enumerate(left):
            if bad[j] is not None:
                continue
            value = time_of(j)
            try:
                if value is None:
                    m = metas[j]
                    if m is None or m.timestamp_ms is None:
                        bad[j] = ("missing ts" if present else _NO_TIME_KEY, "missing_ts")
                        continue
                    seconds = m.timestamp_ms / 1000.0
                elif type(value) is str:
                    seconds, naive = parse_iso(value)
                    if naive and zones:
                        tz = file_tz or self.policy.zone_for(stations[j])
                        if tz is not None:
                            seconds = self.local.resolve(stations[j], seconds, tz,
                                                         functools.partial(walls_after, at, seconds))
                elif type(value) in _NUMBER:
                    seconds = epoch_seconds(float(value))
                    if not math.isfinite(seconds):
                        bad[j] = (f"timestamp is not finite: {brief(value)}", "bad_ts")
                        continue
                else:
                    bad[j] = (f"timestamp is not a string or number: {brief(value)}", "bad_ts")
                    continue
            except TimeError as exc:
                code = "ts_out_of_range" if "out of range" in str(exc) else "bad_ts"
                bad[j] = (str(exc), code)
                continue
            except (OverflowError, ValueError, OSError):
                bad[j] = (span.reason(value), "ts_out_of_range")
                continue
            if not span.earliest <= seconds < span.latest:
                bad[j] = (span.reason(value), "ts_out_of_range")
                continue
            ts[j] = seconds
        return ts

    def _sources(self, keys, rows, column, default_source, text) -> list[str]:
        present = [k for k in SOURCE_KEYS if k in keys]
        if not present:
            return [default_source] * len(rows)
        values = column(present[0], rows)
        if len(present) == 1:
            try:
                distinct = set(values)
            except TypeError:
                distinct = None
            if distinct is not None and all(type(s) is str and s and _plain_station(s) for s in distinct):
                return values
        out = []
        for r in rows:
            value = next((v for k in present if (v := column(k, [r])[0])), None)
            if type(value) is str:
                value = inert(value.strip()[:MAX_STATION_CHARS]) or default_source
            elif type(value) in (int, float, bool):
                value = str(value)
            else:
                value = default_source
            out.append(value)
        return out

    def _coords(self, keys, rows, column, problems, text) -> tuple[np.ndarray, np.ndarray] | None:
        """(lat, lon) columns in degrees, NaN where a row has no position (a position is both
        coordinates, or none); a bad coordinate is a field problem. JSON numbers are checked a
        column at a time; text cells, and the JSON cells that fail that check, one by one."""
        present = [k for k in COORD_KEYS if k in keys]
        if not present:
            return None
        n = len(rows)
        got = {"lat": np.full(n, np.nan), "lon": np.full(n, np.nan)}
        taken = {"lat": np.zeros(n, dtype=bool), "lon": np.zeros(n, dtype=bool)}  # an earlier key had a value
        for key in present:
            which, limit = COORD_KEYS[key]
            values = column(key, rows)
            todo = ~taken[which]
            if type(values) is Numbers:  # the claimed rows of polars' columns: all numbers
                with np.errstate(invalid="ignore"):
                    ok = todo & (np.abs(values.floats) <= limit)
                got[which][ok] = values.floats[ok]
                taken[which] |= ok
                todo &= ~ok
            elif not text:
                kinds = set(map(type, values))
                if kinds <= {float, int, type(None)}:
                    if type(None) in kinds:
                        todo &= np.fromiter((v is not None for v in values), dtype=bool, count=n)
                    try:
                        numbers = np.array([0.0 if v is None else v for v in values], dtype=np.float64)
                    except OverflowError:
                        numbers = None
                    if numbers is not None:
                        with np.errstate(invalid="ignore"):
                            ok = todo & (np.abs(numbers) <= limit)
                        got[which][ok] = numbers[ok]
                        taken[which] |= ok
                        todo &= ~ok  # what is left is a problem, found one by one below
            for j in np.flatnonzero(todo).tolist():
                v = values[j]
                if v is None:
                    continue
                number = _as_number(v, text, False)
                if number is None and text and v.strip().casefold() in self.policy.na:
                    continue
                taken[which][j] = True
                if number is None or not -limit <= number <= limit:
                    problems.append((j, key, "", _raw_text(v, text),
                                     f"{key} is not a coordinate in [-{limit:g}, {limit:g}]: {brief(v)}",
                                     "bad_coordinate"))
                    continue
                got[which][j] = number
        lat, lon = got["lat"], got["lon"]
        none = np.isnan(lat) | np.isnan(lon)
        if none.any():
            lat, lon = np.where(none, np.nan, lat), np.where(none, np.nan, lon)
        return lat, lon

    def _tags(self, values: list[Any], bad) -> list[dict[str, str]]:
        """Each row's tags cleaned (one shared dict per distinct set of string tags: checked once)."""
        if set(map(type, values)) == {dict}:
            # The usual column: a few distinct sets of string tags, each checked once, found by C loops.
            try:
                keys = list(map(tuple, map(dict.items, values)))
                distinct = set(keys)
            except TypeError:  # a list or an object as a tag value
                distinct = None
            if distinct is not None and all(type(v) is str for key in distinct for _k, v in key):
                cleaned = {key: self._clean_tags(dict(key)) for key in distinct}
                if all(why is None for why, _clean in cleaned.values()):
                    shared = {key: clean for key, (_why, clean) in cleaned.items()}
                    return list(map(shared.__getitem__, keys))
        out: list[dict[str, str]] = []
        known: dict[tuple, tuple[str | None, dict[str, str]]] = {}
        for j, tags in enumerate(values):
            if tags is None:
                out.append(_NO_TAGS)
                continue
            key = None
            found = None
            if type(tags) is dict:
                try:
                    key = tuple(tags.items())
                    found = known.get(key)
                except TypeError:  # a list or an object as a tag value
                    key = None
            if found is None:
                found = self._clean_tags(tags)
                # Only all-string tags are shared: 1, 1.0 and True are equal keys but are written differently.
                if key is not None and all(type(v) is str or v is None for _k, v in key):
                    known[key] = found
            why, clean = found
            if why is not None:
                if bad[j] is None:
                    bad[j] = (why, "bad_tags")
                out.append(_NO_TAGS)
            else:
                out.append(clean)
        return out

    def _clean_tags(self, tags: Any) -> tuple[str | None, dict[str, str]]:
        """(why they cannot be tags, or None; the tags as a flat object of short strings)."""
        limit = self.policy.max_tags
        clean: dict[str, str] = {}
        if type(tags) is not dict:
            return f"tags must be a flat object of strings, not {_kind(tags)}", clean
        if len(tags) > limit:
            return f"tags must be at most {limit} keys, not {len(tags)}", clean
        for k, v in tags.items():
            if v is None:
                continue
            if type(v) in (dict, list):
                return f"tags must be flat: tags.{inert(k[:40])} is {_kind(v)}", clean
            text = v if type(v) is str else (str(v).lower() if type(v) is bool else repr(v))
            if len(k) > MAX_TAG_KEY or len(text) > MAX_TAG_VALUE:
                return (f"tags must be short: a key of at most {MAX_TAG_KEY} characters, "
                        f"a value of at most {MAX_TAG_VALUE} (tags.{inert(k[:40])})"), clean
            clean[inert(k)] = inert(text)
        return None, clean

    def _values(self, spec: FieldSpec, raw: list[Any] | Numbers, text: bool, decimal_comma: bool,
                problems: list, also: _Kinds | None = None) -> tuple[np.ndarray, int]:
        """The column in registry units (NaN: absent), and how many cells were missing markers.

        `also`: (the types of the cells of other rows of the group, checked apart (the claimed lines of
        polars' columns), one of those is a number of 2**53 or more): they decide with these cells
        whether the column is read one by one, where a null counts as missing."""
        n = len(raw)
        col = None
        extra, big = also or (frozenset(), False)
        if type(raw) is Numbers:
            col = raw.floats  # finite numbers, none missing: read one by one, each gives the same
        elif not text:
            kinds = set(map(type, raw)) | extra
            if kinds <= {float, int, type(None)}:
                try:
                    col = np.array([_NAN if v is None else v for v in raw] if type(None) in kinds else raw,
                                   dtype=np.float64)
                except OverflowError:
                    col = None
                # an integer of 2**53 or more: exact compare and float conversion one by one
                if col is not None and int in kinds and (big or bool((np.abs(col) >= 2.0**53).any())):
                    col = None
                # NaN, Infinity or 1e400 in the message (not a null): one by one too, where each is a bad
                # field with its text ("not a number"), not an absent value or an out-of-range "null"
                if col is not None and float in kinds and not bool(np.isfinite(col).all()):
                    absent = int(np.isnan(col).sum())
                    if np.isinf(col).any() or absent != (raw.count(None) if type(None) in kinds else 0):
                        col = None
        else:
            if type(raw) is Texts:  # a table's column in polars (Decoder._columnar_table)
                if not decimal_comma:
                    col = _plain_decimals(raw.series)
                    if col is not None and not np.isfinite(col).all():
                        col = None
                if col is None:
                    raw = raw.series.to_list()  # read as any text column below
        if text and type(raw) is not Texts:
            cells = [c.replace(",", ".") for c in raw] if decimal_comma else raw
            try:
                col = _plain_decimals(cells)
                if col is None:
                    col = np.array(cells, dtype=np.float64)
                if not np.isfinite(col).all():
                    col = None  # "nan" and "inf" are read one by one (markers or not a finite number)
            except ValueError:
                col = None
        missing = 0
        if col is None:
            col = np.full(n, np.nan)
            na = self.policy.na
            for j, v in enumerate(raw):
                if v is None:
                    missing += 0 if text else 1
                    continue
                if type(v) is str:
                    cell = v.strip()
                    if cell.casefold() in na:
                        missing += 1
                        continue
                    if spec.trace and cell.upper() == "T":
                        col[j] = TRACE_MM if spec.convert is None else TRACE_MM / float(spec.convert(np.array(1.0)))
                        continue
                    number = _as_number(cell.replace(",", ".") if decimal_comma else cell, True, True)
                    if number is None:
                        hint = " (a decimal comma? name the separator ';')" if ("," in cell and not decimal_comma
                                                                                 and _looks_decimal_comma(cell)) else ""
                        problems.append((j, spec.field, spec.name, escape_surrogates(cell[:200]),
                                         f"{spec.field} is not a number: {brief(v)}{hint}", "not_a_number"))
                        continue
                    col[j] = number
                    continue
                number = _as_number(v, False, True)
                if number is None:
                    shown = _raw_text(v, False)
                    what = f"not a finite number: {shown}" if type(v) is float else f"not a number: {brief(v)}"
                    problems.append((j, spec.field, spec.name, shown, f"{spec.field} is {what}", "not_a_number"))
                    continue
                col[j] = number
        elif text:
            pass
        present = ~np.isnan(col)
        if not present.any():
            return col, missing
        if spec.sentinels:
            hit = col == spec.sentinels[0][0]  # what np.isin does for a few markers, without its overhead
            for marker, _who in spec.sentinels[1:]:
                hit |= col == marker
            for j in np.flatnonzero(hit).tolist():
                shown = _raw_text(raw[j], text)
                problems.append((j, spec.field, spec.name, shown,
                                 f"{spec.field}: {spec.sentinel_reason(float(col[j]), shown)}", "sentinel"))
            col = np.where(hit, np.nan, col)
        if spec.convert is not None:
            col = tidy(spec.convert(col))
        with np.errstate(invalid="ignore"):
            out_of_range = (col < spec.low) | (col > spec.high)
        if out_of_range.any():
            from sources.variables import REGISTRY

            unit = REGISTRY[spec.name].unit
            for j in np.flatnonzero(out_of_range).tolist():
                shown = _raw_text(raw[j], text)
                converted = f" ({float(col[j]):.6g} {unit})" if spec.convert is not None else ""
                problems.append((j, spec.field, spec.name, shown,
                                 f"{spec.field}={shown}{converted} outside the physical range "
                                 f"[{spec.low:g}, {spec.high:g}] {unit}".rstrip(), "out_of_range"))
            col = np.where(out_of_range, np.nan, col)
        return col, missing


# --- helpers -------------------------------------------------------------------
_NOT_JSON = object()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a chunk is decoded: a chunk makes some 10^5 objects
    (parsed messages, their keys and tags), none of them in a cycle, and each 700 allocations
    started a collection that walked them all again (a third of decoding time on a 100 k-line
    file). Freed by reference counting as before; the collector runs again after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _object_column(objs: list[Any], keys: tuple[str, ...], whole: list[int]) -> Callable[[str, list[int]], list[Any]]:
    """The cells of a group of objects by key: every object of the group has the group's keys, so a
    column of the whole group is one itemgetter mapped over its objects."""
    members = objs if len(whole) == len(objs) else [objs[r] for r in whole]
    at = frozenset(keys)

    def column(key: str, rows: list[int]) -> list[Any]:
        if rows is whole and key in at:
            return list(map(itemgetter(key), members))
        return [objs[r].get(key) for r in rows]

    return column


_PLAIN_DECIMAL = r"^-?[0-9]+(?:\.[0-9]+)?$"
_POLARS_CELLS = 4096  # a shorter column is not worth polars' fixed cost (or its import)


def _plain_decimals(cells: Any) -> np.ndarray | None:
    """A long text column (a list of str, or a polars String Series) whose cells are all plain decimals
    (`-12.5`), read by polars: float() reads those the same (both round correctly), at a third of the
    time. None otherwise."""
    if len(cells) < _POLARS_CELLS:
        return None
    try:
        import polars as pl
    except ImportError:  # pragma: no cover - a core dependency; numpy reads them then
        return None

    series = cells if isinstance(cells, pl.Series) else pl.Series(cells, dtype=pl.String)
    if not series.str.contains(_PLAIN_DECIMAL).all():
        return None
    return series.cast(pl.Float64).to_numpy()


def _typed_column(typed: Columns) -> Callable[[str, list[int]], Any]:
    """The claimed rows' cells by key: Numbers for numbers, else a list of Python values."""

    def column(key: str, rows: list[int]) -> Any:
        numbers = typed.numbers(key)
        return numbers if numbers is not None else typed.values(key)

    return column


def _cells(values: Any, at: list[int]) -> Any:
    """`values` to index at the positions `at`: a polars column's cells taken out at once (one by one,
    each is a call into polars)."""
    if type(values) is not Texts:
        return values
    return dict(zip(at, values.series.gather(at).to_list(), strict=True))


def _plain_names(typed: Columns, present: list[str]) -> list[str] | None:
    """The one column of names as the rows' names when all of them are plain (what `Decoder._stations`
    and `_sources` give them then), else None."""
    if len(present) != 1 or typed.texts(present[0]) is None:
        return None
    values = typed.values(present[0])
    return values if all(_plain_station(s) for s in set(values)) else None


def _claimed_kinds(typed: Columns, key: str) -> _Kinds:
    """(the types of the claimed rows' cells of `key`, one of them is a number of 2**53 or more): what
    they add to how the group's other cells of `key` are read (see Decoder._values)."""
    numbers = typed.numbers(key)
    if numbers is None:
        return frozenset({str if typed.texts(key) is not None else dict}), False
    return frozenset({int if numbers.ints is not None else float}), bool((np.abs(numbers.floats) >= 2.0**53).any())


def _spread(codes: np.ndarray, per_code: list[Any]) -> list[Any]:
    """The value of each row's code, as a list (the rows share the objects)."""
    return _take(per_code, codes)


_RUNS_AT_MOST = 1 / 16  # runs per position under which `_take` copies slices


def _take(values: list[Any], at: np.ndarray) -> list[Any]:
    """[values[i] for i in at]. Positions that are mostly runs of consecutive ones (the rows of a
    chunk but a few bad ones, or groups put back in input order) are copied a slice per run;
    others by numpy (values are strings or dicts, not sequences numpy would unpack)."""
    n = len(at)
    if n > 16:
        breaks = np.flatnonzero(np.diff(at) != 1) + 1
        if breaks.size <= n * _RUNS_AT_MOST:
            starts = at[np.concatenate(([0], breaks))].tolist()
            ends = (at[np.concatenate((breaks - 1, [n - 1]))] + 1).tolist()
            out: list[Any] = []
            for start, end in zip(starts, ends, strict=True):
                out += values[start:end]
            return out
    table = np.empty(len(values), dtype=object)
    table[:] = values
    return table[at].tolist()


def _naive(text: str) -> bool:
    """Whether an ISO time string has no offset (a string that is no time: False)."""
    try:
        return parse_iso(text)[1]
    except TimeError:
        return False


class _NoMeta:
    """Transport metadata of messages that have none: None for every row."""

    def __getitem__(self, i: int) -> None:
        return None


_NO_META = _NoMeta()


_NUMPY_GROUPING_ROWS = 1024


def _key_groups(objs: list[Any], among: Sequence[int] | None = None) -> dict[tuple[str, ...], list[int]]:
    """Key layout -> the rows (ascending) of the objects with it; None (set aside) in no group.
    `among`: only these rows (ascending). One layout (the usual chunk) is found by C loops over
    the whole list."""
    if among is not None:
        rows: Sequence[int] = [i for i in among if objs[i] is not None]
    else:
        rows = range(len(objs)) if None not in objs else [i for i, o in enumerate(objs) if o is not None]
    keysets = list(map(tuple, objs if len(rows) == len(objs) else (objs[i] for i in rows)))
    if not keysets:
        return {}
    distinct = set(keysets)
    if len(distinct) == 1:
        return {keysets[0]: list(rows)}
    if len(keysets) < _NUMPY_GROUPING_ROWS:  # a few odd lines set aside: a loop costs less than numpy's calls
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, keys in zip(rows, keysets, strict=True):
            groups.setdefault(keys, []).append(i)
        return groups
    # Several layouts (a few odd lines among many): group by integer codes with numpy, the
    # groups in order of their first row as a loop over the rows would give them.
    code = {keys: k for k, keys in enumerate(distinct)}
    codes = np.fromiter(map(code.__getitem__, keysets), np.int64, len(keysets))
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    at = np.asarray(rows, dtype=np.int64)
    parts = [at[part] for part in np.split(order, bounds)]
    parts.sort(key=lambda part: int(part[0]))
    return {keysets[int(np.searchsorted(at, part[0]))]: part.tolist() for part in parts}


def _nul_bytes(raw: bytes, meta: MessageMeta | None) -> Rejection:
    """The quarantine record of a message holding NUL bytes, which no JSON holds unescaped: a disk
    fault, or the NUL padding a crash leaves at the end of a file (one record however long the run;
    its first RAW_KEPT bytes kept)."""
    nuls = raw.count(b"\x00")
    what = "only NUL bytes" if nuls == len(raw) else f"{nuls:,} NUL byte{'s' if nuls > 1 else ''}"
    kept = f", first {RAW_KEPT} kept" if len(raw) > RAW_KEPT else ""
    return Rejection(f"not JSON: {what} in {len(raw):,} bytes (a disk fault, or padding left by a crash{kept})",
                     raw[:RAW_KEPT], "nul_bytes", meta)


def _lenient(raw: bytes) -> Any:
    """What the standard library reads where orjson refuses (an integer beyond a double, NaN,
    Infinity, a lone surrogate: an unpaired `\\ud800` escape or its bytes ED A0 80), or _NOT_JSON.
    A byte that is not UTF-8 inside a string is read as a lone surrogate too (`surrogateescape`):
    the text it is in is judged like any other (`_bad_text`, a bad field), not the whole line."""
    import json

    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        try:
            return json.loads(raw.decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError, TypeError):
            return _NOT_JSON
    except (ValueError, RecursionError, TypeError):  # JSONDecodeError is a ValueError
        return _NOT_JSON


_TEXT_KEYS = frozenset((*TIME_KEYS, *STATION_KEYS, *SOURCE_KEYS, "name"))
_NOT_UNICODE = "is not valid Unicode text (a lone surrogate, or a byte that is not UTF-8)"


def _bad_text(obj: dict[str, Any]) -> str | None:
    """Why a message's time, station, source, measurement name or tags (keys or values) are not
    valid Unicode text (a lone surrogate: see `_lenient`), or None. Such a message is quarantined
    whole: escaping the text would store the readings under a name the producer never wrote, and
    nothing is renamed silently. A bad value or field name elsewhere is judged as a field."""
    for key, value in obj.items():
        if key in _TEXT_KEYS:
            if type(value) is str and not valid_unicode(value):
                return f"{key} {_NOT_UNICODE}: {brief(value)}"
        elif key == "tags" and type(value) is dict:
            for k, v in value.items():
                if type(k) is str and not valid_unicode(k):
                    return f"a tag key {_NOT_UNICODE}: {brief(k)}"
                if type(v) is str and not valid_unicode(v):
                    return f"tags.{escape_surrogates(inert(k[:40]))} {_NOT_UNICODE}: {brief(v)}"
    return None


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """Nested `fields` (Telegraf's JSON serializer, or any producer nesting its values) lifted to the top;
    the measurement `name` as source and a station from the tags when the message has none."""
    fields = obj.get("fields")
    if type(fields) is not dict:
        return obj
    out = {k: v for k, v in obj.items() if k != "fields"}
    for k, v in fields.items():
        if type(k) is str and k not in META_KEYS:
            out.setdefault(k, v)
    if "source" not in out and "provider" not in out and type(obj.get("name")) is str and obj["name"]:
        out["source"] = obj["name"]
    tags = obj.get("tags")
    if not any(k in out for k in STATION_KEYS) and type(tags) is dict:
        for k in TAG_STATION_KEYS:
            if type(tags.get(k)) is str and tags[k]:
                out["station"] = tags[k]
                break
    return out


def _station(value: Any) -> tuple[str, str]:
    """(the station name, "") or ("", why it cannot be one)."""
    if value is None:
        return "", "missing station"
    if type(value) is int:
        value = str(value)
    if type(value) is not str or not value.strip():
        return "", f"station is not a non-empty string: {brief(value)}"
    value = value.strip()
    if len(value) > MAX_STATION_CHARS:
        return "", f"station name longer than {MAX_STATION_CHARS} characters"
    if _REPLACED in value:
        # what a text reader puts for a byte that is no character (sources.formats.opener.open_text:
        # one of the five bytes Windows-1252 leaves undefined, or a bad pair in UTF-16): taking it
        # would rename the station silently ("Gen\ufffdve")
        return "", (f"station {inert(value[:60])!r} holds U+FFFD, the mark of a byte that was not text in "
                    "the file's encoding")
    return inert(value), ""


_REPLACED = "\ufffd"


def _plain_station(s: str) -> bool:
    return (0 < len(s) <= MAX_STATION_CHARS and s == s.strip() and bool(s) and inert(s) == s
            and _REPLACED not in s)


def _as_number(value: Any, text: bool, strict: bool) -> float | None:
    """A finite float from a JSON number or a numeric string; None otherwise (bool is not a number)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    if kind is str:
        s = value.strip()
        if not s or len(s) > 64 or not (s[0].isdigit() or s[0] in "+-."):
            return None
        try:
            number = float(s)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _looks_decimal_comma(cell: str) -> bool:
    head, _, tail = cell.strip().lstrip("+-").partition(",")
    return head.isdigit() and tail.isdigit()


def _raw_text(value: Any, text: bool) -> str:
    if text or type(value) is str:
        return escape_surrogates(str(value)[:200])
    if type(value) is float and not math.isfinite(value):  # as JSON parsers that take it spell it
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if value is None or type(value) in (bool, int, float):
        return _dumps(value).decode()[:200] if type(value) is not int or value.bit_length() <= 64 else brief(value)
    return brief(value)


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):  # nested deeper than orjson writes, a lone surrogate, or not JSON
        pass
    try:
        return orjson.dumps(json_safe(obj))  # a lone surrogate written as its escape, `\\ud800`
    except (TypeError, orjson.JSONEncodeError):
        return brief(obj).encode()


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _cell(row: list[str], j: int, width: int) -> str | None:
    return row[j] if j < len(row) else None


def span_from(earliest: float | None = None, latest: float | None = None) -> TimeSpan:
    return TimeSpan(EARLIEST if earliest is None else earliest, LATEST if latest is None else latest)
