"""Prometheus metrics for `mass run --headless --metrics-port N`, served on 127.0.0.1 with the health checks.

    /metrics     the exposition format (prometheus-client)
    /-/healthy   200 while the process serves (Prometheus' own convention)
    /-/ready     200 once the consumer is warmed and reading its transport, 503 before and while stopping

Names follow Prometheus' conventions: counters end in `_total`,
`mass_build_info` is an info metric (value 1, the build in its labels), and
`mass_last_observation_timestamp_seconds{station}` is the data time of each
station's newest observation, so a rule such as
`time() - mass_last_observation_timestamp_seconds > 900` pages when mass
itself goes blind.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, make_wsgi_app

# The per-station gauge keeps at most this many stations (a flood of new names must not grow it forever).
MAX_STATION_SERIES = 10_000


def build_version() -> str:
    try:
        from importlib.metadata import version

        return version("mass-monitor")
    except Exception:  # noqa: BLE001 - running from a source tree that was never installed
        return "unknown"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class Metrics:
    def __init__(self, port: int, host: str = "127.0.0.1", ready: Callable[[], bool] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ready: Callable[[], bool] = ready or (lambda: True)
        self.observations = Counter("mass_observations", "Valid observations processed", registry=r)
        self.rejected = Counter("mass_rejected", "Messages quarantined", registry=r)
        self.quarantined = Counter("mass_quarantined", "Quarantine records by kind (message or field) and reason",
                                   ["kind", "reason"], registry=r)
        self.fields_rejected = Counter("mass_fields_rejected", "Single fields quarantined (the rest of the reading "
                                       "stored)", registry=r)
        self.late = Counter("mass_late", "Readings stored but not scored: older than their series' latest",
                            registry=r)
        self.conflicts = Counter("mass_conflicts", "Values quarantined as conflicting duplicates", registry=r)
        self.duplicates = Counter("mass_duplicates", "Readings dropped: already stored with the same values "
                                  "(a re-poll, a re-read, a file replayed again)", registry=r)
        self.out_of_order = Counter("mass_out_of_order", "Readings that arrived after a newer one of their series",
                                    registry=r)
        self.anomalies = Counter("mass_anomalies", "Anomalies raised", ["detector", "severity"], registry=r)
        self.alerts = Counter("mass_alerts", "Alert notices that went out", ["kind", "rule"], registry=r)
        self.alerts_muted = Counter("mass_alerts_muted", "Alert notices held back by a silence, a mute time or an "
                                    "inhibition", ["kind", "rule"], registry=r)
        self.deliveries = Counter("mass_alert_deliveries", "Alert deliveries by channel and outcome (sent, failed, "
                                  "dropped, abandoned)", ["channel", "outcome"], registry=r)
        self.latency = Histogram("mass_processing_seconds", "Time to score and store one batch", registry=r,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.lag = Gauge("mass_consumer_lag_bytes", "Bytes of the transport not yet consumed", registry=r)
        self.source_up = Gauge("mass_source_up", "1 when the input is readable", ["source"], registry=r)
        self.last_observation = Gauge("mass_last_observation_timestamp_seconds",
                                      "Data time of the newest observation of each station", ["station"], registry=r)
        self.build = Info("mass_build", "The running build of mass", registry=r)
        self.build.info({"version": build_version(), "python": platform.python_version()})
        self._stations: set[str] = set()
        self._lock = threading.Lock()
        metrics_app = make_wsgi_app(r)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/-/healthy":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"mass is healthy.\n"]
            if path == "/-/ready":
                ok = bool(self.ready())
                start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"mass is ready.\n" if ok else b"mass is not ready.\n"]
            if path in ("/metrics", "/"):
                return metrics_app(environ, start_response)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics, /-/healthy or /-/ready\n"]

        self.server = make_server(host, port, app, _Server, handler_class=_QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def observed(self, latest: dict[str, float]) -> None:
        """Each station's newest observation time (data time, epoch seconds)."""
        with self._lock:
            for station, ts in latest.items():
                if station not in self._stations:
                    if len(self._stations) >= MAX_STATION_SERIES:
                        continue
                    self._stations.add(station)
                self.last_observation.labels(station).set(ts)

    def on_alert(self, what: str, item: Any) -> None:
        """A listener of the alert service: notices and delivery outcomes, counted as they happen."""
        if what == "notice":
            (self.alerts_muted if item.muted else self.alerts).labels(item.kind, item.rule).inc()
        elif what == "delivery":
            channel, outcome = item
            self.deliveries.labels(channel, outcome).inc()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
