"""A bulk run's store sinks over one store, in the order that keeps a rerun whole.

The stream and anomalies sink (`JsonlSink`) and the aggregates sink (`AggregateSink`, which in a
bulk run aggregates up to two batches at a time, fewer when the writer is idle) write through one
`BackgroundWrites`. A batch's stream lines and anomalies are held until the aggregates of its rows
are queued, and the queue is written in order: however the run ends (a full disk, a kill), the
aggregates on disk are never behind the stream. A rerun skips the rows the stream has, so a stream
ahead of the aggregates would leave their windows unaggregated for good; aggregates ahead are
superseded by the rerun's records of the same windows. Used in the writer process
(`mass_tui.sinks.offload`) and, in the engine's process, for a bulk run written inline.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mass_tui.sinks.background_writes import BackgroundWrites
from mass_tui.sinks.configured import aggregate_sinks
from mass_tui.sinks.jsonl import JsonlSink
from mass_tui.sinks.offload import PARTS
from mass_tui.store import ANOMALIES, STREAM, JsonlStore

if TYPE_CHECKING:
    from mass_tui.config import Config
    from mass_tui.scored import BatchResult

log = logging.getLogger(__name__)



class OrderedStoreSinks:
    """`part` (PARTS) of a bulk run's store sinks over `store`: a sink of its own to the engine
    (`write`, `sync`, `close`), `summaries()` the aggregates' summary once closed. Not thread-safe:
    one engine thread calls it. `sync` raises what the store raises (StoreWriteError)."""

    name = "store-writer"
    durable = True
    wants_series = False

    def __init__(self, config: Config, store: JsonlStore, part: str = "all") -> None:
        if part not in PARTS:
            raise ValueError(f"part {part!r}: expected one of {', '.join(PARTS)}")
        aggregated = part == "all" and bool(config.get("store.aggregate_windows"))
        self.store = BackgroundWrites(store, hold=frozenset({STREAM, ANOMALIES}) if aggregated else frozenset())
        self.sinks: list[Any] = ([JsonlSink(self.store)] if part != "aggregates" else []) + \
            (aggregate_sinks(config, self.store, bulk=True) if part != "stream" else [])
        self._summaries: dict[str, Any] = {}

    def write(self, scored: BatchResult) -> None:
        for sink in self.sinks:
            sink.write(scored)
        if not any(getattr(sink, "pending_rows", 0) for sink in self.sinks):
            self.store.release()  # the aggregates of these rows are queued: their lines may follow

    def idle(self) -> None:
        """Nothing waits to be written: aggregate the rows held back for coalescing now, so the
        writer works while the engine scores instead of in a burst every other batch and after the
        last one. Which batches are aggregated together then depends on timing; the windows do not
        (a window's sum is its readings added in the order they came: `Rows.fold`)."""
        for sink in self.sinks:
            if getattr(sink, "pending_rows", 0):
                sink.aggregate_pending()
        self.store.release()

    def sync(self) -> None:
        for sink in reversed(self.sinks):  # the aggregates first, then the stream (held until then)
            sink.sync()

    def close(self) -> None:
        """Close the sinks, aggregates first, and write and fsync what they hold; raises what the
        store's sync raises, after every sink was closed."""
        sinks, self.sinks = self.sinks, []
        for sink in reversed(sinks):
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - one sink failing to close must not keep the others open
                log.exception("closing sink %s", sink.name)
        self._summaries = {s.name: s.summary() for s in sinks if callable(getattr(s, "summary", None))}
        if sinks:
            self.store.sync()

    @property
    def closed(self) -> bool:
        return not self.sinks

    def summaries(self) -> dict[str, Any]:
        return dict(self._summaries)
