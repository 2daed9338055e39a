"""Prometheus counters as a sink: observations, rejections, anomalies, each station's newest data, batch time.

Alert notices and delivery outcomes are counted as they happen (a listener
on the alert service), since deliveries finish on the channels' own threads.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mass_tui.alerts.service import AlertService
    from mass_tui.metrics import Metrics
    from mass_tui.scored import BatchResult


class MetricsSink:
    name = "metrics"
    durable = False
    wants_series = False
    counts_empty = True  # also given batches with nothing left to store (all duplicates or rejected)

    def __init__(self, metrics: Metrics, alerts: AlertService | None = None) -> None:
        self.metrics = metrics
        self.alerts = alerts
        if alerts is not None:
            alerts.listeners.append(metrics.on_alert)

    def write(self, scored: BatchResult) -> None:
        m: Any = self.metrics
        m.observations.inc(len(scored.batch))
        m.rejected.inc(scored.rejected)
        m.fields_rejected.inc(scored.fields_rejected)
        m.late.inc(scored.late)
        m.conflicts.inc(scored.conflicts)
        m.duplicates.inc(scored.duplicates)
        m.out_of_order.inc(scored.out_of_order)
        for key, count in scored.reasons.items():
            kind, _, code = key.partition(":")
            m.quarantined.labels(kind, code).inc(count)
        m.latency.observe(time.perf_counter() - scored.started)  # the sinks before this one included
        for a in scored.anomalies:
            m.anomalies.labels(a.detector, a.severity).inc()
        if len(scored.batch):
            # A station's rows are in time order within a batch, so the last one per station is its newest.
            m.observed(dict(zip(scored.batch.station, scored.batch.ts.tolist(), strict=True)))

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
