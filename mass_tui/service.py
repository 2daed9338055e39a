"""`mass run --headless`: the consumer as a service.

It follows the transport, scores and stores each batch, fsyncs the store,
and only then commits its position: killed at any moment it loses nothing
and re-reads at most one batch. On start it warms the detectors from the
stored stream. SIGTERM and SIGINT stop it cleanly: the batch in hand is
stored, the position committed, pending alert deliveries get a few seconds.
SIGHUP reloads the alert rules, silences and channels from the
configuration (`reload_config`), keeping detector state and open episodes;
a bad configuration on reload is logged and the running one kept.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mass_tui.config import Config
from mass_tui.engine import BatchResult, Engine
from mass_tui.logs import EVENTS
from mass_tui.sinks.configured import store_sinks
from mass_tui.store import JsonlStore, open_store  # noqa: F401 - open_store: callers import it from here
from sources.schema import iso_utc
from sources.text import Redactor

if TYPE_CHECKING:  # the transports (HTTP sources, the simulator) are imported by the runs that use them
    from mass_tui.pipeline import Pipeline

log = logging.getLogger(__name__)

def transport_path(config: Config) -> Path:
    from mass_tui.pipeline import transport_file

    return transport_file(config)


def redacted_summary(config: Config, summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with every configured secret replaced (a `last_error` may quote a URL with a key)."""
    return Redactor(config.secret_values()).value(summary)  # type: ignore[return-value]


def format_anomaly(a: Any) -> str:
    # Reasons and station names come from data: printed as plain text, never markup.
    return f"ANOMALY {iso_utc(a.ts)} {a.severity.upper():8s} {a.station} {a.variable} {a.detector}: {a.reason}"


def log_events(result: BatchResult, quiet: bool = False) -> None:
    """One line per anomaly (alert notices are logged by the alert service as they are made)."""
    if not quiet:
        for a in result.anomalies:
            EVENTS.info(format_anomaly(a))


def run_consumer(
    config: Config,
    *,
    transport: str = "file",
    source: str | None = None,
    max_seconds: float | None = None,
    max_messages: int | None = None,
    max_speed: bool = False,
    metrics_port: int | None = None,
    quiet: bool = False,
    idle_wait: float = 0.2,
    stop: threading.Event | None = None,
    on_ready: Callable[[Pipeline], None] | None = None,
    reload_config: Callable[[], Config] | None = None,
) -> dict[str, Any]:
    """Run the consumer (and the producer when `source` is given) until stopped; returns the summary."""
    from mass_tui.pipeline import Pipeline, make_source  # before anything is opened that would need closing

    handlers: dict[int, Any] = {}
    metrics = None
    ready = threading.Event()
    if metrics_port:
        from mass_tui.metrics import Metrics

        metrics = Metrics(metrics_port, ready=ready.is_set)
    # Live unless the simulator runs on simulated time: then no-data may also count wall time.
    alerts = None
    if config.get("alerts.enabled"):  # the alert stack is imported only when alerts are on
        from mass_tui.alerts.service import AlertService

        alerts = AlertService.from_config(config, live=not max_speed)
    store = open_store(config)
    engine = Engine(config, store, alerts, sinks=store_sinks(config, store, metrics=metrics))
    pipeline = Pipeline(config, engine, store, transport)
    if stop is not None:
        pipeline.stop = stop
    reload_requested = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, lambda *_: pipeline.stop.set())
        handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: reload_requested.set())

    def reload_if_asked() -> None:
        if not reload_requested.is_set():
            return
        reload_requested.clear()
        if reload_config is None or alerts is None:
            log.warning("SIGHUP: nothing to reload (alerts are off)")
            return
        from mass_tui.config import ConfigError

        try:
            alerts.reload(reload_config())
        except ConfigError as exc:
            log.error("SIGHUP: configuration not reloaded, the running one is kept: %s", exc)
    started = time.monotonic()

    if metrics is not None:
        from mass_tui.sinks.metrics import MetricsSink

        engine.sinks.add(MetricsSink(metrics, alerts))

    def on_idle() -> None:
        reload_if_asked()
        if pipeline.store_error:  # the store refuses writes: not ready until it takes them again
            ready.clear()
        elif pipeline.consumer is not None and not pipeline.transport_error:
            ready.set()

    def on_batch(result: BatchResult) -> None:
        on_idle()
        if metrics is not None:
            metrics.lag.set(pipeline.consumer.lag_bytes())
        log_events(result, quiet)

    def on_poll(src: Any, _sent: int) -> None:  # the producer's thread, after every poll
        if metrics is not None:
            metrics.source_up.labels(src.name).set(1 if src.state.up else 0)

    try:
        warmed = engine.warm()
        log.info("consumer started on the %s transport (warmed with %d stored observations)", transport, warmed)
        if source is not None:
            src = make_source(config, source, max_speed=max_speed)
            if metrics is not None:
                metrics.source_up.labels(src.name).set(0)  # present from the start: down until a poll works
            pipeline.start_producer(src, max_messages=max_messages, max_speed=max_speed, on_poll=on_poll)
        if on_ready is not None:
            on_ready(pipeline)
        pipeline.run(max_seconds=max_seconds, on_batch=on_batch, on_idle=on_idle, idle_wait=idle_wait,
                     until_idle=source is not None and (max_speed or max_messages is not None))
    finally:
        ready.clear()
        engine.sinks.close()
        store.close()
        if alerts is not None:
            alerts.close(timeout=5.0)
        if metrics is not None:
            metrics.close()
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
    summary = engine.summary(warmed=warmed, transport=pipeline.transport, produced=pipeline.produced,
                             seconds=round(time.monotonic() - started, 3), ended=pipeline.ended or "stop")
    summary.update({s.name: s.summary() for s in engine.sinks if hasattr(s, "summary")})
    if pipeline.transport_error:
        summary["transport_error"] = pipeline.transport_error
    if pipeline.store_error:
        summary["store_error"] = pipeline.store_error
    sink = pipeline.producer_sink
    if sink is not None and hasattr(sink, "summary"):
        summary["producer"] = sink.summary()
    if pipeline.source is not None:
        summary["source"] = pipeline.source.state.summary()
    if alerts is not None:
        summary.update(alerts.summary())
    return redacted_summary(config, summary)
