"""Prometheus counters as a sink: observations, rejections, anomalies, alert notices, batch time."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mass_tui.alerts.service import AlertService
    from mass_tui.engine import BatchResult
    from mass_tui.metrics import Metrics


class MetricsSink:
    name = "metrics"
    durable = False
    wants_series = False

    def __init__(self, metrics: Metrics, alerts: AlertService | None = None) -> None:
        self.metrics = metrics
        self.alerts = alerts

    def write(self, scored: BatchResult) -> None:
        m: Any = self.metrics
        m.observations.inc(len(scored.batch))
        m.rejected.inc(scored.rejected)
        m.fields_rejected.inc(scored.fields_rejected)
        m.late.inc(scored.late)
        m.conflicts.inc(scored.conflicts)
        m.out_of_order.inc(scored.out_of_order)
        for key, count in scored.reasons.items():
            kind, _, code = key.partition(":")
            m.quarantined.labels(kind, code).inc(count)
        m.latency.observe(time.perf_counter() - scored.started)  # the sinks before this one included
        for a in scored.anomalies:
            m.anomalies.labels(a.detector, a.severity).inc()
        for e in scored.alerts:
            m.alerts.labels(e.kind, e.rule).inc()
        if self.alerts is not None:
            for name, st in self.alerts.dispatcher.status.items():
                m.deliveries.labels(name, "sent").set(st.sent)
                m.deliveries.labels(name, "failed").set(st.failed)

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
