"""Windowed aggregates as a sink: `aggregates.jsonl` beside the stream, written as windows close.

The windows of each batch's stations go through an `Aggregator`
(`mass_tui.aggregates`); the records of the windows that closed are
appended to the store's `aggregates.jsonl`. At stop, the windows still open
are written with `final: false`. On start the open windows of the newest
span of the stored stream are rebuilt from it (no record written), so a
restart completes the day it stopped in instead of starting it again.

Not durable: aggregates are derived from the stream, which the JSONL sink
makes durable; they are fsynced with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mass_tui.aggregates import Aggregator, records_in
from mass_tui.store import STREAM, JsonlStore, newest_ts, read_recent
from sources.batch import ObservationBatch, concat
from sources.labels import station_labels
from sources.schema import parse_time
from sources.variables import REGISTRY

if TYPE_CHECKING:
    from mass_tui.scored import BatchResult

AGGREGATES = "aggregates.jsonl"

log = logging.getLogger(__name__)


class AggregateSink:
    name = "aggregates"
    durable = False
    wants_series = False

    def __init__(self, store: JsonlStore, aggregator: Aggregator | None = None, *, restore: bool = True,
                 coalesce_rows: int = 0) -> None:
        """`coalesce_rows` > 0 (a bulk replay): batches are aggregated together once they hold that
        many rows (and at `sync`, `close` and `open_daily`), so the per-call cost of each scope,
        window size and variable is paid once per tens of thousands of rows, not once per batch.
        The windows are the same whatever the batching; only which line a window lands in changes."""
        self.store = store
        self.aggregator = aggregator or Aggregator()
        self._labels: dict[str, dict[str, str]] = {}
        self.written = 0
        self.coalesce_rows = coalesce_rows
        self._pending: list[ObservationBatch] = []
        self._pending_rows = 0
        self._pending_labels: dict[str, dict[str, str]] = {}  # the labels the held-back rows take
        # The UI reads open_daily() and a cleanup may close() from other threads than the engine's.
        self._lock = threading.Lock()
        if restore:
            self.restore()

    def write(self, scored: BatchResult) -> None:
        batch = scored.batch
        if not len(batch):
            return
        if self.coalesce_rows > 0:
            labels = self._last_labels(batch)
            if self._pending and any(self._pending_labels.get(k, self._labels.get(k)) != v for k, v in labels.items()):
                # A station's labels change: the rows before are aggregated under the old ones, as
                # batch by batch, whichever batches the writer happens to aggregate together.
                self._write_pending()
            self._pending_labels.update(labels)
            with self._lock:
                self._pending.append(batch)
                self._pending_rows += len(batch)
            if self._pending_rows >= self.coalesce_rows:
                self._write_pending()
            return
        self._aggregate(batch)

    @property
    def pending_rows(self) -> int:
        """Rows written to this sink and not aggregated yet (coalescing; 0 otherwise)."""
        return self._pending_rows

    def aggregate_pending(self) -> None:
        """Aggregate the rows held back for coalescing now (the writer has nothing else to do)."""
        self._write_pending()

    def _write_pending(self) -> None:
        with self._lock:
            pending, self._pending, self._pending_rows = self._pending, [], 0
        self._pending_labels = {}
        if pending:
            self._aggregate(concat(pending))

    @staticmethod
    def _last_labels(batch: ObservationBatch, groups: Mapping[str, np.ndarray | None] | None = None
                     ) -> dict[str, dict[str, str]]:
        """Each station's labels from its last tags in the batch (stations with tags in it): one
        labelling per station, not per row."""
        out: dict[str, dict[str, str]] = {}
        if batch.tags is None:
            return out
        for station, rows in (groups if groups is not None else _by_station_rows(batch.station)).items():
            for i in (reversed(range(len(batch))) if rows is None else reversed(rows.tolist())):
                if batch.tags[i]:
                    out[station] = station_labels(station, batch.source[i], batch.tags[i])
                    break
        return out

    def _aggregate(self, batch: ObservationBatch) -> None:
        groups = _by_station_rows(batch.station)
        self._labels.update(self._last_labels(batch, groups))
        with self._lock:
            data, lines = self.aggregator.add_many_data(groups, self._labels, batch.ts, batch.columns)
            if lines:
                self.store.append_data(AGGREGATES, data)
                self.written += records_in(data)
                self.store.flush()

    def _append(self, lines: list[bytes]) -> None:
        if lines:
            self.store.append_lines(AGGREGATES, lines)
            self.written += sum(map(records_in, lines))
            self.store.flush()

    def sync(self) -> None:
        self._write_pending()

    def close(self) -> None:
        """Write the windows still open (`final: false`); a restart rebuilds and supersedes them."""
        self._write_pending()
        with self._lock:
            self._append(self.aggregator.flush())

    def open_daily(self, station: str) -> list[dict[str, Any]]:
        """Today's summary so far (and any other day still open) for the UI."""
        self._write_pending()
        with self._lock:
            return self.aggregator.open_daily(station)

    def restore(self) -> int:
        """Rebuild the windows still open from the stored stream: each station's rows from the day
        before its newest reading less the lateness (`store.read_recent`); returns rows read."""
        newest = newest_ts(self.store)
        if newest is None:
            return 0
        agg = self.aggregator
        span = max(agg.windows.values(), default=0.0) + agg.lateness

        def since_of(last: float) -> float:  # the start of the first window a reading this new may reach
            return float(np.floor((last - span) / 86400.0) * 86400.0)

        # each station from its own newest reading back: one that lags the others has its windows open there
        records = read_recent(self.store, STREAM, since_of(newest), since_of=since_of)
        if not records:
            return 0
        for station, rows in _by_station(records).items():
            ts, columns, labels = rows
            agg.add(station, labels, ts, columns)  # windows that close during the rebuild were written before
        for table in (agg.late, agg.too_late, agg.group_late, agg.group_too_late):
            table.clear()
        for station, (_ts, _cols, labels) in _by_station(records[-1:]).items():
            self._labels[station] = labels
        log.info("aggregates: rebuilt the open windows from %d stored observations", len(records))
        return len(records)

    def summary(self) -> dict[str, Any]:
        agg = self.aggregator
        def per_window(table: dict[str, dict[str, int]]) -> dict[str, int]:
            out: dict[str, int] = {}
            for counts in table.values():
                for window, n in counts.items():
                    out[window] = out.get(window, 0) + n
            return out

        return {"records": self.written, "late": per_window(agg.late), "too_late": per_window(agg.too_late),
                "groups_late": per_window(agg.group_late), "groups_too_late": per_window(agg.group_too_late)}


