"""`mass run --headless`: the consumer as a service.

It follows the transport, scores and stores each batch, fsyncs the store,
and only then commits its position: killed at any moment it loses nothing
and re-reads at most one batch. On start it warms the detectors from the
stored stream. SIGTERM and SIGINT stop it cleanly: the batch in hand is
stored, the position committed, pending alert deliveries get a few seconds.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mass_tui.alerts.service import AlertService
from mass_tui.config import Config
from mass_tui.engine import BatchResult, Engine
from mass_tui.logs import EVENTS
from mass_tui.store import JsonlStore
from sources.file_transport import FileTail
from sources.schema import iso_utc

log = logging.getLogger(__name__)

TRANSPORT_FILE = Path("transport") / "observations.jsonl"


def transport_path(config: Config) -> Path:
    return config.data_dir / TRANSPORT_FILE


def open_store(config: Config) -> JsonlStore:
    return JsonlStore(
        config.db_dir,
        max_bytes=int(config.get("store.max_mb") * 1024 * 1024),
        retention_days=config.get("store.retention_days"),
    )


def format_anomaly(a: Any) -> str:
    # Reasons and station names come from data: printed as plain text, never markup.
    return f"ANOMALY {iso_utc(a.ts)} {a.severity.upper():8s} {a.station} {a.variable} {a.detector}: {a.reason}"


_ALERT_LABEL = {"alert": "ALERT", "repeat": "ALERT (repeat)", "escalated": "ALERT (escalated)", "resolved": "RESOLVED"}


def format_alert(e: Any) -> str:
    return f"{_ALERT_LABEL[e.kind]} {iso_utc(e.ts)} {e.rule} at {e.station}: {e.anomaly.reason}"


def log_events(result: BatchResult, quiet: bool = False) -> None:
    if not quiet:
        for a in result.anomalies:
            EVENTS.info(format_anomaly(a))
    for e in result.alerts:
        EVENTS.info(format_alert(e))


def run_consumer(
    config: Config,
    *,
    max_seconds: float | None = None,
    metrics_port: int | None = None,
    quiet: bool = False,
    idle_wait: float = 0.2,
    stop: threading.Event | None = None,
    on_ready: Callable[[Engine], None] | None = None,
) -> dict[str, Any]:
    stop = stop or threading.Event()
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, lambda *_: stop.set())
    metrics = None
    if metrics_port:
        from mass_tui.metrics import Metrics

        metrics = Metrics(metrics_port)
    alerts = AlertService.from_config(config) if config.get("alerts.enabled") else None
    store = open_store(config)
    tail = FileTail(transport_path(config))
    engine = Engine(config, store, alerts)
    started = time.monotonic()
    try:
        warmed = engine.warm()
        log.info("consumer started on %s (warmed with %d stored observations)", tail.path, warmed)
        if on_ready is not None:
            on_ready(engine)
        while not stop.is_set():
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                break
            lines = tail.read(4096)
            if metrics is not None:
                metrics.source_up.labels("file").set(1 if tail.path.exists() else 0)
                metrics.lag.set(tail.lag_bytes())
            if not lines:
                stop.wait(idle_wait)
                continue
            t0 = time.perf_counter()
            result = engine.ingest(lines, default_source="file")
            store.sync()
            tail.commit()  # only now: what was read is stored
            if metrics is not None:
                _count(metrics, result, time.perf_counter() - t0, alerts)
            log_events(result, quiet)
    finally:
        store.flush()
        store.close()
        tail.close()
        if alerts is not None:
            alerts.close(timeout=5.0)
        if metrics is not None:
            metrics.close()
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
    summary = engine.summary(warmed=warmed, transport=str(tail.path), seconds=round(time.monotonic() - started, 3))
    if alerts is not None:
        summary["alerts"] = alerts.sent_events
        summary["deliveries"] = {name: st.to_dict() for name, st in alerts.dispatcher.status.items()}
    return summary


def _count(metrics: Any, result: BatchResult, seconds: float, alerts: AlertService | None) -> None:
    metrics.observations.inc(len(result.batch))
    metrics.rejected.inc(result.rejected)
    metrics.latency.observe(seconds)
    for a in result.anomalies:
        metrics.anomalies.labels(a.detector, a.severity).inc()
    for e in result.alerts:
        metrics.alerts.labels(e.kind, e.rule).inc()
    if alerts is not None:
        for name, st in alerts.dispatcher.status.items():
            metrics.deliveries.labels(name, "sent").set(st.sent)
            metrics.deliveries.labels(name, "failed").set(st.failed)
