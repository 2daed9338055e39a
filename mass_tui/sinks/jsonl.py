"""The JSONL store as a sink: observations with their scores, and anomalies (with `muted` when a
silence, mute time or inhibition holds their alerts back).

This is the durable sink of the embedded default: `sync()` fsyncs the
files, and the transport position is committed after it. Alert notices and
delivery outcomes go to `alerts.jsonl` through the alert journal
(`mass_tui/alerts/journal.py`), which channel workers write from their own threads.
"""

from __future__ import annotations

from operator import itemgetter
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
        store.append_lines(STREAM, _stream_lines(scored.batch, scored.scores))
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
    """The stored form: the flat observation (with lat/lon and tags when it has them) plus
    anomaly_score (4 decimals) per variable.

    Written a column at a time: each column is serialised by one orjson call and
    split, and each line is one bytes template filled per row (one template per
    layout of present fields), which is about twice as fast as a dict and a dumps
    per row. The bytes are the same as orjson.dumps of the record (a test holds them equal).
    """
    n = len(batch)
    if n == 0:
        return []
    times, when = np.unique(batch.ts, return_inverse=True)
    stamps = iso_stamps(times)
    head = [[stamps[k] for k in when.tolist()], _encoded(batch.station), _encoded(batch.source)]
    names = list(batch.columns)
    layout = np.zeros(n, dtype=np.int64)  # bit j: the row has variable j; then position, then tags
    for j, col in enumerate(batch.columns.values()):
        layout |= (~np.isnan(col)).astype(np.int64) << j
    extra: list[tuple[bytes, list[bytes]]] = []  # (key part of the template, a value per row)
    if batch.lat is not None and batch.lon is not None:
        layout |= (~np.isnan(batch.lat)).astype(np.int64) << len(names)
        extra.append((b'"lat":%s,"lon":%s', []))
        lat, lon = _column_json(batch.lat), _column_json(batch.lon)
    if batch.tags is not None:
        layout |= np.fromiter(map(bool, batch.tags), dtype=bool, count=n).astype(np.int64) << (len(names) + 1)
        encoded: dict[int, bytes] = {}  # by identity: decoded rows share one dict per distinct tags
        tags = [encoded.get(id(t)) or encoded.setdefault(id(t), orjson.dumps(t)) for t in batch.tags]
    values = {name: _column_json(col) for name, col in batch.columns.items()}
    four_places = {name: np.rint(col * 10000.0) / 10000.0 for name, col in scores.items()}
    rounded = {name: _column_json(col) for name, col in four_places.items()}
    layouts, group = np.unique(layout, return_inverse=True)
    lines = [b""] * n
    for g, bits in enumerate(layouts.tolist()):
        present = [name for j, name in enumerate(names) if bits >> j & 1]
        scored = [name for name in present if name in rounded]
        keys = [b'{"ts":%s,"station":%s,"source":%s']
        parts = [*head]
        if bits >> len(names) & 1:
            keys.append(b'"lat":%s,"lon":%s')
            parts += [lat, lon]
        if bits >> (len(names) + 1) & 1:
            keys.append(b'"tags":%s')
            parts.append(tags)
        template = b",".join([*keys, *map(_json_key, present)])
        template += b',"anomaly_score":{' + b",".join(map(_json_key, scored)) + b"}}"
        parts += [*(values[name] for name in present), *(rounded[name] for name in scored)]
        if len(layouts) == 1:
            lines = [template % row for row in zip(*parts, strict=True)]
        else:
            idx = np.flatnonzero(group == g).tolist()
            pick = itemgetter(*idx) if len(idx) > 1 else (lambda part, i=idx[0]: (part[i],))
            for i, row in zip(idx, zip(*map(pick, parts), strict=True), strict=True):
                lines[i] = template % row
    return lines


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
    """Each value as orjson writes it (null for NaN), from one dumps call for the column."""
    return orjson.dumps(column.tolist())[1:-1].split(b",")


def _encoded(strings: list[str]) -> list[bytes]:
    """Each string as JSON, encoded once per distinct value."""
    table = {s: orjson.dumps(s) for s in set(strings)}
    return [table[s] for s in strings]


def _json_key(name: str) -> bytes:
    return orjson.dumps(name).replace(b"%", b"%%") + b":%s"