def _by_station_rows(stations: Sequence[str]) -> dict[str, np.ndarray | None]:
    """station -> its rows in order (None: every row), stations in order of first appearance;
    grouped by numpy on integer codes, not row by row."""
    index: dict[str, int] = {}
    for name in dict.fromkeys(stations):
        index[name] = len(index)
    if len(index) == 1:
        return dict.fromkeys(index)
    codes = np.fromiter(map(index.__getitem__, stations), np.int64, len(stations))
    order = np.argsort(codes, kind="stable")
    cuts = np.searchsorted(codes[order], np.arange(1, len(index)))
    return dict(zip(index, np.split(order, cuts), strict=True))



def _by_station(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray],
                                                                          dict[str, str]]]:
    """Stored stream records -> per station (times, columns of registry variables, labels)."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        if isinstance(r.get("station"), str):
            grouped.setdefault(r["station"], []).append(r)
    out = {}
    for station, rows in grouped.items():
        times = []
        kept = []
        for r in rows:
            try:
                times.append(parse_time(r.get("ts")))
                kept.append(r)
            except ValueError:
                continue
        names = sorted({k for r in kept for k in r if k in REGISTRY})
        columns = {n: np.array([_num(r.get(n)) for r in kept]) for n in names}
        last = kept[-1] if kept else {}
        labels = station_labels(station, str(last.get("source", "")), last.get("tags") or None)
        out[station] = (np.array(times), columns, labels)
    return out


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan
