"""Build the engine side for the UI (a replay or the producer/consumer pipeline) and run the app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from mass_tui.alerts.service import AlertService
from mass_tui.config import Config
from mass_tui.engine import Engine
from mass_tui.live_state import LiveState
from mass_tui.pipeline import Pipeline, make_source
from mass_tui.replay import UI_FLAT_OUT_BYTES, replay_file
from mass_tui.service import open_store
from mass_tui.sinks.live import LiveStateSink
from mass_tui.ui.app import Controls, MassApp


def _rates(config: Config) -> dict[str, float]:
    return {"fast_hz": config.get("ui.refresh_hz"), "chart_hz": config.get("ui.chart_hz")}


def _engine(config: Config, stop: threading.Event) -> tuple[Engine, LiveState, Callable[[], None]]:
    """The engine feeding a LiveState, and the cleanup that stops and closes it all."""
    store = open_store(config)
    alerts = AlertService.from_config(config) if config.get("alerts.enabled") else None
    state = LiveState()
    engine = Engine(config, store, alerts, sinks=[LiveStateSink(state)])

    def cleanup() -> None:
        stop.set()
        store.close()
        if alerts is not None:
            alerts.close(timeout=5.0)

    return engine, state, cleanup


def replay_app(config: Config, path: Path, *, speed: float | None, station: str | None,
               fast_until: float | None = None, format: str = "auto",
               **app_options) -> tuple[MassApp, Callable[[], None]]:
    """A UI replaying a recording; returns (app, cleanup)."""
    stop = threading.Event()
    engine, state, cleanup = _engine(config, stop)
    store = engine.store
    controls = Controls(paused=threading.Event(), stop=stop)

    def run() -> None:
        if fast_until is not None:
            # The lead-in at full speed, then the recorded pace: charts start with history.
            replay_file(engine, path, speed=None, station=station, stop=controls.stop, paused=controls.paused,
                        until=fast_until, chunk_bytes=UI_FLAT_OUT_BYTES, format=format, sort_bytes=UI_FLAT_OUT_BYTES)
            replay_file(engine, path, speed=speed, station=station, stop=controls.stop, paused=controls.paused,
                        since=fast_until, format=format, sort_bytes=UI_FLAT_OUT_BYTES)
        else:
            # The UI starts showing data at once: it sorts a file whole only up to one chunk (1 MB, an
            # NDBC realtime file fits), bigger files chunk by chunk; headless replay sorts up to 64 MiB.
            replay_file(engine, path, speed=speed, station=station, stop=controls.stop, paused=controls.paused,
                        chunk_bytes=UI_FLAT_OUT_BYTES, format=format, sort_bytes=UI_FLAT_OUT_BYTES)
        store.flush()

    pace = "max speed" if speed is None else f"{speed:g}x"
    app = MassApp(engine, state, controls, run, source_label=f"replay {path.name} ({pace})",
                  **{**_rates(config), **app_options})
    return app, cleanup


def live_app(config: Config, *, source: str | None, transport: str, max_speed: bool = False,
             **app_options) -> tuple[MassApp, Callable[[], None]]:
    """A UI on the producer/consumer pipeline; returns (app, cleanup)."""
    stop = threading.Event()
    engine, state, cleanup = _engine(config, stop)
    pipeline = Pipeline(config, engine, engine.store, transport)
    pipeline.stop = stop
    controls = Controls(paused=pipeline.paused, stop=pipeline.stop, switch_transport=pipeline.switch_transport,
                        transport=lambda: pipeline.transport)

    def publish() -> None:
        """The source's state, the transport's and the consumer lag, for the status bar."""
        state.update_status(transport_error=pipeline.transport_status())
        while pipeline.notices:
            state.add_notice(pipeline.notices.pop(0))
        if pipeline.source is not None:
            state.update_status(source_state=pipeline.source.state.to_dict())
        consumer = pipeline.consumer
        if consumer is not None:
            lag = consumer.lag_bytes()
            shown = f"{lag / 1e6:.1f} MB" if pipeline.transport == "file" else f"{lag} msgs"
            state.update_status(lag=shown)

    def run() -> None:
        engine.warm()
        if source is not None:
            pipeline.start_producer(make_source(config, source, max_speed=max_speed), max_speed=max_speed)
        pipeline.run(on_batch=lambda _result: publish(), on_idle=publish)

    app = MassApp(engine, state, controls, run, source_label=source or "consumer", **{**_rates(config), **app_options})
    return app, cleanup
