"""The UI's live state as a sink: each scored batch, made compact, into the outbox to the UI.

Per batch: the chart rows of each scored series (`live_state.trace_rows`), the
anomalies (with their episodes, and why the alert service mutes any of them),
the alert events as a state per episode (firing, silenced, acked, resolved), each station's source, place and tags when
they changed, its labels when they changed, and the running counters. The
outbox (`mass_tui.live_update`) coalesces them while the UI is behind.

Not durable: the UI shows what it can; the store keeps everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mass_tui.live_state import trace_rows
from mass_tui.live_update import Outbox, Place
from mass_tui.ui.episodes import alert_state

if TYPE_CHECKING:
    from mass_tui.scored import BatchResult


class UpdateSink:
    name = "ui"
    durable = False
    wants_series = True

    DAILY_SECONDS = 1.0  # a station's open daily summary is sent at most this often

    def __init__(self, outbox: Outbox, labels: Mapping[str, dict[str, str]] | None = None,
                 open_daily: Callable[[str], list[dict[str, Any]]] | None = None) -> None:
        """`labels` is the engine's station -> labels map (`Engine.labels`), read after each batch;
        `open_daily(station)` the aggregates sink's summaries of days still open (the daily screen)."""
        self.outbox = outbox
        self.labels = labels if labels is not None else {}
        self.open_daily = open_daily
        self._sources: dict[str, str] = {}
        self._labels_sent: dict[str, dict[str, str]] = {}
        self._daily_due: dict[str, float] = {}  # station -> monotonic time its open days may be sent again
        self._daily_stale: set[str] = set()  # stations with data since their open days were last sent

    def write(self, scored: BatchResult) -> None:
        rows = [((t.station, t.variable), trace_rows(t.times, t.values, t.score, t.detail, t.rules))
                for t in scored.series]
        batch = scored.batch
        n = len(batch)
        # Each station's source (the last one given in the batch) and its position and tags when a
        # message had them: the header and the map show them. dict(zip()) keeps the last per station.
        sources = dict(zip(batch.station, batch.source, strict=True))
        places: dict[str, Place] = {}
        labels: dict[str, dict[str, str]] = {}
        for station, source in sources.items():
            if self._sources.get(station) != source:
                places[station] = (source, None, None, None)
                self._sources[station] = source
            known = self.labels.get(station)
            if known is not None and self._labels_sent.get(station) != known:
                labels[station] = self._labels_sent[station] = dict(known)
        if batch.lat is not None or batch.tags is not None:
            placed = np.zeros(n, dtype=bool) if batch.lat is None else ~np.isnan(batch.lat)
            if batch.tags is not None:
                placed |= np.fromiter(map(bool, batch.tags), dtype=bool, count=n)
            last = {batch.station[row]: row for row in np.flatnonzero(placed).tolist()}  # the last row wins
            for station, row in last.items():
                places[station] = (batch.source[row], *batch.place(row))
        data_time = float(np.max(batch.ts)) if n else None
        alerts = [(ev.anomaly.episode, alert_state(ev.kind, ev.muted, ev.acked), ev.muted or "")
                  for ev in scored.alerts if ev.anomaly.episode]
        self.outbox.add_batch(rows, n, scored.anomalies, places, labels, muted_why=scored.muted,
                              alert_states=alerts,
                              data_time=data_time, **scored.totals)
        if self.open_daily is not None:
            self._daily_stale.update(sources)
            self.send_open_daily()

    def send_open_daily(self, everything: bool = False) -> None:
        """The open days of the stations that had data, each at most every `DAILY_SECONDS` (all of them
        at once when `everything`: the run ended)."""
        if self.open_daily is None or not self._daily_stale:
            return
        now = time.monotonic()
        due = [s for s in self._daily_stale if everything or self._daily_due.get(s, 0.0) <= now]
        if due:
            self.outbox.set_open_daily({s: self.open_daily(s) for s in due})
            self._daily_stale.difference_update(due)
            for s in due:
                self._daily_due[s] = now + self.DAILY_SECONDS

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
