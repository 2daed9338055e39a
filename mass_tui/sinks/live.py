"""The UI's live state as a sink: ring buffers per series, the episodes, each station's place, counters.

Not durable: the UI shows what it can; the store keeps everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mass_tui.live_state import LiveState

if TYPE_CHECKING:
    from mass_tui.engine import BatchResult


class LiveStateSink:
    name = "ui"
    durable = False
    wants_series = True

    def __init__(self, state: LiveState) -> None:
        self.state = state
        self._sources: dict[str, str] = {}

    def write(self, scored: BatchResult) -> None:
        state = self.state
        for trace in scored.series:
            state.record_series(trace.station, trace.variable, trace.times, trace.values, trace.score,
                                trace.detail, trace.rules)
        batch = scored.batch
        n = len(batch)
        # Each station's source (the last one given in the batch) and its position and tags when a
        # message had them: the header and the map show them. dict(zip()) keeps the last per station.
        sources = dict(zip(batch.station, batch.source, strict=True))
        places = {}
        for station, source in sources.items():
            if self._sources.get(station) != source:
                places[station] = (source, None, None, None)
                self._sources[station] = source
        for row, (lat, lon, tags) in batch.extras.items():
            station = batch.station[row]
            places[station] = (batch.source[row], lat, lon, tags)
        if places:
            state.record_places(places)
        data_time = float(np.max(batch.ts)) if n else None
        state.record_batch(n, scored.anomalies, data_time=data_time, **scored.totals)

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
