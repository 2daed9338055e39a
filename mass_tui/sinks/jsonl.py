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

if TYPE_CHECKING:
    from mass_tui.engine import BatchResult


class JsonlSink:
    name = "jsonl"
    durable = True
    wants_series = False

    def __init__(self, store: JsonlStore) -> None:
        self.store = store

    def write(self, scored: BatchResult) -> None:
        store = self.store
        store.append_data(STREAM, stream_data(scored.batch, scored.scores))
        muted = scored.muted
        if muted:
            store.append(ANOMALIES, ({**a.to_record(), "muted": muted[i]} if i in muted else a.to_record()
                                     for i, a in enumerate(scored.anomalies)))
        else:
            store.append(ANOMALIES, (a.to_record() for a in scored.anomalies))
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

    Written a column at a time: each column is serialised by one orjson call and split, and all
    rows are one list of pieces (each field's key part, then its value) joined at once; a field
    some rows lack has an empty key and value in those rows. That is a few C-level steps per
    field where a dict and a dumps per row cost microseconds, and a bytes template per row twice
    as much. The bytes are the same as orjson.dumps of the record per line (a test holds them equal).
    """
    n = len(batch)
    if n == 0:
        return b""
    times, when = np.unique(batch.ts, return_inverse=True)
    fields: list[bytes | list[bytes]] = [
        b'{"ts":', list(map(iso_stamps(times).__getitem__, when.tolist())),
        b',"station":', _encoded(batch.station), b',"source":', _encoded(batch.source)]
    if batch.lat is not None and batch.lon is not None:
        placed = ~np.isnan(batch.lat)
        fields += [*_field(b',"lat":', _column_json(batch.lat), placed),
                   *_field(b',"lon":', _column_json(batch.lon), placed)]
    if batch.tags is not None:
        tagged = np.fromiter(map(bool, batch.tags), dtype=bool, count=n)
        fields += _field(b',"tags":', _encoded_tags(batch.tags), tagged)
    scored: list[tuple[bytes, list[bytes], np.ndarray]] = []
    for name, col in batch.columns.items():
        has = ~np.isnan(col)
        fields += _field(b"," + orjson.dumps(name) + b":", _column_json(col), has)
        if name in scores and has.any():
            scored.append((orjson.dumps(name) + b":", _column_json(np.rint(scores[name] * 10000.0) / 10000.0), has))
    fields.append(b',"anomaly_score":{')
    before = np.zeros(n, dtype=bool)  # the row has a score written already: the next key takes a comma
    for key, values, has in scored:
        if not before.any():
            keys: bytes | list[bytes] = key
        elif before.all():
            keys = b"," + key
        else:
            keys = np.array([key, b"," + key], dtype=object)[before.view(np.uint8)].tolist()
        fields += _field(keys, values, has)
        before |= has
    fields.append(b"}}\n")
    return _joined(fields, n)


def _field(key: bytes | list[bytes], values: list[bytes], has: np.ndarray) -> list:
    """A field's key part and values for `_joined`: both empty in the rows without it (`has` False)."""
    if has.all():
        return [key, values]
    if not has.any():
        return []
    absent = np.flatnonzero(~has).tolist()
    keys = [key] * len(values) if isinstance(key, bytes) else key
    for i in absent:
        keys[i] = values[i] = b""
    return [keys, values]


def _joined(fields: list[bytes | list[bytes]], rows: int) -> bytes:
    """Row after row, each field's piece of the row (a bytes: the same in every row; a list: one
    per row) joined: one list of pieces, then a few joins."""
    pieces: list = [b""] * len(fields)
    for k, field in enumerate(fields):
        if isinstance(field, bytes):
            pieces[k] = field
    width = len(pieces)
    pieces *= rows
    for k, field in enumerate(fields):
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


def _column_json(column: np.ndarray) -> list[bytes]:
    """Each value as orjson writes it (null for NaN), from one dumps call for the column (orjson
    writes a float64 array's values as it writes the same Python floats)."""
    data = np.ascontiguousarray(column, dtype=np.float64)
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")


def _encoded(strings: list[str]) -> list[bytes]:
    """Each string as JSON, encoded once per distinct value."""
    table = {s: orjson.dumps(s) for s in set(strings)}
    return list(map(table.__getitem__, strings))


def _encoded_tags(tags: list[dict[str, str]]) -> list[bytes]:
    """Each row's tags as JSON, encoded once per distinct dict (by identity: decoded rows share one
    dict per distinct tags)."""
    ids = list(map(id, tags))
    table = {key: orjson.dumps(t) for key, t in dict(zip(ids, tags, strict=True)).items()}
    return list(map(table.__getitem__, ids))
