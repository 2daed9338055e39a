"""Anomalies as CloudEvents 1.0 (structured content mode), POSTed to `CLOUDEVENTS_URL`.

Each anomaly is one event (`type` org.mass-monitor.anomaly, `subject` the
station, `data` the stored anomaly record with its station labels and, when
a silence or inhibition holds its alerts back, `muted`), sent as
`application/cloudevents+json`, one request per event, from a worker thread
with its own bounded queue (`ChannelWorker`): a slow or absent receiver
costs dropped events (counted and logged), never the pipeline. Alert
notices go to the same URL through the alert channel "cloudevents".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from mass_tui.alerts.channels import ChannelError
from mass_tui.alerts.dispatch import ChannelWorker
from mass_tui.alerts.payloads import cloudevent_of_anomaly, cloudevents

if TYPE_CHECKING:
    from mass_tui.scored import BatchResult

log = logging.getLogger(__name__)


class _AnomalyPoster:
    name = "cloudevents-anomalies"

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout

    def send(self, events: list[dict[str, Any]]) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            for event in events:
                content_type, body = cloudevents([event])
                response = client.post(self.url, content=body, headers={"Content-Type": content_type})
                if response.status_code >= 300:
                    raise ChannelError(f"CloudEvents receiver answered HTTP {response.status_code}")


class CloudEventsSink:
    name = "cloudevents"
    durable = False
    wants_series = False

    def __init__(self, url: str, *, labels_of: Callable[[str], Mapping[str, str] | None], timeout: float = 10.0,
                 max_pending: int = 1000, max_attempts: int = 5, retry_seconds: float = 2.0) -> None:
        self.labels_of = labels_of
        self.worker = ChannelWorker(_AnomalyPoster(url, timeout), max_pending=max_pending, max_attempts=max_attempts,
                                    retry_seconds=retry_seconds, max_retry_seconds=300.0, on_outcome=None)

    def write(self, scored: BatchResult) -> None:
        if not scored.anomalies:
            return
        muted = scored.muted
        events = [cloudevent_of_anomaly(a, muted=muted.get(i), labels=dict(self.labels_of(a.station) or {}))
                  for i, a in enumerate(scored.anomalies)]
        self.worker.submit(events)  # type: ignore[arg-type]

    def sync(self) -> None:
        pass

    def close(self) -> None:
        import time

        left = self.worker.finish(time.monotonic() + 5.0)
        if left:
            log.error("CloudEvents: %d batch(es) of anomaly events abandoned at exit", left)
