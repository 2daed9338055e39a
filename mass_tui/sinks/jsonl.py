"""The JSONL store as a sink: observations with their scores, and anomalies (with `muted` when a
silence, mute time or inhibition holds their alerts back).

This is the durable sink of the embedded default: `sync()` fsyncs the
files, and the transport position is committed after it. Alert notices and
delivery outcomes go to `alerts.jsonl` through the alert journal
(`mass_tui/alerts/journal.py`), which channel workers write from their own threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import orjson

from mass_tui.store import ANOMALIES, STREAM, JsonlStore
from sources.batch import ObservationBatch
from sources.schema import iso_utc
from sources.text import json_bytes

if TYPE_CHECKING:
    from mass_tui.scored import BatchResult


class JsonlSink:
    name = "jsonl"
    durable = True
    wants_series = False

    def __init__(self, store: JsonlStore) -> None:
        self.store = store

    def write(self, scored: BatchResult) -> None:
        """The batch's stream lines and its anomalies, as one group (`JsonlStore.append_group`): on
        disk together or not at all, so a rerun after a failed run (which skips the rows the stream
        has) stores each anomaly once."""
        store = self.store
        muted = scored.muted
        if muted:
            anomalies = store.encoded({**a.to_record(), "muted": muted[i]} if i in muted else a.to_record()
                                      for i, a in enumerate(scored.anomalies))
        else:
            anomalies = store.encoded(a.to_record() for a in scored.anomalies)
        store.append_group([(STREAM, stream_data(scored.batch, scored.scores)),
                            (ANOMALIES, b"\n".join([*anomalies, b""]) if anomalies else b"")])
        store.flush()

    def sync(self) -> None:
        self.store.sync()

    def close(self) -> None:
        self.store.flush()


def _stream_lines(batch: ObservationBatch, scores: dict[str, np.ndarray]) -> list[bytes]:
    """The stored lines of a batch, one per row, without their newlines (see `stream_data`)."""
    return stream_data(batch, scores).split(b"\n")[:-1]


def stream_data(batch: ObservationBatch, scores: dict[str, np.ndarray]) -> bytes:
    """The stored form of a batch, one line per row, each ending in a newline: the flat observation
    (with lat/lon and tags when it has them) plus anomaly_score (4 decimals) per variable.

    Written a column at a time: each column is serialised by one orjson call (or read off a
    table of its distinct values) into one piece per row, its key part and value, and all rows
    are one list of pieces joined at once; a field some rows lack is empty in those rows. That
    is a few C-level steps per field where a dict and a dumps per row cost microseconds, and a
    bytes template per row twice as much. The bytes are the same as orjson.dumps of the record
    per line (a test holds them equal).
    """
    n = len(batch)
    if n == 0:
        return b""
    times, when = np.unique(batch.ts, return_inverse=True)
    stamps = [b'{"ts":' + stamp for stamp in iso_stamps(times)]
    fields: list[bytes | list[bytes]] = [list(map(stamps.__getitem__, when.tolist())),
                                         _encoded(batch.station, b',"station":'),
                                         _encoded(batch.source, b',"source":')]
    if batch.lat is not None and batch.lon is not None:
        placed = ~np.isnan(batch.lat)
        fields += [*_field(_column_json(batch.lat, b',"lat":'), placed),
                   *_field(_column_json(batch.lon, b',"lon":'), placed)]
    if batch.tags is not None:
        tagged = np.fromiter(map(bool, batch.tags), dtype=bool, count=n)
        fields += _field(_encoded_tags(batch.tags, b',"tags":'), tagged)
    scored: list[tuple[str, np.ndarray]] = []
    for name, col in batch.columns.items():
        has = ~np.isnan(col)
        fields += _field(_column_json(col, b"," + orjson.dumps(name) + b":"), has)
        if name in scores and has.any():
            scored.append((name, has))
    opening = b',"anomaly_score":{'
    before = np.zeros(n, dtype=bool)  # the row has a score written already: the next key takes a comma
    for name, has in scored:
        four_places = np.rint(scores[name] * 10000.0) / 10000.0
        key = orjson.dumps(name) + b":"
        if before.any() and not before.all():  # the comma depends on the row: a piece of its own
            fields.append(opening)
            opening = b""
            fields += _field(np.array([key, b"," + key], dtype=object)[before.view(np.uint8)].tolist(), has)
            fields += _field(_column_json(four_places, b""), has)
        else:
            key = key if not before.any() else b"," + key
            if has.all():  # the opening goes into each row's piece: one piece less per row
                key, opening = opening + key, b""
            fields.append(opening)
            opening = b""
            fields += _field(_column_json(four_places, key), has)
        before |= has
    fields += [opening, b"}}\n"]
    return _joined(fields, n)


def _field(pieces: list[bytes], has: np.ndarray) -> list[list[bytes]]:
    """A field's pieces (key part and value, per row) for `_joined`: empty in the rows without it."""
    if has.all():
        return [pieces]
    if not has.any():
        return []
    for i in np.flatnonzero(~has).tolist():
        pieces[i] = b""
    return [pieces]


