"""The terminal UI: what is wrong now, the events behind it, the charts of one station, thresholds on keys.

The engine runs beside the UI (in a worker process: `mass_tui.engine_process`)
and its updates land in LiveState; the UI takes a snapshot on a timer
(`ui.refresh_hz`) and draws everything from it, the charts of the visible
panes at `ui.chart_hz`. A snapshot is one moment: pausing keeps it, and
every key (station, units, filter, Enter) redraws every part from it, so
two moments never show at once. Only the cells that change are sent to the
terminal (`lines.LineView`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input

from mass_tui.engine_process import EngineFailure, EngineLink
from mass_tui.live_state import COL, LiveState, Snapshot
from mass_tui.ui import partial_updates, screens
from mass_tui.ui.alert_state import AlertState, StateFile
from mass_tui.ui.chart_render import ChartSpec, build, legend
from mass_tui.ui.charts import Window, episode_window, sparkline
from mass_tui.ui.commands import MassCommands
from mass_tui.ui.episodes import RANK, Episode, label_of, unit_of
from mass_tui.ui.event_filter import SORTS, EventFilter, RowState, chip, parse_filter, select
from mass_tui.ui.keys import BINDINGS, KEYS, footer_keys, key_name
from mass_tui.ui.look import Look
from mass_tui.ui.rows import (
    SEVERITY_WORD,
    duration_words,
    episode_words,
    event_header,
    event_row,
    local_time,
    now_strip,
    score_band,
)
from mass_tui.ui.text import fit, inert
from mass_tui.ui.units import convert_reason, fmt, to_units
from mass_tui.ui.what_if import MAX_RARITY, alarm_count, rarity_words, step_rarity, threshold_score
from mass_tui.ui.widgets import Bar, EventList, KeyBar, StationList, VariablePane
from sources.schema import iso_utc
from sources.variables import REGISTRY

_SEVERITY_OF_RANK = {rank: sev for sev, rank in RANK.items()}

# Storm variables first: they are what a user watches.
_FIRST = ("pressure_msl_hpa", "pressure_hpa", "gust_mps", "wind_mps", "temp_c", "humidity_pct")
_ORDER: dict[str, int] = {}
for _name in (*_FIRST, *REGISTRY):
    _ORDER.setdefault(_name, len(_ORDER))


def _display_order(variable: str) -> tuple[int, str]:
    return _ORDER.get(variable, len(_ORDER)), variable


@dataclass
class Controls:
    """What the UI asks of the engine: flags and calls that `EngineLink` sends to it as controls."""

    paused: threading.Event
    stop: threading.Event
    switch_transport: Callable[[], str] | None = None
    transport: Callable[[], str] | None = None
    retry: Callable[[], bool] | None = None  # poll a down source now; False when there is nothing to retry
    next_poll: Callable[[], float | None] | None = None  # wall time of the source's next poll


class MassApp(App):
    TITLE = "mass"
    SUB_TITLE = "Meteorological Analytics Streaming System"
    COMMANDS = App.COMMANDS | {MassCommands}
    CSS = """
    #header { background: $panel; }
    #now { height: 1; }
    #problem { color: $error; display: none; }
    #problem.visible { display: block; }
    #body { height: 1fr; }
    #main { width: 1fr; }
    /* No scrollbar: its thumb's partial blocks showed as stray "▇▇" beside the panes wherever its
       colours did not (NO_COLOR, 16 colours, tmux); the last whole pane says what is below instead. */
    #panes { height: 1fr; scrollbar-size-vertical: 0; }
    #filter { display: none; height: 3; }
    #filter.visible { display: block; }
    #status { background: $panel; }
    #empty { padding: 1 2; height: auto; }
    ToastRack { dock: top; align: right top; margin: 2 1 0 0; }
    MassApp.narrow #stations, MassApp.single #stations { display: none; }
    MassApp.short #events { height: 8; }
    MassApp.block EventList, MassApp.block StationList, MassApp.block VariablePane {
        border: solid $primary-darken-2;
    }
    MassApp.ascii EventList, MassApp.ascii StationList, MassApp.ascii VariablePane, MassApp.ascii .chart,
    MassApp.ascii #map {
        border: ascii $primary-darken-2;
    }
    MassApp.ascii HelpScreen > VerticalScroll, MassApp.ascii MuteScreen > Vertical { border: ascii $primary; }
    MassApp VariablePane.dense { border: none; }
    /* One line per variable leaves room: the events list takes it. */
    MassApp.dense-view #panes { height: auto; max-height: 60%; }
    MassApp.dense-view #events { height: 1fr; min-height: 8; }
    MassApp.tall #events { height: 14; }
    """
    BINDINGS = BINDINGS

    def __init__(self, engine: EngineLink, state: LiveState, controls: Controls, run: Callable[[], None], *,
                 source_label: str, fast_hz: float = 4.0, chart_hz: float = 1.0, show_rate: bool = True,
                 look: Look | None = None, alert_state: AlertState | None = None, pace: str = "live") -> None:
        super().__init__()
        partial_updates.install()  # a line's changed cells go to the terminal, not all before them
        self.engine = engine
        self.state = state
        self.controls = controls
        self._run = run
        self.source_label = source_label
        self.pace = pace
        self.fast_hz, self.chart_hz = fast_hz, chart_hz
        self.show_rate = show_rate
        self.look = look or Look(color=not self.no_color)
        self.alert_state: AlertState = alert_state if alert_state is not None else StateFile(None)
        prefs = getattr(self.alert_state, "prefs", {})
        self.station: str | None = None
        self.imperial = bool(prefs.get("imperial", False))
        self.sort_mode = prefs.get("sort", "worst") if prefs.get("sort") in SORTS else "worst"
        self.window = Window()
        self.focus_ts: float | None = None
        self.focus_variable: str | None = None
        self.filter_text = ""
        self.min_severity: str | None = None
        self.event_filter = EventFilter()
        self.dense: bool | None = None  # None: dense when the screen is short or the station has many variables
        self.expanded: set[str] = set()
        self.z = engine.params.z  # the charts' band: mean ± z·σ
        self.h = engine.params.h
        # What opens an episode (a reading rarer than 1 in this many of its series) and what makes it critical
        # (None: the configured default, alarm_rarity squared): Z/z and C/c move them (mass_tui.ui.what_if).
        self.alarm_rarity: float = engine.params.alarm_rarity
        self.critical_rarity: float | None = None
        self.baseline_count: int | None = None  # set once thresholds were touched: the status shows a what-if
        self.snapshot: Snapshot | None = None
        self.latencies: list[tuple[float, int]] = []  # (ingest-to-screen seconds, messages)
        self.key_shown: list[float] = []  # monotonic times a threshold key's effect reached the terminal
        self._quitting = False
        self._alerts_seen = 0
        self._chart_due = 0.0
        self._charted_version = -1
        self._rebuilding = False
        self._pane_redraw_due = False
        self._station_order: list[str] = []
        self._station_rows: dict[str, tuple[tuple, Text]] = {}  # station -> (what its row showed, the row)
        self._trouble_key: object = None
        self._trouble_cache: list[str] = []
        self._worst_of: dict[str, int] = {}
        self._row_states: dict[str, RowState] = {}
        self._shown_events: list[Episode] = []
        self._event_rows: dict[str, tuple[tuple, Text]] = {}  # episode id -> (what its row showed, the row)
        self._what_if: tuple[int, int] | None = None
        self._what_if_key: object = None
        self._alert_version = -1
        self.engine_error: str | None = None
        self.engine_done = False

    # --- layout ---------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Bar(id="header")
        yield Bar(id="now")
        yield Bar(id="problem")
        with Horizontal(id="body"):
            yield StationList(id="stations")
            with Vertical(id="main"):
                yield VerticalScroll(id="panes")
                yield Input(placeholder="filter: words, sev:warning, station:NAME, var:gust, is:ongoing "
                                        "(Enter keeps, Esc clears)", id="filter")
                yield EventList(id="events")
        yield Bar(id="status")
        yield KeyBar(id="keys")

    def get_system_commands(self, screen):  # noqa: ANN001, ANN201 - Textual's signature
        """The command palette lists every key's action by name, beside Textual's own commands."""
        yield from super().get_system_commands(screen)
        for k in KEYS:
            b = k.binding
            if b.action in ("quit", "clear") or not b.show:
                continue
            key = key_name(b.key)
            yield SystemCommand(f"{b.description} ({key})", f"{k.words} · the {key} key",
                                partial(self.run_action, b.action))

    def on_mount(self) -> None:
        self.theme = self.look.theme
        self.add_class(self.look.glyphs)
        self.query_one("#events", EventList).border_title = "events"
        self.query_one("#stations", StationList).border_title = "stations by trouble"
        self._layout_classes(self.size.width, self.size.height)
        self.set_interval(1.0 / self.fast_hz, self.tick)
        self.watch(self.query_one("#panes", VerticalScroll), "scroll_y", self._more_below, init=False)
        self.query_one("#events", EventList).focus()
        self._keys()
        self.run_engine()

    def on_resize(self, event) -> None:  # noqa: ANN001
        self._layout_classes(event.size.width, event.size.height)
        self.call_after_refresh(self.redraw_all)

    def _layout_classes(self, width: int, height: int) -> None:
        self.set_class(width < 110, "narrow")
        self.set_class(height < 32, "short")
        self.set_class(height >= 44, "tall")

    @work(thread=True, exclusive=True, group="engine", description="producer and consumer")
    def run_engine(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of a dead screen
            self.engine_error = str(exc) if isinstance(exc, EngineFailure) else f"{type(exc).__name__}: {exc}"
            self.call_from_thread(self.notify, f"engine stopped: {inert(self.engine_error)}", severity="error",
                                  timeout=30, markup=False)
        finally:
            self.engine_done = True

    # --- the timer ----------------------------------------------------------------
    @property
    def _closing_down(self) -> bool:
        """True once quit or shutdown began: the widgets are going away and a timer tick must not look for them."""
        return self._quitting or not self.is_running

    @property
    def paused(self) -> bool:
        return self.controls.paused.is_set()

    def tick(self) -> None:
        """Take a new snapshot when there is news (never while paused), and draw what changed."""
        if self._closing_down:
            return
        for notice in self.state.drain_notices():
            self.notify(inert(notice), severity="error", timeout=8, markup=False)
        fresh = False
        if not self.paused and (self.snapshot is None or self.state.version != self.snapshot.version):
            self.snapshot = self.state.snapshot(self.snapshot)
            fresh = True
        alerts = self.snapshot.status.get("alerts", 0) if self.snapshot else 0
        if alerts > self._alerts_seen:
            self.bell()  # the terminal bell: an alert went out
            self._alerts_seen = alerts
        now = time.monotonic()
        # Charts at their own rate, and only when there is something new to draw: an idle screen
        # (a replay that has ended) costs nothing but this check.
        charts = now >= self._chart_due and self.snapshot is not None and \
            self.snapshot.version != self._charted_version
        if fresh or charts or self.alert_state.version != self._alert_version:
            self.render_all(charts=charts)
        else:
            self._bars()
        self._tick_countdowns()
        if fresh:
            for ingested, count in self.state.drain_unseen():
                self.latencies.append((time.monotonic() - ingested, count))
            del self.latencies[:-20_000]

    def refresh_fast(self) -> None:
        """Kept for callers of the former API: one tick now."""
        self.tick()

    def redraw_all(self) -> None:
        """Everything from a fresh snapshot now, charts included (resize, tests)."""
        if self._closing_down:
            return
        if not self.paused or self.snapshot is None:
            self.snapshot = self.state.snapshot(self.snapshot)
        for pane in self.query(VariablePane):
            pane.chart_key = None
        self.render_all(charts=True)

    def refresh_charts(self, force: bool = False) -> None:
        self.render_all(charts=True)

    # --- drawing everything from one snapshot -------------------------------------
    def render_all(self, charts: bool = False) -> None:
        if self._closing_down or self.screen is not self.screen_stack[0]:
            if charts:
                self._chart_due, self._charted_version = 0.0, -1  # draw them when the modal closes
            return
        snap = self.snapshot
        self._alert_version = self.alert_state.version
        if snap is not None:
            self._row_states = {ep_id: self._row_state(ep) for ep_id, ep in snap.episodes.items()}
            if self.station is None and snap.stations:
                self.station = self._trouble_order(snap)[0]
        with self.batch_update():
            if snap is not None:
                self._stations(snap)
                self._panes(snap, charts)
                self._events(snap)
            self._bars()
        if charts:
            self._chart_due = time.monotonic() + 1.0 / self.chart_hz
            self._charted_version = snap.version if snap is not None else -1

    def _bars(self) -> None:
        self._header()
        self._now()
        self._problem()
        self._status()

    # --- what each episode's row shows --------------------------------------------
    def labels_of(self, ep: Episode) -> dict[str, str]:
        """The labels a silence matches on: the station's (source, kind, tags) and the episode's own."""
        labels = dict(self.engine.labels.get(ep.station, {}))
        labels.update(station=ep.station, variable=ep.variable, detector=ep.family, episode=ep.id)
        return labels

    def _row_state(self, ep: Episode) -> RowState:
        snap = self.snapshot
        info = snap.stations.get(ep.station) if snap else None
        clock = info.clock if info is not None and info.clock > float("-inf") else ep.last
        silence = self.alert_state.is_muted(self.labels_of(ep), clock)
        return RowState(clock, self.alert_state.is_acked(ep.id), silence.ends if silence else None, ep.silenced,
                        ep.alert)

    def row_state(self, ep: Episode) -> RowState:
        return self._row_states.get(ep.id) or self._row_state(ep)

    def active_episodes(self, snap: Snapshot) -> list[Episode]:
        """Ongoing and not muted, worst first."""
        active = []
        for ep in snap.episodes.values():
            st = self.row_state(ep)
            if ep.ongoing(st.clock) and not st.quiet:
                active.append(ep)
        active.sort(key=lambda e: (-e.rank, -e.last))
        return active

    # --- header, now strip, problem, status -------------------------------------------
    def _header(self) -> None:
        snap = self.snapshot
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append("≈ mass", "bold")
        if self.station and snap is not None:
            info = snap.stations.get(self.station)
            out.append(" │ ", "dim")
            out.append(inert(self.station, 40), "bold")
            if info is not None and info.source and not info.source.startswith(("replay", "unknown")):
                out.append(f" ({inert(info.source, 30)})", "dim")
            place = _place(info) if info is not None else ""
            if place:
                out.append(f" {place}", "dim")
        clock = snap.clock if snap is not None else None
        if clock is not None:
            out.append(" │ ", "dim")
            out.append(f"data {iso_utc(clock)[:16].replace('T', ' ')} UTC")
        out.append(" │ ", "dim")
        if self.engine_done and self.pace != "live":
            out.append("replay ended" if self.source_label.startswith("replay") else "stopped", "bold")
        else:
            out.append(self.pace, "bold")
        out.append(" │ ", "dim")
        out.append(inert(self.source_label, 60))
        chips = []
        if self.paused:
            chips.append(("⏸ PAUSED" if self.look.glyphs == "braille" else "PAUSED", "bold reverse"))
        if not self.window.live or self.focus_ts is not None:
            # The moment looked at (an episode's peak) when there is one, else the window's right edge.
            when = self.focus_ts if self.focus_ts is not None else self.window.end
            what = f"viewing {local_time(when)}" if when is not None else "zoomed"
            chips.append((f"◀ {what} — Esc live" if self.look.glyphs == "braille" else f"< {what} - Esc live",
                          "bold reverse yellow" if self.look.color else "bold reverse"))
        elif self.window.span is not None:
            chips.append((f"zoom {duration_words(self.window.span)} — Esc all", "reverse"))
        width = max(20, self.query_one("#header").size.width - 2)
        right = Text.assemble(*((f" {c} ", s) for c, s in chips), no_wrap=True)
        if right.cell_len:
            out.truncate(max(10, width - right.cell_len - 1), overflow="ellipsis")
            out.append(" " * max(1, width - out.cell_len - right.cell_len))
            out.append_text(right)
        self.query_one("#header", Bar).show([out])

    def _now(self) -> None:
        snap = self.snapshot
        bar = self.query_one("#now", Bar)
        width = max(20, bar.size.width - 2)
        if snap is None or not snap.stations:
            bar.show([Text(self._waiting_words(), style="italic", no_wrap=True)])
            return
        active = self.active_episodes(snap)
        muted = sum(1 for ep in snap.episodes.values()
                    if self.row_state(ep).quiet and ep.ongoing(self.row_state(ep).clock))
        note = ""
        if not active:
            ended = max(snap.episodes.values(), key=lambda e: e.last, default=None)
            note = "no active anomaly"
            if ended is not None:
                note += f" · last: {episode_words(ended)}, ended {local_time(ended.last)}"
        line = now_strip([(ep, self.row_state(ep)) for ep in active[:6]], self.imperial, self.look, width,
                         with_station=len(snap.stations) > 1, muted=muted, quiet_note=note)
        bar.show([line])

    def _waiting_words(self) -> str:
        """What an empty screen waits for, and when it is expected."""
        source = self.state.status.get("source_state") or {}
        if source.get("up") is False or source.get("stopped"):
            return "no data yet: the source is down (details below)"
        when = self.controls.next_poll() if self.controls.next_poll else None
        if when is not None:
            return f"waiting for the first reading from {inert(self.source_label, 40)}: next poll in " \
                   f"{_mmss(when - time.time())}"
        if self.engine_done:
            return "the recording held no valid reading (see rejected.jsonl in the data dir)"
        return f"waiting for the first reading from {inert(self.source_label, 40)}"

    def _problem(self) -> None:
        """The full error of a source, the transport or the engine, with when the next try comes."""
        st = self.state.status
        source = st.get("source_state") or {}
        lines: list[str] = []
        engine_error = self.engine_error or st.get("engine_error")
        if engine_error:
            lines.append(f"Engine stopped: {engine_error}")
        if st.get("transport_error"):
            lines.append(f"Transport: {st['transport_error']}")
        if source.get("stopped"):
            lines.append(f"Source {source.get('name', '')} stopped for good: {source.get('last_error', '')}")
        elif source.get("up") is False:
            retry = source.get("next_retry")
            since = source.get("down_since")
            when = time.strftime("%H:%M:%S", time.localtime(retry)) if retry else "soon"
            lines.append(f"Source {source.get('name', '')} DOWN"
                         f"{' since ' + time.strftime('%H:%M:%S', time.localtime(since)) if since else ''}: "
                         f"{source.get('last_error', '')} — next try {when}"
                         f"{' (in ' + _mmss(retry - time.time()) + ')' if retry else ''}; r retries now")
        error = getattr(self.alert_state, "error", "")
        if error:
            lines.append(f"Ack/mute state: {error}")
        bar = self.query_one("#problem", Bar)
        bar.set_class(bool(lines), "visible")
        width = max(20, bar.size.width - 2 if bar.size.width else self.size.width - 2)
        wrapped: list[Text] = []
        for line in lines:
            text = Text(inert(line), style="bold")
            wrapped.extend(text.wrap(self.console, width, overflow="fold")[:4])
        bar.show(wrapped[:6] or [Text("")])

    def what_if(self) -> tuple[int, int] | None:
        """(alarms in view at the configured levels, at the levels now) for the selected station: the
        readings of its series in view that would open or escalate an episode (`what_if.alarm_count`)."""
        snap = self.snapshot
        if snap is None or self.station is None:
            return None
        key = (snap.version, self.station, self.alarm_rarity, self.critical_rarity)
        if key == self._what_if_key:
            return self._what_if
        p = self.engine.params
        before = now = 0
        for (st, var), count in snap.counts.items():
            if st != self.station:
                continue
            rows = self.state.rows(st, var, upto=count)
            whole = rows.shape[0] == count  # from the series' first reading: its learning span counts
            common = dict(base_rarity=p.alarm_rarity, quiet=p.episode_quiet,
                          learn_points=p.level_window if whole else 0,
                          learn_seconds=p.learning_hours * 3600.0 if whole else 0.0)
            sur, ts = rows[:, COL["surprise"]], rows[:, COL["ts"]]
            before += alarm_count(sur, ts, alarm_rarity=p.alarm_rarity, critical_rarity=None, **common)
            now += alarm_count(sur, ts, alarm_rarity=self.alarm_rarity, critical_rarity=self.critical_rarity,
                               **common)
        self._what_if, self._what_if_key = (before, now), key
        return self._what_if

    @property
    def alarm_score(self) -> float:
        """The stored anomaly_score at which a reading alarms now (0.5 at the configured rarity)."""
        return threshold_score(self.alarm_rarity, self.engine.params.alarm_rarity)

    def _levels_words(self) -> str:
        crit = self.critical_rarity if self.critical_rarity is not None else self.engine.params.alarm_rarity ** 2
        # The score only once moved off its documented 0.5: the status line is short at 80 columns.
        score = f" (score {self.alarm_score:.2f})" if self.alarm_rarity != self.engine.params.alarm_rarity else ""
        return f"alarm {rarity_words(self.alarm_rarity)}{score} · crit {rarity_words(crit)}"

    def _status(self) -> None:
        st = self.state.status
        transport = self.controls.transport() if self.controls.transport else "memory"
        source = st.get("source_state") or {}
        parts: list[tuple[str, str]] = [(self._levels_words(), "bold")]
        if self.baseline_count is not None:
            counts = self.what_if()
            if counts:
                parts.append((f"what-if: {counts[1]} alarms in view ({counts[0]} at "
                              f"{rarity_words(self.engine.params.alarm_rarity)})", "bold magenta"))
        if self.paused:
            parts.append(("PAUSED", "bold reverse"))
        parts.append((f"{inert(self.source_label, 30)} via {transport}", ""))
        if self.engine_error or st.get("engine_error") or st.get("transport_error") or source.get("stopped"):
            parts.append(("FAILED (see above)", "bold red" if self.look.color else "bold reverse"))
        elif source.get("up") is False:
            parts.append(("DOWN (see above)", "bold red" if self.look.color else "bold reverse"))
        elif source.get("up"):
            parts.append(("up", "green" if self.look.color else ""))
        if self.show_rate:
            rate = 0.0 if self.paused else self.state.rate()
            parts.append((f"{rate:,.1f} msg/s" if rate < 10 else f"{rate:,.0f} msg/s", ""))
        if "lag" in st:
            parts.append((f"lag {st['lag']}", ""))
        parts.append((f"rejected {st.get('rejected', 0)}", ""))
        parts.append((f"alerts {st.get('alerts', 0)}", "") if self.engine.alerts_enabled else ("alerts off",
                                                                                                   "dim"))
        for name, text in st.get("sinks", {}).items():  # a database sink's state (mass_tui.sinks.postgres)
            parts.append((f"{name} {text}", "" if text == "up" else "bold red" if "DOWN" in text else "yellow"))
        if self.imperial:
            parts.append(("imperial", "italic"))
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (piece, style) in enumerate(parts):
            if i:
                text.append(" │ ", "dim")
            text.append(piece, style or None)
        self.query_one("#status", Bar).show([text])

    def _keys(self) -> None:
        keys = [(key_name(k.binding.key), k.binding.description, k.binding.action) for k in footer_keys()]
        pinned = [("?", "help", "help"), ("q", "quit", "quit")]
        self.query_one("#keys", KeyBar).set_keys(keys, pinned)

    # --- stations ---------------------------------------------------------------------
    def _worst_active(self, snap: Snapshot) -> dict[str, int]:
        """Station -> the rank of its worst ongoing, unmuted episode (stations without one are absent)."""
        worst_of: dict[str, int] = {}
        for ep in snap.episodes.values():
            st = self.row_state(ep)
            if ep.ongoing(st.clock) and not st.quiet and ep.rank > worst_of.get(ep.station, -1):
                worst_of[ep.station] = ep.rank
        return worst_of

    def _trouble_order(self, snap: Snapshot) -> list[str]:
        """Stations worst first: worst active severity, then the band of the highest latest score
        (`score_band`), then anomalies, then name. Bands, not the score itself: an ordinary reading's
        score moves at every reading, and a list ordered by it reshuffled its calm stations at every
        refresh (hard to read, and every row re-sent to the terminal)."""
        key = (snap.version, self._alert_version)
        if self._trouble_key == key and self._trouble_cache:
            return self._trouble_cache
        worst_of = self._worst_active(snap)
        score: dict[str, float] = {}
        for (name, _var), row in snap.latest.items():
            score[name] = max(score.get(name, 0.0), float(row[COL["score"]]))
        order = sorted(snap.stations, key=lambda n: (-worst_of.get(n, -1), -score_band(score.get(n, 0.0)),
                                                     -snap.stations[n].anomalies, n))
        self._trouble_key, self._trouble_cache, self._worst_of = key, order, worst_of
        return order

    def _stations(self, snap: Snapshot) -> None:
        widget = self.query_one("#stations", StationList)
        self.set_class(len(snap.stations) <= 1, "single")
        order = self._trouble_order(snap)
        self._station_order = order
        if not widget.display or self.has_class("narrow") or self.has_class("single"):
            return
        width = max(10, widget.size.width - 2)
        worst_of = self._worst_of
        spark_width = 8
        name_width = max(4, width - spark_width - 8)
        series: dict[str, list[tuple[str, int]]] = {}
        for (st, var), count in snap.counts.items():
            series.setdefault(st, []).append((var, count))

        def row_of(name: str) -> Text:  # called for the rows on screen only
            sev = _SEVERITY_OF_RANK.get(worst_of.get(name, -1))
            counts = tuple(series.get(name, ()))
            key = (name == self.station, sev, name_width, counts, self.look)
            hit = self._station_rows.get(name)
            if hit is not None and hit[0] == key:
                return hit[1]
            style = self.look.severity_style(sev) if sev else "dim"
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append("▶ " if name == self.station else "  ", "bold")
            line.append((SEVERITY_WORD[sev] if sev else "ok").ljust(5), style)
            line.append(fit(inert(name, 4 * name_width), name_width), "bold" if name == self.station else None)
            scores = self._station_scores(name, counts, spark_width)
            line.append(" " + sparkline(scores, spark_width, self.look.spark_levels), style)
            self._station_rows[name] = (key, line)
            return line

        widget.selected = widget.selected or self.station
        widget.set_items(order, row_of, empty=[Text("no station yet", style="italic")])

    def _station_scores(self, name: str, counts: tuple[tuple[str, int], ...], width: int) -> np.ndarray:
        """The highest anomaly score of the station's variables over its last readings."""
        tails = [self.state.rows(name, var, upto=count, last=width * 4)[:, COL["score"]] for var, count in counts]
        if not tails:
            return np.zeros(0)
        out = np.full(max(t.size for t in tails), np.nan)
        for t in tails:
            if t.size:
                out[-t.size :] = np.fmax(out[-t.size :], t)
        return out

    # --- panes --------------------------------------------------------------------------
    def _variables(self, snap: Snapshot) -> list[str]:
        info = snap.stations.get(self.station or "")
        if info is None:
            return []
        return sorted((v for v in info.variables if REGISTRY.get(v) is None or REGISTRY[v].scored),
                      key=_display_order)

    def dense_now(self, count: int) -> bool:
        if self.dense is not None:
            return self.dense
        return self.size.height < 32 or count > 8

    def _panes(self, snap: Snapshot, charts: bool) -> None:
        container = self.query_one("#panes", VerticalScroll)
        wanted = self._variables(snap)
        if self._rebuilding:
            return
        have = list(self.query(VariablePane))
        if [p.variable for p in have] != wanted:
            self._rebuilding = True
            self.run_worker(partial(self._rebuild_panes, container, wanted), exclusive=True, group="panes")
            return
        if not wanted:
            return
        dense = self.dense_now(len(wanted))
        self.set_class(dense and not self.expanded, "dense-view")
        view = container.region
        for pane in have:
            compact = dense and pane.variable not in self.expanded
            pane.set_class(compact, "dense")
            key = (self.station, pane.variable)
            count = snap.counts.get(key, 0)
            latest = snap.latest.get(key)
            visible = pane.region.overlaps(view) if pane.region else True
            # A pane not laid out yet: the container's width inside its scrollbar, less the pane's border
            # and padding; the pane's first resize draws it again at its own width.
            width = max(20, pane.size.width or container.scrollable_content_region.width - 4)
            lines = self._pane_lines(pane, snap, count, latest, compact, width, charts and visible)
            pane.show(lines)
        self.call_after_refresh(self._more_below)

    def _more_below(self, _scroll: object = None) -> None:
        """ "↓ 3 more below (v, ↓)" under the last whole pane on screen when panes are hidden below it."""
        container = self.query_one("#panes", VerticalScroll)
        panes = list(self.query(VariablePane))
        bottom = container.scroll_y + container.scrollable_content_region.height
        whole = [p for p in panes if p.virtual_region.bottom <= bottom and not p.has_class("dense")]
        below = [p for p in panes if p.virtual_region.bottom > bottom]
        last = whole[-1] if whole and below else None
        arrow = "↓" if self.look.glyphs != "ascii" else "down"
        for pane in panes:
            words = f"{arrow} {len(below)} more below (v, {arrow})" if pane is last else ""
            if (pane.border_subtitle or "") != words:  # set only on change: it repaints the pane
                pane.border_subtitle = words

    def _pane_lines(self, pane: VariablePane, snap: Snapshot, count: int, latest, compact: bool, width: int,
                    charts: bool) -> list[Text]:
        var = REGISTRY.get(pane.variable)
        label, unit = (var.label, var.unit) if var else (pane.variable, "")
        if latest is None:
            pane.set_title(f"{pane.number} {label}")
            return [Text(f"{label}: no reading yet", style="italic")]
        value, shown = to_units(float(latest[COL["value"]]), unit, self.imperial)
        score = float(latest[COL["score"]])
        rules = float(latest[COL["rules"]])
        surprise = float(latest[COL["surprise"]])
        alarm = score >= self.alarm_score or rules >= 1.0
        crit = self._critical_now()
        sev = "critical" if (surprise >= math.log10(crit) if self.critical_rarity is not None else score >= 0.8) \
            or rules >= 1.5 else "warning"
        state_style = self.look.severity_style(sev) if alarm else "dim"
        state = ("ANOMALY" if alarm else "ok")
        anomalies = snap.anomaly_counts.get((self.station or "", pane.variable), 0)
        tail = self.state.rows(self.station or "", pane.variable, upto=count, last=4 * width)
        if compact:
            pane.set_title("")
            spark_w = max(8, width - 64)
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{pane.number} ", "dim")
            line.append(fit(inert(label, 80), 20), "bold")
            line.append(fmt(value, shown).rjust(14), "bold")
            line.append("  ")
            line.append(sparkline(tail[:, COL["value"]], spark_w, self.look.spark_levels).ljust(spark_w),
                        state_style if alarm else "")
            line.append("  ")
            line.append(state.ljust(8), state_style)
            line.append(f"{anomalies} flagged" if anomalies else "", "dim")
            return [line]
        pane.set_title(f"{pane.number} {label}")
        level_z = float(latest[COL["level_z"]])
        cusum = float(latest[COL["cusum"]])
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(fmt(value, shown), "bold")
        title.append("  ")
        title.append(state, state_style)
        if alarm:
            title.append(f" (score {score:.2f})", state_style)
        title.append(f"   {anomalies} flagged in view · level z {level_z:+.1f} · CUSUM {cusum:.1f}/{self.h:g} · "
                     f"score {score:.2f}", "dim")
        spark = Text(sparkline(tail[:, COL["value"]], width, self.look.spark_levels),
                     style="cyan" if self.look.color else "", no_wrap=True)
        chart = self._chart(pane, count, width, charts)
        return [title, spark, *chart]

    def chart_height(self) -> int:
        return 11 if self.size.height >= 44 else 9 if self.size.height >= 36 else 7

    def _chart(self, pane: VariablePane, count: int, width: int, due: bool) -> list[Text]:
        height = self.chart_height()
        focus = self.focus_ts if self.focus_variable in (None, pane.variable) else None
        key = (self.station, pane.variable, count, self.window, self.z, self.imperial, focus, width, height,
               self.look)
        # Between chart redraws the last chart is kept, but never at a width the pane no longer has.
        if pane.chart is not None and (pane.chart_key == key or (not due and pane.chart_width == width)):
            return pane.chart
        rows = self.state.rows(self.station or "", pane.variable, upto=count)
        spec = ChartSpec(pane.variable, width, height, self.z, self.imperial, self.window, focus)
        lines = build(rows, spec, self.look)
        pane.chart_empty = None
        if lines is None:
            lines = [Text(self._empty_chart_words(rows.shape[0]), style="italic", no_wrap=True)]
            lines += [Text("")] * (height - 1)
            pane.chart_empty = rows.shape[0]
        else:
            lines.append(legend(pane.variable, self.z, self.imperial, self.look, width))
        pane.chart, pane.chart_key, pane.chart_width = lines, key, width
        return lines

    def _tick_countdowns(self) -> None:
        """The "next reading in 4:35" of empty charts, every second: only that line is redrawn (the
        pane sends the cells that changed), so an idle screen writes a few bytes a second and no more."""
        if self.controls.next_poll is None or self.screen is not self.screen_stack[0]:
            return
        for pane in self.query(VariablePane):
            if pane.chart_empty is None or not pane.chart:
                continue
            old = pane.chart[0]
            words = self._empty_chart_words(pane.chart_empty)
            if old.plain == words:
                continue
            new = Text(words, style="italic", no_wrap=True)
            pane.chart[0] = new
            texts = pane.texts
            at = next((i for i, t in enumerate(texts) if t is old), None)
            if at is not None:
                texts[at] = new
                pane.show(texts)

    def _empty_chart_words(self, readings: int) -> str:
        if not self.window.live:
            return "no reading in this span of time · Esc goes back to live"
        when = self.controls.next_poll() if self.controls.next_poll else None
        base = f"{readings} reading{'s' if readings != 1 else ''} so far; the chart needs 2"
        if when is not None:
            return f"{base} · next reading in {_mmss(when - time.time())}"
        return base

    async def _rebuild_panes(self, container: VerticalScroll, wanted: list[str]) -> None:
        try:
            await container.remove_children()
            await container.mount_all([VariablePane(var, i + 1) for i, var in enumerate(wanted)])
        finally:
            self._rebuilding = False
        self.call_after_refresh(self.render_all, True)

    @on(VariablePane.Toggle)
    def _toggle_pane(self, event: VariablePane.Toggle) -> None:
        if event.variable in self.expanded:
            self.expanded.discard(event.variable)
        else:
            self.expanded.add(event.variable)
        self.render_all(charts=True)

    @on(VariablePane.Resized)
    def _pane_resized(self) -> None:
        """A pane changed width (a scrollbar came or went, the station list showed): its lines are
        drawn again at the new width once the layout settles (one redraw for many panes)."""
        if not self._pane_redraw_due:
            self._pane_redraw_due = True
            self.call_after_refresh(self._redraw_panes)

    def _redraw_panes(self) -> None:
        self._pane_redraw_due = False
        if self.snapshot is not None and not self._closing_down and self.screen is self.screen_stack[0]:
            with self.batch_update():
                self._panes(self.snapshot, charts=False)

    @on(VariablePane.Zoom)
    def _wheel(self, event: VariablePane.Zoom) -> None:
        if event.zoom != 1.0:
            self.action_zoom(event.zoom)
        if event.pan:
            self.action_pan(event.pan)

    # --- events -------------------------------------------------------------------------
    def _events(self, snap: Snapshot) -> None:
        widget = self.query_one("#events", EventList)
        width = max(20, widget.size.width - 2 if widget.size.width else self.size.width - 4)
        shown = select(list(snap.episodes.values()), self.event_filter, self.sort_mode, self.row_state)
        self._shown_events = shown
        head = Text(chip(len(shown), len(snap.episodes), self.event_filter, self.sort_mode), style="bold",
                    no_wrap=True, overflow="ellipsis")
        hint = "  Enter detail · a ack · m mute · / filter · o sort"
        if head.cell_len + len(hint) <= width:
            head.append(hint, "dim")
        episodes = snap.episodes
        if len(self._event_rows) > 2 * len(episodes) + 200:  # forget the rows of episodes long gone
            self._event_rows = {k: v for k, v in self._event_rows.items() if k in episodes}

        def row_of(ep_id: str) -> Text:  # called for the rows on screen only
            return self._event_row(episodes[ep_id], width)

        if not snap.episodes:
            empty = [Text(f"no anomaly yet · watching {len(snap.stations)} station"
                          f"{'s' if len(snap.stations) != 1 else ''}, "
                          f"{snap.status.get('observations', 0):,} readings", style="italic")]
        else:
            empty = [Text(f"nothing matches this filter ({len(snap.episodes)} episodes in all) · Esc clears it",
                          style="italic")]
        widget.set_items([ep.id for ep in shown], row_of, header=[head, event_header(width)], empty=empty)

    def _event_row(self, ep: Episode, width: int) -> Text:
        """An episode's line, built again only when something it shows changed."""
        st = self.row_state(ep)
        ongoing = ep.ongoing(st.clock)
        key = (ep.readings, ep.last, ep.start, ep.severity, ep.peak_score, ep.peak_reason, ongoing,
               int(ep.duration(st.clock)), st.acked, st.muted_until, st.clock if st.muted_until is not None else None,
               st.silenced, st.alert,
               width, self.imperial, self.look)
        hit = self._event_rows.get(ep.id)
        if hit is not None and hit[0] == key:
            return hit[1]
        row = event_row(ep, st, width, self.imperial, self.look)
        self._event_rows[ep.id] = (key, row)
        return row

    def episode(self, episode_id: str | None) -> Episode | None:
        snap = self.snapshot
        return snap.episodes.get(episode_id) if snap is not None and episode_id else None

    def selected_episode(self) -> Episode | None:
        """The episode under the events cursor, for an action on it; the list then stops following its
        top, so the cursor stays on the episode acted on (an acked one sorts lower)."""
        listing = self.query_one("#events", EventList)
        listing.following = False
        return self.episode(listing.selected)

    @on(EventList.Opened)
    def _open_episode(self, event: EventList.Opened) -> None:
        ep = self.episode(event.item)
        if ep is not None:
            self.push_screen(screens.EpisodeScreen(self, ep))

    @on(StationList.Opened)
    def _open_station(self, event: StationList.Opened) -> None:
        self.select_station(event.item)

    # --- actions: stations, time ------------------------------------------------------------
    def select_station(self, station: str) -> None:
        """Show one station: every part of the screen from the same snapshot (paused or not)."""
        if station == self.station:
            return
        self.station = station
        self.window, self.focus_ts, self.focus_variable = Window(), None, None
        self.expanded.clear()
        self.query_one("#stations", StationList).selected = station
        self.render_all(charts=True)

    def _cycle_station(self, delta: int) -> None:
        snap = self.snapshot
        if snap is None or not snap.stations:
            return
        order = self._station_order or self._trouble_order(snap)
        i = order.index(self.station) if self.station in order else -1
        self.select_station(order[(i + delta) % len(order)])

    def action_next_station(self) -> None:
        self._cycle_station(1)

    def action_previous_station(self) -> None:
        self._cycle_station(-1)

    def _bounds(self) -> tuple[float, float] | None:
        snap = self.snapshot
        if snap is None or self.station is None:
            return None
        firsts, lasts = [], []
        for (st, var), count in snap.counts.items():
            if st == self.station and count:
                rows = self.state.rows(st, var, upto=count)
                if rows.shape[0]:
                    firsts.append(float(rows[0, COL["ts"]]))
                    lasts.append(float(rows[-1, COL["ts"]]))
        return (min(firsts), max(lasts)) if firsts else None

    def action_zoom(self, factor: float) -> None:
        bounds = self._bounds()
        if bounds is not None:
            self.window = self.window.zoom(float(factor), *bounds)
            self.render_all(charts=True)

    def action_pan(self, fraction: float) -> None:
        bounds = self._bounds()
        if bounds is not None:
            if self.window.span is None and fraction < 0:  # showing all: step in to a quarter first
                self.window = self.window.zoom(0.25, *bounds)
            self.window = self.window.pan(float(fraction), *bounds)
            self.render_all(charts=True)

    def go_to(self, ep: Episode) -> None:
        """Charts at an episode's peak: its station, the window around it, its pane scrolled to and flashed."""
        if ep.station != self.station:
            self.select_station(ep.station)
        bounds = self._bounds()
        if bounds is not None:
            info = self.snapshot.stations.get(ep.station) if self.snapshot is not None else None
            clock = info.clock if info is not None and info.clock > float("-inf") else ep.last
            self.window = episode_window(ep.start, ep.start + ep.duration(clock), ep.peak_ts, *bounds)
        self.focus_ts, self.focus_variable = ep.peak_ts, ep.variable
        self.render_all(charts=True)
        self.call_after_refresh(self._flash, ep.variable)

    def _flash(self, variable: str) -> None:
        for pane in self.query(VariablePane):
            if pane.variable == variable:
                pane.scroll_visible(animate=False)
                pane.add_class("flash")
                self.set_timer(1.5, partial(pane.remove_class, "flash"))

    def action_step(self, delta: int) -> None:
        """The previous or next episode of this station, in time: list cursor, charts and pane follow."""
        snap = self.snapshot
        if snap is None or self.station is None:
            return
        eps = sorted((e for e in snap.episodes.values() if e.station == self.station), key=lambda e: (e.peak_ts, e.id))
        if not eps:
            self.notify("no anomaly on this station yet", timeout=3)
            return
        at = self.focus_ts
        if at is None:
            target = eps[-1] if delta < 0 else eps[0]
        elif delta > 0:
            target = next((e for e in eps if e.peak_ts > at), None)
        else:
            target = next((e for e in reversed(eps) if e.peak_ts < at), None)
        if target is None:
            self.notify("no later anomaly on this station" if delta > 0 else "no earlier anomaly", timeout=3)
            return
        self.query_one("#events", EventList).select(target.id)
        self.go_to(target)

    def action_pane(self, number: int) -> None:
        panes = list(self.query(VariablePane))
        if 1 <= number <= len(panes):
            pane = panes[number - 1]
            pane.focus()
            pane.scroll_visible(animate=False)
            self._flash(pane.variable)

    def action_focus(self, part: str) -> None:
        if part == "panes":
            panes = list(self.query(VariablePane))
            if panes:
                panes[0].focus()
                panes[0].scroll_visible()
            return
        widget = self.query_one(f"#{part}")
        if widget.display and not (part == "stations" and (self.has_class("narrow") or self.has_class("single"))):
            widget.focus()
        elif part == "stations":
            self.action_command_palette()

    def action_dense(self) -> None:
        snap = self.snapshot
        count = len(self._variables(snap)) if snap else 0
        self.dense = not self.dense_now(count)
        self.expanded.clear()
        self.render_all(charts=True)

    def action_map(self) -> None:
        self.push_screen(screens.MapScreen(self))

    # --- actions: events --------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.value = self.filter_text
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.input.remove_class("visible")
        self.query_one("#events", EventList).focus()

    def set_filter(self, text: str, min_severity: str | None = None) -> None:
        """Filter the events (works paused too: the list is drawn from the frozen moment)."""
        self.filter_text = text
        if min_severity is not None:
            self.min_severity = min_severity or None
        self.event_filter = parse_filter(text, self.min_severity)
        self.render_all(charts=False)

    def action_severity(self) -> None:
        order = [None, "warning", "critical"]
        nxt = order[(order.index(self.min_severity) + 1) % len(order)]
        self.set_filter(self.filter_text, nxt or "")

    def action_sort(self) -> None:
        self.sort_mode = SORTS[(SORTS.index(self.sort_mode) + 1) % len(SORTS)]
        _set_pref(self.alert_state, "sort", self.sort_mode)
        self.render_all(charts=False)

    def action_ack(self) -> None:
        ep = self.selected_episode()
        if ep is None:
            self.notify("no episode selected (the events list is empty)", timeout=3)
            return
        if self.alert_state.is_acked(ep.id):
            self.alert_state.unack(ep.id)
            self.notify(f"acknowledgement taken back: {inert(ep.station, 30)} {label_of(ep.variable)}", timeout=3,
                        markup=False)
        else:
            self.alert_state.ack(ep.id)
            self.notify(f"acknowledged: {inert(ep.station, 30)} {episode_words(ep)}", timeout=3,
                        markup=False)
        self.render_all(charts=False)

    def action_mute(self) -> None:
        if self._closing_down:
            return
        focused = self.focused
        ep = self.selected_episode() if not isinstance(focused, StationList) else None
        station = focused.selected if isinstance(focused, StationList) else (ep.station if ep else self.station)
        if station is None:
            self.notify("nothing to mute yet", timeout=3)
            return
        self.push_screen(screens.MuteScreen(self, ep, station))

    def action_clear(self) -> None:
        """Esc: back to live first; then the filter is cleared; then expanded panes fold."""
        box = self.query_one("#filter", Input)
        if box.has_focus:
            box.value = ""
            box.remove_class("visible")
            self.set_filter("", "")
            self.query_one("#events", EventList).focus()
            return
        if not self.window.live or self.window.span is not None or self.focus_ts is not None:
            self.window, self.focus_ts, self.focus_variable = Window(), None, None
        elif not self.event_filter.empty:
            box.value = ""
            box.remove_class("visible")
            self.set_filter("", "")
        elif self.expanded:
            self.expanded.clear()
        self.render_all(charts=True)

    # --- actions: thresholds, units, pause, source ----------------------------------------------
    def _levels(self, alarm: float | None = None, critical: float | None = None) -> None:
        """New alarm and critical rarities: sent to the engine (what opens and escalates an episode from its
        next batch on), recounted in the status bar over what is in view."""
        if alarm is not None:
            self.alarm_rarity = alarm
        if critical is not None:
            self.critical_rarity = critical
        if self.critical_rarity is not None and self.critical_rarity < self.alarm_rarity:
            self.critical_rarity = self.alarm_rarity
        self.baseline_count = 0
        self.engine.request_thresholds(alarm_rarity=self.alarm_rarity, critical_rarity=self.critical_rarity)
        self._status()
        # For bench/ui_cost.py: when the new level was written out (it compares with when the key was sent).
        self.call_after_refresh(lambda: self.key_shown.append(time.monotonic()))
        self.call_after_refresh(self.render_all)  # then the panes' ANOMALY/ok follow the alarm score

    def _critical_now(self) -> float:
        return self.critical_rarity if self.critical_rarity is not None else self.engine.params.alarm_rarity ** 2

    def action_raise_z(self) -> None:
        """Fewer alarms: a reading must be half a decade rarer to open an episode."""
        self._levels(alarm=step_rarity(self.alarm_rarity, up=True))

    def action_lower_z(self) -> None:
        """More alarms: half a decade commoner opens an episode."""
        self._levels(alarm=step_rarity(self.alarm_rarity, up=False))

    def action_raise_h(self) -> None:
        """Fewer critical: a reading must be ten times rarer to make an episode critical."""
        self._levels(critical=min(MAX_RARITY, self._critical_now() * 10.0))

    def action_lower_h(self) -> None:
        """More critical: ten times commoner makes an episode critical (never below the alarm)."""
        self._levels(critical=max(self.alarm_rarity, self._critical_now() / 10.0))

    def action_switch_transport(self) -> None:
        if self.controls.switch_transport is None:
            self.notify("this replay has no transport to switch (run `mass run` for file/Kafka)", timeout=4)
            return
        target = self.controls.switch_transport()
        self.notify(f"switching to the {target} transport (detector state kept)", timeout=4)

    def action_retry(self) -> None:
        if self.controls.retry is None or not self.controls.retry():
            self.notify("no source to retry here" if self.controls.retry is None else
                        "the source is up: nothing to retry", timeout=3)
            return
        self.notify("polling the source now", timeout=3)

    def action_pause(self) -> None:
        if self.paused:
            self.controls.paused.clear()
        else:
            self.controls.paused.set()
        self.render_all(charts=False)

    def action_toggle_units(self) -> None:
        self.imperial = not self.imperial
        _set_pref(self.alert_state, "imperial", self.imperial)
        self.render_all(charts=True)

    def action_help(self) -> None:
        self.push_screen(screens.HelpScreen(KEYS))

    def action_daily(self) -> None:
        from mass_tui.ui.daily import DailyScreen

        self.push_screen(DailyScreen(self.engine.db_dir, self.station, self.engine.open_daily))

    def on_screen_resume(self) -> None:
        self.call_after_refresh(self.render_all, True)

    async def action_quit(self) -> None:
        self._quitting = True
        self.controls.paused.clear()
        self.controls.stop.set()
        self.workers.cancel_group(self, "engine")
        self.exit()


def _set_pref(store: AlertState, key: str, value: object) -> None:
    setter = getattr(store, "set_pref", None)
    if setter is not None:
        setter(key, value)


def _mmss(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600} h {(s % 3600) // 60:02d} min"


def _place(info) -> str:  # noqa: ANN001 - a StationInfo
    bits = []
    if info.lat is not None and info.lon is not None:
        bits.append(f"{abs(info.lat):.2f}°{'N' if info.lat >= 0 else 'S'} {abs(info.lon):.2f}°"
                    f"{'E' if info.lon >= 0 else 'W'}")
    tags = [f"{k} {v}" for k, v in info.tags.items() if k not in ("kind", "note")][:3]
    if tags:
        bits.append(" · ".join(tags))
    return inert(" · ".join(bits), 60)


__all__ = ["Controls", "MassApp", "convert_reason", "unit_of"]
