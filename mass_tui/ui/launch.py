"""Build the engine side for the UI (a replay or the producer/consumer pipeline) and run the app."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mass_tui.alerts.service import AlertService
from mass_tui.alerts.state import AlertState as AlertStore
from mass_tui.config import Config
from mass_tui.data_lock import DataDirLock
from mass_tui.engine import Engine
from mass_tui.live_state import LiveState
from mass_tui.pipeline import Pipeline, make_source
from mass_tui.replay import UI_FLAT_OUT_BYTES, replay_file
from mass_tui.service import open_store
from mass_tui.sinks.configured import store_sinks
from mass_tui.sinks.live import LiveStateSink
from mass_tui.ui.alert_state import SharedAlertState, StateFile
from mass_tui.ui.app import Controls, MassApp
from mass_tui.ui.look import detect
from sources.base import Poll, Source

# Where the bundled recording's buoy is (NDBC station page for 44005), so the demo has a place on the map.
KNOWN_PLACES = {"ndbc-44005": (43.204, -69.128)}

# The engine shares the interpreter with the UI, and whichever thread holds the GIL runs. Python hands
# it over every `sys.setswitchinterval` (5 ms by default), but a key's handling takes several hand-overs
# (the event loop releases the GIL at each select), so a busy engine thread delays a key by tens of ms.
# Under a replay the engine takes smaller batches, and the interpreter switches every millisecond:
# bench/ui_cost.py measures key-to-screen latency with both (MASS_UI_SLICES=0 for the former way).
UI_SWITCH_INTERVAL = 0.001
UI_BATCH_BYTES = 256 << 10


def _slices(default: bool = True) -> int:
    """Bytes per flat-out replay batch under the UI; sets the interpreter's switch interval.
    MASS_UI_SLICES=1 or 0 overrides `default` (the bench compares both)."""
    wanted = os.environ.get("MASS_UI_SLICES", "1" if default else "0") == "1"
    if not wanted:
        return UI_FLAT_OUT_BYTES
    import sys

    sys.setswitchinterval(UI_SWITCH_INTERVAL)
    return UI_BATCH_BYTES


def _options(config: Config, app_options: dict[str, Any]) -> dict[str, Any]:
    opts: dict[str, Any] = {"fast_hz": config.get("ui.refresh_hz"), "chart_hz": config.get("ui.chart_hz")}
    theme = os.environ.get("MASS_UI_THEME", "auto")
    opts["look"] = detect(os.environ, theme)
    opts.update(app_options)
    return opts


def _engine(config: Config, stop: threading.Event, *, live: bool = False,
            ) -> tuple[Engine, LiveState, SharedAlertState, Callable[[], None]]:
    """The engine feeding a LiveState, the UI's ack/mute state, and the cleanup that stops and closes it all.

    `live`: data arrives in real time (no replay, no simulated time), so a source silent by the wall
    clock opens a no-data alert too. Raises `DataDirBusy` when another mass holds the data dir."""
    lock = DataDirLock(config.data_dir).acquire()
    state = LiveState()
    try:
        store = open_store(config)
        alerts = AlertService.from_config(config, live=live) if config.get("alerts.enabled") else None
        # A history sink's state (a database down) goes to the status bar through the live state.
        sinks = store_sinks(config, store, on_status=lambda name, text: state.update_status(
            sinks={**state.status.get("sinks", {}), name: text}))
    except BaseException:
        lock.release()
        raise
    _seed_places(state, config)
    engine = Engine(config, store, alerts, sinks=[LiveStateSink(state), *sinks])
    # Acks and mutes go to the alert store the headless service and `mass silence` share, so that
    # `a` and `m` stop the notifications too; the UI's own preferences stay in its state file.
    shared = alerts.state if alerts is not None and alerts.state is not None else AlertStore.in_dir(config.db_dir)
    ui_state = SharedAlertState(shared, StateFile(config.data_dir / "ui" / "state.json"))

    def cleanup() -> None:
        stop.set()
        try:
            engine.sinks.close()
            store.close()
            if alerts is not None:
                alerts.close(timeout=5.0)
            else:
                shared.close()
        finally:
            lock.release()

    return engine, state, ui_state, cleanup


def _seed_places(state: LiveState, config: Config) -> None:
    """Positions known before any message: `[[stations]]` of the configuration, the demo buoy."""
    places: dict[str, tuple[str, float | None, float | None, dict[str, str] | None]] = {}
    for name, (lat, lon) in KNOWN_PLACES.items():
        places[name] = ("", lat, lon, None)
    for entry in config.get("stations"):
        if isinstance(entry, dict) and entry.get("name") and entry.get("lat") is not None:
            try:
                places[str(entry["name"])] = ("", float(entry["lat"]), float(entry["lon"]), None)
            except (KeyError, TypeError, ValueError):
                continue
    state.known_places.update(places)


def replay_app(config: Config, path: Path, *, speed: float | None, station: str | None,
               fast_until: float | None = None, format: str = "auto",
               **app_options) -> tuple[MassApp, Callable[[], None]]:
    """A UI replaying a recording; returns (app, cleanup)."""
    stop = threading.Event()
    engine, state, ui_state, cleanup = _engine(config, stop)
    store = engine.store
    controls = Controls(paused=threading.Event(), stop=stop)
    batch_bytes = _slices()

    def run() -> None:
        if fast_until is not None:
            # The lead-in at full speed, then the recorded pace: charts start with history.
            replay_file(engine, path, speed=None, station=station, stop=controls.stop, paused=controls.paused,
                        until=fast_until, chunk_bytes=batch_bytes, format=format, sort_bytes=UI_FLAT_OUT_BYTES)
            replay_file(engine, path, speed=speed, station=station, stop=controls.stop, paused=controls.paused,
                        since=fast_until, format=format, sort_bytes=UI_FLAT_OUT_BYTES)
        else:
            # The UI starts showing data at once: it sorts a file whole only up to one chunk (1 MB, an
            # NDBC realtime file fits), bigger files chunk by chunk; headless replay sorts up to 64 MiB.
            replay_file(engine, path, speed=speed, station=station, stop=controls.stop, paused=controls.paused,
                        chunk_bytes=batch_bytes, format=format, sort_bytes=UI_FLAT_OUT_BYTES)
        store.flush()

    pace = "max speed" if speed is None else f"{speed:g}× replay"
    app = MassApp(engine, state, controls, run, source_label=f"replay {path.name}", pace=pace,
                  alert_state=ui_state, **_options(config, app_options))
    return app, cleanup


class PacedSource:
    """A source whose waits the UI can see and cut short.

    The producer loop waits `next_delay()` between polls; this wrapper asks it
    back every half second instead and polls the real source only when its
    time has come, or at once after `retry_now()` (the `r` key)."""

    TICK = 0.5

    def __init__(self, source: Source) -> None:
        self.source = source
        self.name = source.name
        self.state = source.state
        self.labels = getattr(source, "labels", None)
        self.due = 0.0  # wall time of the next real poll
        self._now = threading.Event()

    def poll(self) -> Poll:
        if time.time() < self.due and not self._now.is_set():
            return Poll()
        self._now.clear()
        try:
            return self.source.poll()
        finally:
            self.due = time.time() + self.source.next_delay()

    def next_delay(self) -> float:
        return max(0.0, min(self.TICK, self.due - time.time()))

    def retry_now(self) -> bool:
        """Poll at the next tick; False when the source is up (nothing to retry)."""
        if self.state.up is not False and not getattr(self.state, "stopped", False):
            return False
        self._now.set()
        return True


def live_app(config: Config, *, source: str | None, transport: str, max_speed: bool = False,
             **app_options) -> tuple[MassApp, Callable[[], None]]:
    """A UI on the producer/consumer pipeline; returns (app, cleanup)."""
    stop = threading.Event()
    engine, state, ui_state, cleanup = _engine(config, stop, live=not max_speed and source is not None)
    # Not bounded by default here: with the producer thread as a third taker of the GIL, a 1 ms switch
    # interval made keys slower in bench/ui_cost.py (simulate --max), where it made a replay's faster.
    _slices(default=False)
    pipeline = Pipeline(config, engine, engine.store, transport)
    pipeline.stop = stop
    paced: PacedSource | None = None
    if source is not None:
        real = make_source(config, source, max_speed=max_speed)
        paced = PacedSource(real) if not max_speed else None
    controls = Controls(paused=pipeline.paused, stop=pipeline.stop, switch_transport=pipeline.switch_transport,
                        transport=lambda: pipeline.transport,
                        retry=paced.retry_now if paced is not None else None,
                        next_poll=(lambda: paced.due if paced.due else None) if paced is not None else None)

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
            producer = paced if paced is not None else real
            pipeline.start_producer(producer, max_speed=max_speed)  # type: ignore[arg-type]
        pipeline.run(on_batch=lambda _result: publish(), on_idle=publish)

    label = source or f"consumer of the {transport} transport"
    app = MassApp(engine, state, controls, run, source_label=label, pace="live", alert_state=ui_state,
                  **_options(config, app_options))
    return app, cleanup