def _joined(fields: list[bytes | list[bytes]], rows: int) -> bytes:
    """Row after row, each field's piece of the row (a bytes: the same in every row; a list: one
    per row) joined: one list of pieces, then a few joins."""
    merged: list[bytes | list[bytes]] = []
    for field in fields:  # neighbouring constants as one piece
        if isinstance(field, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += field
        elif not isinstance(field, bytes) or field:
            merged.append(field)
    pieces: list = [field if isinstance(field, bytes) else b"" for field in merged]
    width = len(pieces)
    pieces *= rows
    for k, field in enumerate(merged):
        if not isinstance(field, bytes):
            pieces[k::width] = field
    # bytes.join takes an 80-byte buffer record per piece: a million pieces at once spill the
    # caches and cost 7x as much as joins of ~16 k pieces each, then one join of those.
    step = _JOIN_PIECES
    return b"".join([b"".join(pieces[i:i + step]) for i in range(0, len(pieces), step)])


_JOIN_PIECES = 16384


def iso_stamps(times: np.ndarray) -> list[bytes]:
    """Each time as the JSON string iso_utc writes ("2024-01-01T00:00:00Z", with microseconds when
    it has them): whole seconds a column at a time through numpy's datetime64, the rest one by one."""
    whole = times == np.floor(times)
    out = [b""] * times.size
    if whole.any():
        text = np.datetime_as_string(times[whole].astype("datetime64[s]"), unit="s")
        for i, t in zip(np.flatnonzero(whole).tolist(), text.tolist(), strict=True):
            out[i] = b'"%sZ"' % t.encode()
    for i in np.flatnonzero(~whole).tolist():
        out[i] = orjson.dumps(iso_utc(float(times[i])))
    return out


def _column_json(column: np.ndarray, key: bytes) -> list[bytes]:
    """Each value as orjson writes it (null for NaN) after `key`: from one dumps call for the
    column (orjson writes a float64 array's values as it writes the same Python floats), or, for
    a column of few distinct decimals (`_decimal_table`), from a table of them."""
    data = np.ascontiguousarray(column, dtype=np.float64)
    table = _decimal_table(data, key)
    if table is not None:
        return table
    text = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
    if not key:
        return text.split(b",")
    # The key before each value, in the same pass: NUL is in no JSON orjson writes.
    return (key + text.replace(b",", b"\0" + key)).split(b"\0")


# Decimals up to this many places, and numbers below this size, are read exactly off a table.
_PLACES = 10000.0
_BELOW = 1e11


def _decimal_table(data: np.ndarray, key: bytes) -> list[bytes] | None:
    """The values as orjson writes them after `key`, when each is k / scale for a whole k and
    scale 1, 10, .. 10000 (a reading given to 1 or 2 decimals, a score to 4, a humidity in whole
    percent, a station's latitude) and there are at most a quarter as many distinct k as rows:
    each distinct value is dumped once and the rows pick theirs (dumping and splitting every
    value costs ~70 ns a value, a table entry ~150, picking ~10).

    Exact: a row uses the table only if k / scale, the table's own division, is the row's value
    bit for bit (so -0.0 never does: its k / scale is 0.0). None when the column does not fit."""
    n = data.size
    if n < 256:
        return None
    finite = ~np.isnan(data)
    values = data if finite.all() else data[finite]
    if not values.size:
        return None
    head = values[:64]  # a column of other numbers is told by its first few, before any pass over all
    if not _same_bits(np.rint(head * _PLACES) / _PLACES, head):
        return None
    whole = np.rint(values * _PLACES)
    if not _BELOW * -_PLACES < whole.min() <= whole.max() < _BELOW * _PLACES:
        return None  # whole numbers of a float64 (< 2^53), k of an int64
    k = whole.astype(np.int64)
    common = int(np.gcd.reduce(k)) or 1
    # The fewest decimals that hold every value: the smallest span (and table of seen values).
    step = next(step for step in (10000, 1000, 100, 10, 1) if common % step == 0)
    if step > 1:
        k //= step
    scale = _PLACES / step
    low = int(k.min())
    span = int(k.max()) - low + 1
    if span > 4 * n:
        return None
    k -= low
    seen = np.zeros(span, dtype=bool)
    seen[k] = True
    distinct = np.flatnonzero(seen)
    if 4 * distinct.size > n or not _same_bits((k + low) / scale, values):
        return None  # the check: k / scale, as the table divides, is each value bit for bit
    text = orjson.dumps((distinct + low) / scale, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
    table = np.array((key + text.replace(b",", b"\0" + key)).split(b"\0") + [key + b"null"], dtype=object)
    slot = np.empty(span, dtype=np.int64)
    slot[distinct] = np.arange(distinct.size)
    if values is data:
        return table[slot[k]].tolist()
    pick = np.full(n, distinct.size, dtype=np.int64)  # NaN: the last entry, null
    pick[finite] = slot[k]
    return table[pick].tolist()


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a.view(np.int64), b.view(np.int64)))


def _encoded(strings: list[str], key: bytes) -> list[bytes]:
    """Each string as JSON after `key`, encoded once per distinct value."""
    try:
        table = {s: key + orjson.dumps(s) for s in set(strings)}
    except TypeError:  # a lone surrogate (the decoder lets none through): escaped, never a failed write
        table = {s: key + json_bytes(s) for s in set(strings)}
    return list(map(table.__getitem__, strings))


def _encoded_tags(tags: list[dict[str, str]], key: bytes) -> list[bytes]:
    """Each row's tags as JSON after `key`, encoded once per distinct dict (by identity: decoded
    rows share one dict per distinct tags)."""
    ids = list(map(id, tags))
    try:
        table = {ident: key + orjson.dumps(t) for ident, t in dict(zip(ids, tags, strict=True)).items()}
    except TypeError:  # as in _encoded
        table = {ident: key + json_bytes(t) for ident, t in dict(zip(ids, tags, strict=True)).items()}
    return list(map(table.__getitem__, ids))
