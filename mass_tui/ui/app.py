"""The terminal UI: live panes per variable, the anomaly list, thresholds on keys.

The engine runs in a thread worker and only writes to LiveState; the UI
reads snapshots on two timers (fast: titles, sparklines, table, status;
slow: the plotext charts of the visible panes), so the repaint rate is
independent of the message rate and stays light over SSH.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, OptionList
from textual.widgets.option_list import Option

from mass_tui.engine import Engine
from mass_tui.live_state import LiveState, Snapshot
from mass_tui.ui.charts import Thresholds, to_units, what_if_scores
from mass_tui.ui.help import HelpScreen
from mass_tui.ui.widgets import StatusBar, VariablePane
from sources.schema import iso_utc
from sources.variables import REGISTRY

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
MAX_ROWS = 100

# Bindings are data: the footer, the help screen and the command palette come from this list.
BINDINGS = [
    Binding("Z", "raise_z", "z +0.25", id="raise_z"),
    Binding("z", "lower_z", "z -0.25", id="lower_z"),
    Binding("C", "raise_h", "h +0.5", id="raise_h"),
    Binding("c", "lower_h", "h -0.5", id="lower_h"),
    Binding("t", "switch_transport", "Kafka/file", id="switch_transport"),
    Binding("space", "pause", "Pause", id="pause"),
    Binding("s", "next_station", "Station", id="next_station"),
    Binding("slash", "filter", "Filter", id="filter"),
    Binding("u", "toggle_units", "Units", id="toggle_units"),
    Binding("d", "daily", "Daily summary", show=False, id="daily"),
    Binding("question_mark", "help", "Help", id="help"),
    Binding("escape", "clear", "Clear", show=False, id="clear"),
    Binding("q", "quit", "Quit", id="quit"),
]


# Storm variables first: they are what a user watches.
_FIRST = ("pressure_msl_hpa", "pressure_hpa", "gust_mps", "wind_mps", "temp_c", "humidity_pct")
_ORDER: dict[str, int] = {}
for _name in (*_FIRST, *REGISTRY):
    _ORDER.setdefault(_name, len(_ORDER))


def _display_order(variable: str) -> tuple[int, str]:
    return _ORDER.get(variable, len(_ORDER)), variable


@dataclass
class Controls:
    """What the UI asks of the engine's thread; read there between batches."""

    paused: threading.Event
    stop: threading.Event
    switch_transport: Callable[[], str] | None = None
    transport: Callable[[], str] | None = None


