"""Build the UI on an engine (a replay or the producer/consumer pipeline) run beside it, and its cleanup.

The engine runs in a worker process by default (`mass_tui.engine_process`):
the UI's keys then never wait behind scoring. `MASS_UI_ENGINE=thread` runs
the same engine side in a thread of the UI's process instead (for a platform
where spawning a process fails, the tests, and `bench/ui_cost.py`, which
compares both); with it, `MASS_UI_SLICES=1` bounds the engine's time slices
(a 1 ms interpreter switch interval, 256 KB replay batches; the thread
default for replays) and `MASS_UI_SLICES=0` does not (the thread default
for live sources, where they made keys slower).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mass_tui.config import Config, ConfigError
from mass_tui.data_lock import DataDirLock
from mass_tui.engine_process import ENGINE_NICE, HOSTS, EngineLink, EngineSpec, LiveJob, ReplayJob
from mass_tui.live_state import LiveState
from mass_tui.ui.alert_state import SharedAlertState, StateFile
from mass_tui.ui.app import Controls, MassApp
from mass_tui.ui.look import detect

# Where the bundled recording's buoy is (NDBC station page for 44005), so the demo has a place on the map.
KNOWN_PLACES = {"ndbc-44005": (43.204, -69.128)}
DEFAULT_HOST = "process"


def _options(config: Config, app_options: dict[str, Any]) -> dict[str, Any]:
    opts: dict[str, Any] = {"fast_hz": config.get("ui.refresh_hz"), "chart_hz": config.get("ui.chart_hz")}
    theme = os.environ.get("MASS_UI_THEME", "auto")
    opts["look"] = detect(os.environ, theme)
    opts.update(app_options)
    return opts


def _host(host: str | None, slices_default: bool) -> tuple[str, bool]:
    """(where the engine runs, whether its time slices are bounded): the argument, else the environment."""
    host = host or os.environ.get("MASS_UI_ENGINE") or DEFAULT_HOST
    if host not in HOSTS:
        raise ConfigError(f"MASS_UI_ENGINE = {host!r}: expected one of {', '.join(HOSTS)}")
    slices = os.environ.get("MASS_UI_SLICES", "1" if slices_default else "0") == "1"
    return host, host == "thread" and slices


def _nice() -> int:
    raw = os.environ.get("MASS_ENGINE_NICE", str(ENGINE_NICE))
    try:
        nice = int(raw)
    except ValueError:
        raise ConfigError(f"MASS_ENGINE_NICE = {raw!r}: expected a whole number from 0 to 19") from None
    if not 0 <= nice <= 19:
        raise ConfigError(f"MASS_ENGINE_NICE = {raw!r}: expected a whole number from 0 to 19")
    return nice


def _link(config: Config, host: str, spec: EngineSpec,
          ) -> tuple[EngineLink, LiveState, SharedAlertState, Callable[[], None]]:
    """The engine started beside the UI feeding a new LiveState, the UI's ack/mute state, and the
    cleanup that stops the engine (it flushes and fsyncs its store) and closes the rest.

    Raises `DataDirBusy` when another mass holds the data dir, `ConfigError` for a bad rule."""
    from mass_tui.alerts.state import AlertState as AlertStore

    lock = DataDirLock(config.made_dir("data.dir")).acquire()
    try:
        state = LiveState()
        _seed_places(state, config)
        spec.capacity = state.capacity
        spec.nice = _nice()
        link = EngineLink(spec, state, host=host, lock=lock)
        # Acks and mutes go to the alert store (SQLite, WAL) that the engine's alert service, the headless
        # service and `mass silence` share, so `a` and `m` stop the notifications too; each process opens
        # it for itself. The UI's own preferences stay in its state file.
        shared = AlertStore.in_dir(config.db_dir)
    except BaseException:
        lock.release()
        raise
    ui_state = SharedAlertState(shared, StateFile(config.data_dir / "ui" / "state.json"))
    link.start()  # now: the engine starts up while the UI does

    def cleanup() -> None:
        try:
            link.close()  # releases the lock once the engine is gone
        finally:
            shared.close()

    return link, state, ui_state, cleanup


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
               fast_until: float | None = None, format: str = "auto", host: str | None = None,
               until: float | None = None, **app_options) -> tuple[MassApp, Callable[[], None]]:
    """A UI replaying a recording (up to data time `until` when given); returns (app, cleanup).
    `host`: "process" or "thread" (see above)."""
    host, slices = _host(host, slices_default=True)
    job = ReplayJob(Path(path), speed, station, fast_until, format, until)
    link, state, ui_state, cleanup = _link(config, host, EngineSpec(config, replay=job, slices=slices))
    controls = Controls(paused=link.paused, stop=link.stop)
    pace = "max speed" if speed is None else f"{speed:g}× replay"
    app = MassApp(link, state, controls, link.run, source_label=f"replay {Path(path).name}", pace=pace,
                  alert_state=ui_state, **_options(config, app_options))
    return app, cleanup


def live_app(config: Config, *, source: str | None, transport: str, max_speed: bool = False,
             host: str | None = None, **app_options) -> tuple[MassApp, Callable[[], None]]:
    """A UI on the producer/consumer pipeline; returns (app, cleanup)."""
    from mass_tui.pipeline import TRANSPORTS, make_source

    if transport not in TRANSPORTS:
        raise ConfigError(f"transport = {transport!r}: expected file or kafka")
    if source is not None:  # a bad source name or a missing API key is said now, before the screen
        client = getattr(make_source(config, source, max_speed=max_speed), "client", None)
        if client is not None:
            client.close()  # the engine makes its own
    host, slices = _host(host, slices_default=False)
    link, state, ui_state, cleanup = _link(config, host, EngineSpec(config, live=LiveJob(source, transport, max_speed),
                                                                  slices=slices))
    paced = source is not None and not max_speed
    controls = Controls(paused=link.paused, stop=link.stop, switch_transport=link.switch_transport,
                        transport=link.transport, retry=link.retry if paced else None,
                        next_poll=link.next_poll if paced else None)
    label = source or f"consumer of the {transport} transport"
    pace = "live"
    if source is not None and source.startswith("simulator"):  # simulated time: say at what pace
        pace = "simulated, max speed" if max_speed else "simulated, real time"
    app = MassApp(link, state, controls, link.run, source_label=label, pace=pace, alert_state=ui_state,
                  **_options(config, app_options))
    return app, cleanup
