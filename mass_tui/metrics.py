"""Prometheus metrics for `mass run --headless --metrics-port N` (served on 127.0.0.1)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.observations = Counter("mass_observations", "Valid observations processed", registry=r)
        self.rejected = Counter("mass_rejected", "Messages quarantined", registry=r)
        self.quarantined = Counter("mass_quarantined", "Quarantine records by kind (message or field) and reason",
                                   ["kind", "reason"], registry=r)
        self.fields_rejected = Counter("mass_fields_rejected", "Single fields quarantined (the rest of the reading "
                                       "stored)", registry=r)
        self.late = Counter("mass_late", "Readings stored but not scored: older than their series' latest",
                            registry=r)
        self.conflicts = Counter("mass_conflicts", "Values quarantined as conflicting duplicates", registry=r)
        self.out_of_order = Counter("mass_out_of_order", "Readings that arrived after a newer one of their series",
                                    registry=r)
        self.anomalies = Counter("mass_anomalies", "Anomalies raised", ["detector", "severity"], registry=r)
        self.alerts = Counter("mass_alerts", "Alert notifications", ["kind", "rule"], registry=r)
        self.deliveries = Gauge("mass_alert_deliveries", "Alert deliveries by channel", ["channel", "outcome"],
                                registry=r)
        self.latency = Histogram("mass_processing_seconds", "Time to score and store one batch", registry=r,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.lag = Gauge("mass_consumer_lag_bytes", "Bytes of the transport not yet consumed", registry=r)
        self.source_up = Gauge("mass_source_up", "1 when the input is readable", ["source"], registry=r)
        self.server, self.thread = start_http_server(port, addr=host, registry=r)

    def close(self) -> None:
        self.server.shutdown()
