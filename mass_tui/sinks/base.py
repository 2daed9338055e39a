"""The sink interface and the fan-out that drives a list of sinks."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mass_tui.scored import BatchResult

log = logging.getLogger(__name__)


@runtime_checkable
class Sink(Protocol):
    """One destination of scored batches.

    `durable` sinks hold data that must not be lost: `sync()` returns only once
    what `write()` got is on disk (or in the database), and the transport
    position is committed after it. A non-durable sink (the UI, metrics) may
    drop what it cannot keep up with. `wants_series` asks the engine for the
    per-series detector detail (charts); computing it costs, so only the UI asks.
    """

    name: str
    durable: bool
    wants_series: bool

    def write(self, scored: BatchResult) -> None: ...

    def sync(self) -> None: ...

    def close(self) -> None: ...


class SinkSet:
    """Sinks in the order they were added; one scored batch goes to each in turn."""

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self._sinks: list[Sink] = list(sinks)

    def add(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def remove(self, sink: Sink) -> None:
        self._sinks.remove(sink)

    def __iter__(self):
        return iter(self._sinks)

    def __len__(self) -> int:
        return len(self._sinks)

    @property
    def wants_series(self) -> bool:
        return any(s.wants_series for s in self._sinks)

    def write(self, scored: BatchResult) -> None:
        for sink in self._sinks:
            sink.write(scored)

    def sync(self) -> None:
        """Make what every durable sink was given safe: after this the position may be committed."""
        for sink in self._sinks:
            if sink.durable:
                sink.sync()

    def close(self) -> BaseException | None:
        """Close every sink; a failure is logged and does not keep the others open. Returns the first
        failure of a durable sink (what it held at close may not be stored: a caller that reports
        success raises it), else None."""
        first: BaseException | None = None
        for sink in self._sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - one sink failing to close must not keep the others open
                log.exception("closing sink %s", sink.name)
                if first is None and getattr(sink, "durable", False):
                    first = exc
        return first