class MassApp(App):
    TITLE = "mass"
    SUB_TITLE = "Meteorological Analytics Streaming System"
    CSS = """
    #body { height: 1fr; }
    #stations { width: 28; border: round $primary-darken-2; }
    #panes { width: 1fr; }
    #anomalies { height: 10; border: round $primary-darken-2; }
    #filter { display: none; }
    #filter.visible { display: block; }
    /* Small terminals (80x24 over SSH): the station list folds away (s still cycles), the table shrinks. */
    MassApp.narrow #stations { display: none; }
    MassApp.short #anomalies { height: 7; }
    MassApp.short VariablePane PlotextPlot { height: 7; }
    """
    BINDINGS = BINDINGS

    def __init__(self, engine: Engine, state: LiveState, controls: Controls, run: Callable[[], None], *,
                 source_label: str, fast_hz: float = 4.0, chart_hz: float = 1.0, show_rate: bool = True) -> None:
        super().__init__()
        self.engine = engine
        self.state = state
        self.controls = controls
        self._run = run
        self.source_label = source_label
        self.fast_hz, self.chart_hz = fast_hz, chart_hz
        self.show_rate = show_rate
        self.station: str | None = None
        self.imperial = False
        self.focus_ts: float | None = None
        self.filter_text = ""
        self.z = engine.bank.params.z
        self.h = engine.bank.params.h
        self.baseline_count: int | None = None  # anomalies in view when thresholds were last untouched
        self.snapshot: Snapshot | None = None
        self._table_version = -1
        self._rebuilding = False
        self._prompts: dict[str, str] = {}
        self.latencies: list[tuple[float, int]] = []  # (ingest-to-screen seconds, messages)
        self._charted_version = -1
        self._quitting = False
        self._alerts_seen = 0
        self._status_text = ""
        self._table_built = 0.0
        self.engine_error: str | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≈")
        with Horizontal(id="body"):
            yield OptionList(id="stations")
            with Vertical():
                yield VerticalScroll(id="panes")
                yield Input(placeholder="filter anomalies and stations (Enter to keep, Esc to clear)", id="filter")
                yield DataTable(id="anomalies", cursor_type="row", zebra_stripes=True)
        yield StatusBar(id="status")
        yield Footer()

    def get_system_commands(self, screen):  # noqa: ANN001, ANN201 - Textual's signature
        """The command palette lists every key's action by name, beside Textual's own commands."""
        yield from super().get_system_commands(screen)
        for b in self.BINDINGS:
            if b.action in ("quit", "clear"):
                continue
            key = {"slash": "/", "question_mark": "?", "space": "space"}.get(b.key, b.key)
            yield SystemCommand(f"{b.description} ({key})", f"the {key} key", partial(self.run_action, b.action))

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < 110, "narrow")
        self.set_class(event.size.height < 32, "short")

    def on_mount(self) -> None:
        table = self.query_one("#anomalies", DataTable)
        table.add_columns("time (local)", "station", "variable", "value", "detector", "severity", "reason")
        self.query_one("#stations", OptionList).border_title = "stations"
        table.border_title = "anomalies (newest first)"
        self.set_interval(1.0 / self.fast_hz, self.refresh_fast)
        self.set_interval(1.0 / self.chart_hz, self.refresh_charts)
        self.run_engine()

    @work(thread=True, exclusive=True, group="engine", description="producer and consumer")
    def run_engine(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of a dead screen
            self.engine_error = f"{type(exc).__name__}: {exc}"
            self.call_from_thread(self.notify, f"engine stopped: {self.engine_error}", severity="error", timeout=30)

    # --- repaint ----------------------------------------------------------------
    @property
    def _closing_down(self) -> bool:
        """True once quit or shutdown began: the widgets are going away and a timer tick must not look for them."""
        return self._quitting or not self.is_running

    def refresh_fast(self) -> None:
        if self._closing_down:
            return
        if self.controls.paused.is_set() and self.snapshot is not None:
            self._status()
            return
        snap = self.state.snapshot(self.station)
        if self.station is None and snap.stations:
            self.station = sorted(snap.stations)[0]
            snap = self.state.snapshot(self.station)
        for notice in self.state.drain_notices():
            self.notify(notice, severity="error", timeout=8)
        alerts = snap.status.get("alerts", 0)
        if alerts > self._alerts_seen:
            self.bell()  # the terminal bell: an alert went out
            self._alerts_seen = alerts
        self.snapshot = snap
        with self.batch_update():
            self._stations(snap)
            self._panes(snap)
            self._table(snap)
            self._status()
        now = time.monotonic()
        for ingested, count in self.state.drain_unseen():
            self.latencies.append((now - ingested, count))
        del self.latencies[:-20_000]

    def redraw_all(self) -> None:
        """Everything from a fresh snapshot now, throttles reset (resize, tests)."""
        self._table_built = 0.0
        self._table_version = -1
        self.refresh_fast()
        self.refresh_charts(force=True)

    def refresh_charts(self, force: bool = False) -> None:
        if self._closing_down or self._rebuilding:
            return  # a rebuild of the panes draws them itself when it is done
        snap = self.snapshot
        if snap is None or self.screen is not self.screen_stack[0]:
            return  # a modal is open: nothing behind it needs drawing
        if not force and snap.version == self._charted_version:
            return  # paused or idle: the charts are already drawn
        self._charted_version = snap.version
        scroll = self.query_one("#panes", VerticalScroll)
        for pane in self.query(VariablePane):
            series = snap.series.get((self.station or "", pane.variable))
            visible = pane.region.overlaps(scroll.region) if pane.region else False
            if series is not None and visible:
                pane.update_chart(series, self.z, self.imperial, self.focus_ts)

    def _stations(self, snap: Snapshot) -> None:
        options = self.query_one("#stations", OptionList)
        names = [n for n in sorted(snap.stations) if self.filter_text.lower() in n.lower()]
        prompts = {}
        for name in names:
            info = snap.stations[name]
            mark = "▶ " if name == self.station else "  "
            style = "bold red" if info["anomalies"] else ""
            prompts[name] = Text.assemble(mark, (name, "bold" if name == self.station else ""),
                                          (f"  ⚠{info['anomalies']}" if info["anomalies"] else "", style))
        shown = [o.id for o in options.options]
        if shown != names:
            highlighted = options.highlighted
            options.clear_options()
            options.add_options([Option(prompts[n], id=n) for n in names])
            if highlighted is not None and highlighted < len(names):
                options.highlighted = highlighted
            self._prompts = {n: str(p) for n, p in prompts.items()}
            return
        for name, prompt in prompts.items():
            if self._prompts.get(name) != str(prompt):  # only the changed lines are redrawn
                options.replace_option_prompt(name, prompt)
                self._prompts[name] = str(prompt)

    def _panes(self, snap: Snapshot) -> None:
        container = self.query_one("#panes", VerticalScroll)
        wanted = sorted((var for (_st, var) in snap.series if REGISTRY.get(var) is None or REGISTRY[var].scored),
                        key=_display_order)
        if self._rebuilding:
            return
        have = {pane.variable: pane for pane in self.query(VariablePane)}
        if list(have) != wanted:
            self._rebuilding = True
            self.run_worker(self._rebuild_panes(container, wanted), exclusive=True, group="panes")
            return
        for var, pane in have.items():
            series = snap.series.get((self.station or "", var))
            if series is not None:
                pane.update_fast(series, self.z, self.h, self.imperial)

    async def _rebuild_panes(self, container: VerticalScroll, wanted: list[str]) -> None:
        try:
            await container.remove_children()
            await container.mount_all([VariablePane(var) for var in wanted])
        finally:
            self._rebuilding = False
        self.call_after_refresh(self.refresh_charts, True)

    def _table(self, snap: Snapshot) -> None:
        table = self.query_one("#anomalies", DataTable)
        needle = self.filter_text.lower()
        rows = [a for a in reversed(snap.anomalies)
                if not needle or needle in f"{a.station} {a.variable} {a.detector} {a.reason}".lower()][:MAX_ROWS]
        key = (len(snap.anomalies), needle, self.imperial, snap.anomalies[-1].ts if snap.anomalies else None)
        if key == self._table_version:
            return
        # Rebuilding the table relays it out: at most twice a second, however fast anomalies come.
        now = time.monotonic()
        if now - self._table_built < 0.5 and key[1:3] == (self._table_version or (None,) * 4)[1:3]:
            return
        self._table_built = now
        self._table_version = key
        table.clear()
        for i, a in enumerate(rows):
            unit = REGISTRY[a.variable].unit if a.variable in REGISTRY else ""
            value, unit = to_units(a.value, unit, self.imperial)
            style = SEVERITY_STYLE.get(a.severity, "")
            table.add_row(
                datetime.fromtimestamp(a.ts).astimezone().strftime("%m-%d %H:%M"),
                Text(a.station), Text(a.variable), Text(f"{value:.4g} {unit}".strip() if value == value else "-"),
                Text(a.detector), Text(a.severity, style=style), Text(a.reason),
                key=f"{i}:{a.ts}:{a.station}:{a.variable}",
            )

    def what_if(self) -> tuple[int, int] | None:
        """(anomalies in view now, at the current thresholds) for the selected station."""
        snap = self.snapshot
        if snap is None or not snap.series:
            return None
        params = self.engine.bank.params
        before = now = 0
        for series in snap.series.values():
            before += int((series.column("score") >= 0.5).sum())
            scores = what_if_scores(series.column("spike_z"), series.column("level_z"), series.column("cusum"),
                                    series.column("burst"), Thresholds(self.z, self.h, params.burst_ratio), params,
                                    series.column("drift"))
            now += int((scores >= 1.0).sum())
        return before, now

    def _status(self) -> None:
        st = self.state.status
        transport = self.controls.transport() if self.controls.transport else "memory"
        source = st.get("source_state")
        conn = ("up", "green")
        if self.engine_error:
            conn = (f"engine stopped: {self.engine_error}", "bold red")
        elif st.get("transport_error"):
            conn = (st["transport_error"], "bold red")
        elif source and source.get("stopped"):
            conn = (f"source stopped: {source.get('last_error', '')}", "bold red")
        elif source and source.get("up") is False:
            retry = source.get("next_retry")
            when = datetime.fromtimestamp(retry).strftime("%H:%M:%S") if retry else "?"
            conn = (f"DOWN ({source.get('last_error', '')[:40]}) retry {when}", "bold red")
        parts = [(f"z={self.z:.2f}", "bold"), (f"h={self.h:.1f}", "bold")]
        counts = self.what_if()
        if counts and self.baseline_count is not None:
            parts.append((f"what-if: {counts[1]} flagged in view (was {counts[0]})", "bold magenta"))
        if self.controls.paused.is_set():
            parts.append(("PAUSED", "bold reverse"))
        parts += [(f"{self.source_label} via {transport}", "bold"), conn]
        if self.show_rate:
            rate = self.state.rate()
            parts.append((f"{rate:,.1f} msg/s" if rate < 10 else f"{rate:,.0f} msg/s", ""))
        clock = st.get("data_time")
        if clock:
            parts.append((f"data {iso_utc(clock)[:16].replace('T', ' ')} UTC", ""))
        if "lag" in st:
            parts.append((f"lag {st['lag']}", ""))
        parts += [(f"rejected {st.get('rejected', 0)}", ""), (f"alerts {st.get('alerts', 0)}", "")]
        for name, text in st.get("sinks", {}).items():  # a database sink's state (mass_tui.sinks.postgres)
            parts.append((f"{name} {text}", "" if text == "up" else "bold red" if "DOWN" in text else "yellow"))
        if self.imperial:
            parts.append(("imperial", "italic"))
        text = "".join(p for p, _ in parts)
        if text != self._status_text:  # an unchanged line costs the terminal nothing
            self._status_text = text
            self.query_one(StatusBar).show(parts)

    # --- actions ----------------------------------------------------------------
    def _thresholds(self, z: float | None = None, h: float | None = None) -> None:
        self.z = round(max(0.25, z if z is not None else self.z), 2)
        self.h = round(max(0.5, h if h is not None else self.h), 2)
        self.baseline_count = 0
        self.engine.request_thresholds(z=self.z, h=self.h)
        self._status()

    def action_raise_z(self) -> None:
        self._thresholds(z=self.z + 0.25)

    def action_lower_z(self) -> None:
        self._thresholds(z=self.z - 0.25)

    def action_raise_h(self) -> None:
        self._thresholds(h=self.h + 0.5)

    def action_lower_h(self) -> None:
        self._thresholds(h=self.h - 0.5)

    def action_switch_transport(self) -> None:
        if self.controls.switch_transport is None:
            self.notify("this replay has no transport to switch (run `mass run` for file/Kafka)", timeout=4)
            return
        target = self.controls.switch_transport()
        self.notify(f"switching to the {target} transport (detector state kept)", timeout=4)

    def action_pause(self) -> None:
        if self.controls.paused.is_set():
            self.controls.paused.clear()
        else:
            self.controls.paused.set()
        self._status()

    def action_next_station(self) -> None:
        snap = self.snapshot
        if snap is None or not snap.stations:
            return
        names = [n for n in sorted(snap.stations) if self.filter_text.lower() in n.lower()] or sorted(snap.stations)
        i = names.index(self.station) if self.station in names else -1
        self._select(names[(i + 1) % len(names)])

    def _select(self, station: str) -> None:
        self.station = station
        self.focus_ts = None
        self.snapshot = self.state.snapshot(station)
        self.refresh_fast()
        self.call_after_refresh(self.refresh_charts, True)

    @on(OptionList.OptionSelected, "#stations")
    def _station_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._select(event.option.id)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.refresh_fast()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one("#anomalies", DataTable).focus()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("visible") and (box.has_focus or not box.value):
            box.value = ""
            box.remove_class("visible")
            self.filter_text = ""
        self.focus_ts = None
        self.refresh_fast()
        self.refresh_charts(force=True)

    def action_toggle_units(self) -> None:
        self.imperial = not self.imperial
        self.refresh_fast()
        self.refresh_charts(force=True)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.BINDINGS))

    def action_daily(self) -> None:
        from mass_tui.ui.daily import DailyScreen

        sink = next((s for s in self.engine.sinks if s.name == "aggregates"), None)
        if self.engine.store is not None:
            self.push_screen(DailyScreen(self.engine.store.db_dir, self.station, getattr(sink, "open_daily", None)))

    @on(DataTable.RowSelected, "#anomalies")
    def _jump(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        _, ts, station, _variable = key.split(":", 3)
        if station != self.station:
            self._select(station)
        self.focus_ts = float(ts)
        self.notify(f"charts at {datetime.fromtimestamp(self.focus_ts).strftime('%Y-%m-%d %H:%M')} "
                    "(Esc: back to live)", timeout=3)
        self.refresh_charts(force=True)

    async def action_quit(self) -> None:
        self._quitting = True
        self.controls.paused.clear()
        self.controls.stop.set()
        self.workers.cancel_group(self, "engine")
        self.exit()
