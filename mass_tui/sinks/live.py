"""The UI's live state as a sink: ring buffers per series, the recent anomalies, counters.

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

    def write(self, scored: BatchResult) -> None:
        state = self.state
        for trace in scored.series:
            state.record_series(trace.station, trace.variable, trace.times, trace.values, trace.score,
                                trace.detail, trace.rules)
        n = len(scored.batch)
        data_time = float(np.max(scored.batch.ts)) if n else None
        state.record_batch(n, scored.anomalies, data_time=data_time, **scored.totals)

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
