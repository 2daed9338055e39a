"""The screens over the main one: help, an episode's detail, muting, the station map."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from rich.cells import cell_len, split_graphemes
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from mass_tui.live_state import COL
from mass_tui.ui.chart_render import ChartSpec, build, legend
from mass_tui.ui.charts import Window, episode_window, nice_step
from mass_tui.ui.episodes import RANK, Episode, label_of, unit_of
from mass_tui.ui.event_filter import RowState
from mass_tui.ui.keys import GROUPS, LIST_KEYS, Key, key_name
from mass_tui.ui.lines import LineView
from mass_tui.ui.look import ascii_words
from mass_tui.ui.rows import SEVERITY_LOUD, SEVERITY_WORD, lasted_words, local_time, since_words, state_words
from mass_tui.ui.text import fit, inert
from mass_tui.ui.units import convert_reason, fmt, to_units
from mass_tui.ui.widgets import Bar, StationList

if TYPE_CHECKING:
    from mass_tui.ui.app import MassApp

EXPLAIN = (
    "What to look at first: the line under the header lists what is wrong now, worst first. The events list "
    "below has one row per episode (one condition of one variable at one station), worst and newest first; "
    "Enter shows its readings, the detectors' view and the chart at that moment; a acknowledges it, m mutes "
    "it (or its variable, or the whole station) for a span of data time.\n\n"
    "Each pane is one variable of the selected station: the title gives the current value and whether it is "
    "anomalous; the chart shows the readings, the one-step forecast, the usual range (the long-run mean ± z σ) "
    "and ✖ where the ensemble or a rule fired. The anomaly score is calibrated on each series' own history: "
    "0.5 is a reading as rare as 1 in 10,000 of that series (detectors.alarm_rarity), 0.8 1 in 10^8.\n\n"
    "Going back in time: [ and ] step through this station's anomalies; + and - zoom, < and > pan (ctrl+wheel "
    "and shift+wheel too). The header then says what moment you are viewing; Esc comes back to live.\n\n"
    "Thresholds, on the calibrated scale: Z gives fewer alarms (a reading must be half a decade rarer for its "
    "series to open an episode: 1 in 10,000 becomes 1 in 31,623), z more; C makes episodes critical ten "
    "times more rarely, c more often. They apply at once to new data (and to the alerts), and the status bar "
    "recounts the alarms the series on screen would have raised at the new levels (\"what-if\"), beside the "
    "count at the configured level. Rules (gust limit, pressure fall, smoke ladders) are limits you set and "
    "do not move with these keys."
)


def help_entries(keys: list[Key]) -> list[tuple[str, str]]:
    """(key, what it does) of the help screen, each group after its "[Title]" line."""
    entries: list[tuple[str, str]] = []
    for group, title in GROUPS.items():
        entries.append(("", f"[{title}]"))
        for k in keys:
            if k.group == group and k.binding.show:
                entries.append((" ".join(key_name(x) for x in k.binding.key.split(",")), k.binding.description))
    entries.append(("", "[Lists and panes]"))
    return entries + list(LIST_KEYS)


def help_split(entries: list[tuple[str, str]]) -> int:
    """Where the help's second column starts: at the section header ("[Title]") nearest the middle,
    so each column begins with its section's name."""
    heads = [i for i, (key, words) in enumerate(entries) if not key and words.startswith("[") and i > 0]
    if not heads:
        return (len(entries) + 1) // 2
    return min(heads, key=lambda i: (abs(len(entries) - 2 * i), i))


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 96%; height: auto; max-height: 92%;
                                  border: thick $primary; background: $surface; padding: 0 2; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, keys: list[Key]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Table(title="Keys", expand=True, show_edge=False, box=None, padding=(0, 1))
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what it does")
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what it does")
        entries = help_entries(self.keys)
        plain = getattr(getattr(self.app, "look", None), "glyphs", "") == "ascii"
        if plain:  # TERM=vt100: "1 ... 9", "mean +/- z sd"
            entries = [(ascii_words(k), ascii_words(w)) for k, w in entries]
        half = help_split(entries)
        left_col, right_col = entries[:half], entries[half:]
        n = max(len(left_col), len(right_col))
        left_col += [("", "")] * (n - len(left_col))
        right_col += [("", "")] * (n - len(right_col))
        for left, right in zip(left_col, right_col, strict=True):
            table.add_row(Text(left[0]), Text(left[1], style="bold" if left[1].startswith("[") else ""),
                          Text(right[0]), Text(right[1], style="bold" if right[1].startswith("[") else ""))
        with VerticalScroll():
            yield Static(table)
            yield Static(Text(ascii_words(EXPLAIN) if plain else EXPLAIN))
            yield Static(Text("Esc, q or ? closes this screen", style="dim"))


def _views_at(rows: np.ndarray, ts: float, z: float, h: float, burst: float) -> list[str]:
    """What each view of the ensemble said about the reading at `ts`, in words."""
    if rows.shape[0] == 0:
        return ["(the readings around this moment are no longer kept in memory)"]
    i = int(np.argmin(np.abs(rows[:, COL["ts"]] - ts)))
    r = rows[i]

    def num(name: str) -> float:
        return float(r[COL[name]])

    out = []
    if math.isfinite(num("spike_z")):
        out.append(f"spike: the reading is {abs(num('spike_z')):.1f}× the usual forecast error (fires at {z:g})")
    if math.isfinite(num("cusum")):
        out.append(f"shift: CUSUM {num('cusum'):.1f} σ (fires at h = {h:g})")
    if math.isfinite(num("level_z")):
        out.append(f"level: {abs(num('level_z')):.1f} σ {'above' if num('level_z') > 0 else 'below'} the "
                   f"long-run mean (fires at {z:g})")
    if math.isfinite(num("drift")):
        out.append(f"drift: {num('drift'):.2f} of its limit (fires at 1)")
    if math.isfinite(num("burst")):
        out.append(f"burst: spread {num('burst'):.1f}× the usual (fires at {burst:g}×)")
    if num("rules") >= 1.0:
        out.append(f"a rule fired (its score {num('rules'):.2f}, 1 = at its limit)")
    out.append(f"calibrated anomaly score {num('score'):.2f} (0.5 = the alarm: as rare as 1 in 10,000 readings of "
               "this series, detectors.alarm_rarity)")
    return out


def alert_lines(app: MassApp, ep: Episode, st: RowState) -> Text:
    """ "Alerts: silenced by silence ID (until 10-29 18:00, "storm drill") — stored and listed, not
    notified", or what the alert service did with the episode."""
    out = Text("Alerts: ", style="bold")
    if not app.engine.alerts_enabled:
        out.append("off (mass run --alerts, or alerts.enabled)", "dim")
        return out
    if st.silenced:
        why = st.silenced
        sid = why.split(" ", 1)[1] if why.startswith("silence ") else ""
        sil = next((x for x in app.alert_state.silences() if x.id == sid), None) if sid else None
        out.append(f"silenced by {inert(why, 80)}", "bold")
        if sil is not None:
            ends = datetime.fromtimestamp(sil.ends).astimezone().strftime("%Y-%m-%d %H:%M")  # may be years on
            out.append(f" (until {ends}")
            if sil.comment:
                out.append(f', "{inert(sil.comment, 120)}"')
            out.append(")")
        out.append(" — stored and listed here, not notified", "dim")
        return out
    if st.muted_until is not None:
        out.append(f"muted until {local_time(st.muted_until)} — not notified")
        return out
    words = {"firing": "firing (a notice went out)", "acked": "acknowledged (repeats stop)",
             "resolved": "resolved (the all-clear went out)", "silenced": "silenced"}
    out.append(words.get(st.alert, "no notice yet (below the alert rules, or grouped with another episode)"))
    return out


def _lasted(ep: Episode, clock: float | None) -> str:
    """ "once" (a single reading, as the events list says), "lasted 3 h" or "ongoing for 3 h"."""
    if ep.ongoing(clock):
        return f"ongoing {since_words(ep.duration(clock))}"
    words = lasted_words(ep, clock)
    return words if words == "once" else f"lasted {words}"


class EpisodeScreen(Screen[None]):
    """One episode: what fired and why, what each view said, the chart at that moment, its readings."""

    DEFAULT_CSS = """
    EpisodeScreen #title { background: $panel; }
    EpisodeScreen VerticalScroll { padding: 0 1; }
    EpisodeScreen .chart { border: round $primary-darken-2; padding: 0 1; height: auto; }
    EpisodeScreen .section { margin-top: 1; }
    """
    BINDINGS = [
        Binding("escape", "dismiss", "Back"),
        Binding("a", "ack", "Ack"),
        Binding("m", "mute", "Mute"),
        Binding("g", "go", "Charts at this moment"),
        Binding("left_square_bracket", "step(-1)", "Prev episode"),
        Binding("right_square_bracket", "step(1)", "Next episode"),
    ]

    def __init__(self, app: MassApp, episode: Episode) -> None:
        super().__init__()
        self.mass = app
        self.ep = episode

    def compose(self) -> ComposeResult:
        yield Bar(id="title")
        with VerticalScroll():
            yield LineView(id="summary")
            yield LineView(id="chart", classes="chart")
            yield LineView(id="views", classes="section")
            yield LineView(id="readings", classes="section")
        yield Bar(id="hint")

    def on_mount(self) -> None:
        self.draw()

    def on_resize(self) -> None:
        self.call_after_refresh(self.draw)

    def draw(self) -> None:
        app, ep = self.mass, self.ep
        st = app.row_state(ep)
        imperial = app.imperial
        unit = unit_of(ep.variable)
        peak, shown = to_units(ep.peak_value, unit, imperial)
        state, _ = state_words(ep, st)
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f" {SEVERITY_LOUD.get(ep.severity, ep.severity)} ", app.look.severity_style(ep.severity) +
                     (" reverse" if app.look.color else ""))
        title.append(f" {inert(ep.station, 40)} · {label_of(ep.variable)} · {ep.what}", "bold")
        self.query_one("#title", Bar).show([title])
        width = max(40, self.size.width - 4)
        summary = [
            Text(f"started {local_time(ep.start)} · {_lasted(ep, st.clock)} · peak {fmt(peak, shown)} at "
                 f"{local_time(ep.peak_ts)} · {ep.readings} reading{'s' if ep.readings != 1 else ''} · {state}",
                 no_wrap=True),
            Text(""),
        ]
        reason = Text("Why: ", style="bold")
        reason.append(inert(convert_reason(ep.peak_reason, imperial)), "")
        summary += reason.wrap(app.console, width)
        if ep.last_reason != ep.peak_reason:
            last = Text("Latest: ", style="bold")
            last.append(inert(convert_reason(ep.last_reason, imperial)))
            summary += last.wrap(app.console, width)
        fired = ", ".join(f"{d} ×{n}" for d, n in sorted(ep.detectors.items(), key=lambda x: -x[1]))
        summary.append(Text(f"What fired: {inert(fired)}", style="dim", no_wrap=True, overflow="ellipsis"))
        summary += alert_lines(app, ep, st).wrap(app.console, width)
        self.query_one("#summary", LineView).show(summary)

        snap = app.snapshot
        count = snap.counts.get((ep.station, ep.variable)) if snap else None
        rows = app.state.rows(ep.station, ep.variable, upto=count)
        window = Window()
        if rows.shape[0]:
            window = episode_window(ep.start, ep.start + ep.duration(st.clock), ep.peak_ts,
                                    float(rows[0, COL["ts"]]), float(rows[-1, COL["ts"]]))
        inner = self.query_one("#chart", LineView).size.width or width - 4
        spec = ChartSpec(ep.variable, max(20, inner), 11, app.z, imperial, window, ep.peak_ts)
        chart = build(rows, spec, app.look) if rows.shape[0] else None
        if chart is None:
            chart = [Text("the readings of this moment are no longer kept in memory (the store has them)",
                          style="italic")]
        else:
            chart.append(legend(ep.variable, app.z, imperial, app.look, max(20, inner)))
        self.query_one("#chart", LineView).show(chart)
        self.query_one("#chart", LineView).border_title = Text(
            f"{label_of(ep.variable)} around the peak ({'◆' if app.look.glyphs == 'braille' else 'O'})")

        params = app.engine.params
        views = [Text("What each view of the ensemble said at the peak", style="bold")]
        said = _views_at(rows, ep.peak_ts, app.z, app.h, params.burst_ratio)
        views += [Text(f"  {ascii_words(line) if app.look.glyphs == 'ascii' else line}", no_wrap=True)
                  for line in said]
        self.query_one("#views", LineView).show(views)

        readings = app.state.readings(ep.id)
        lines = [Text(f"Readings ({len(readings)} kept of {ep.readings}), newest first", style="bold"),
                 Text(f"  {'time':11}  {'value':>12}  {'sev':4}  {'score':>5}  {'detector':16}  reason",
                      style="dim", no_wrap=True)]
        for a in reversed(readings[-200:]):
            v, u = to_units(a.value, unit, imperial)
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"  {local_time(a.ts)}  {fmt(v, u):>12}  ")
            line.append(f"{SEVERITY_WORD.get(a.severity, a.severity):4}", app.look.severity_style(a.severity))
            line.append(f"  {a.score:5.2f}  {fit(inert(a.detector, 64), 16)}  ")
            line.append(inert(convert_reason(a.reason, imperial)))
            lines.append(line)
        self.query_one("#readings", LineView).show(lines)
        hint = Text("Esc back · a ack · m mute · g charts at this moment · [ ] previous/next episode of "
                    "this station", style="dim", no_wrap=True, overflow="ellipsis")
        self.query_one("#hint", Bar).show([hint])

    def action_ack(self) -> None:
        store = self.mass.alert_state
        if store.is_acked(self.ep.id):
            store.unack(self.ep.id)
        else:
            store.ack(self.ep.id)
        self.draw()

    def action_mute(self) -> None:
        self.app.push_screen(MuteScreen(self.mass, self.ep, self.ep.station), lambda _: self.draw())

    def action_go(self) -> None:
        self.dismiss()
        self.mass.go_to(self.ep)

    def action_step(self, delta: int) -> None:
        snap = self.mass.snapshot
        if snap is None:
            return
        eps = sorted((e for e in snap.episodes.values() if e.station == self.ep.station),
                     key=lambda e: (e.peak_ts, e.id))
        i = next((k for k, e in enumerate(eps) if e.id == self.ep.id), None)
        if i is not None and 0 <= i + delta < len(eps):
            self.ep = eps[i + delta]
            self.draw()


DURATIONS = [(3600.0, "1 h"), (4 * 3600.0, "4 h"), (24 * 3600.0, "24 h"), (7 * 86400.0, "7 days")]
FOREVER = 100 * 365 * 86400.0


class MuteScreen(ModalScreen[None]):
    """Mute an episode, a variable of a station or a whole station, for a span of data time."""

    DEFAULT_CSS = """
    MuteScreen { align: center middle; }
    MuteScreen > Vertical { width: 76; max-width: 96%; height: auto; max-height: 90%;
                            border: thick $primary; background: $surface; padding: 0 1; }
    MuteScreen OptionList { height: auto; max-height: 20; }
    """
    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, app: MassApp, episode: Episode | None, station: str) -> None:
        super().__init__()
        self.mass = app
        self.ep = episode
        self.station = station
        self.choices: dict[str, tuple[dict[str, str] | None, float, str]] = {}

    def _clock(self) -> float:
        snap = self.mass.snapshot
        info = snap.stations.get(self.station) if snap else None
        if info is not None and info.clock > float("-inf"):
            return info.clock
        return self.ep.last if self.ep is not None else 0.0

    def _span(self, seconds: float, episode: bool = True) -> tuple[float, float]:
        """(start, end) in data time of a mute for `seconds`: an episode's from its start to `seconds` past
        the newest data time (or past the episode's end, if later), so its past readings and the
        next `seconds` of data are muted; a station's or a variable's from now on."""
        clock = self._clock()
        if self.ep is None or not episode:
            return clock, clock + seconds
        return min(clock, self.ep.start), max(clock, self.ep.last) + seconds

    def compose(self) -> ComposeResult:
        options: list[Option] = []
        name = inert(self.station, 40)
        clock = self._clock()
        labels = self.mass.labels_of(self.ep) if self.ep is not None else {"station": self.station}
        current = self.mass.alert_state.is_muted(labels, clock)
        if current is not None:
            what = ", ".join(f"{k}={inert(v, 30)}" for k, v in current.matchers.items())
            self.choices["unmute"] = (None, 0.0, current.id)
            options.append(Option(Text(f"Unmute ({what}, until {local_time(current.ends)})"), id="unmute"))
        if self.ep is not None:
            var = label_of(self.ep.variable)
            for seconds, words in DURATIONS[:3]:
                key = f"ep-{int(seconds)}"
                ends = self._span(seconds)[1]
                self.choices[key] = ({"episode": self.ep.id}, seconds,
                                     f"this {var} episode, from its start to {words} past data time "
                                     f"{local_time(max(clock, self.ep.last))}")
                options.append(Option(Text(f"This episode, to {words} past now (until {local_time(ends)})"),
                                      id=key))
            self.choices["ep-end"] = ({"episode": self.ep.id}, FOREVER, f"this {var} episode until it ends")
            options.append(Option(Text("This episode until it ends"), id="ep-end"))
            for seconds, words in DURATIONS[1:]:
                key = f"var-{int(seconds)}"
                self.choices[key] = ({"station": self.station, "variable": self.ep.variable}, seconds,
                                     f"{var} at {name} for {words}")
                options.append(Option(Text(f"{var} at {name} for {words}"), id=key))
        for seconds, words in DURATIONS[1:]:
            key = f"st-{int(seconds)}"
            self.choices[key] = ({"station": self.station}, seconds, f"all of {name} for {words}")
            options.append(Option(Text(f"All of {name} for {words}"), id=key))
        with Vertical():
            yield Static(Text(f"Mute (spans are data time; now is {local_time(clock) if clock else '?'})",
                              style="bold"))
            yield OptionList(*options, id="mute-options")
            yield Static(Text("Enter chooses · Esc cancels · a muted row stays in the list, dimmed", style="dim"))

    def on_mount(self) -> None:
        for options in self.query(OptionList):
            options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        choice = self.choices.get(event.option.id or "")
        if choice is None:
            return
        matchers, seconds, words = choice
        store = self.mass.alert_state
        if matchers is None:
            store.unmute(words)
            self.mass.notify("unmuted", timeout=3)
        else:
            start, ends = self._span(seconds, episode="episode" in matchers)
            store.mute(matchers, ends, start=start, comment=f"from the UI: {words}")
            self.mass.notify(f"muted {words}", timeout=3, markup=False)
        self.dismiss()
        self.mass.render_all(charts=False)


class MapScreen(Screen[None]):
    """The stations placed by latitude and longitude, coloured by their worst active severity."""

    DEFAULT_CSS = """
    MapScreen #map { width: 1fr; height: 1fr; border: round $primary-darken-2; padding: 0 1; }
    MapScreen StationList { width: 36; height: 1fr; }
    """
    BINDINGS = [Binding("escape,M", "dismiss", "Back")]

    def __init__(self, app: MassApp) -> None:
        super().__init__()
        self.mass = app

    def compose(self) -> ComposeResult:
        yield Bar(id="title")
        with Horizontal():
            yield LineView(id="map")
            yield StationList(id="map-stations")
        yield Bar(id="hint")

    def on_mount(self) -> None:
        self.query_one("#map-stations", StationList).border_title = "stations"
        self.query_one("#map-stations", StationList).focus()
        self.draw()

    def on_resize(self) -> None:
        self.call_after_refresh(self.draw)

    def _worst(self) -> dict[str, int]:
        app = self.mass
        snap = app.snapshot
        worst: dict[str, int] = {}
        if snap is None:
            return worst
        for ep in snap.episodes.values():
            st = app.row_state(ep)
            if ep.ongoing(st.clock) and not st.quiet:
                worst[ep.station] = max(worst.get(ep.station, -1), ep.rank)
        return worst

    def draw(self) -> None:
        app = self.mass
        snap = app.snapshot
        stations = snap.stations if snap else {}
        worst = self._worst()
        sev_of = {rank: sev for sev, rank in RANK.items()}
        order = app._trouble_order(snap) if snap else []
        listing = self.query_one("#map-stations", StationList)
        rows = []
        for name in order:
            sev = sev_of.get(worst.get(name, -1))
            info = stations[name]
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append((SEVERITY_WORD[sev] if sev else "ok").ljust(5),
                        app.look.severity_style(sev) if sev else "dim")
            line.append(inert(name, 24))
            if info.lat is None:
                line.append(" (no position)", "dim")
            rows.append((name, line))
        listing.selected = listing.selected or app.station
        listing.set_rows(rows, empty=[Text("no station yet", style="italic")])
        placed = {n: (i.lat, i.lon) for n, i in stations.items() if i.lat is not None and i.lon is not None}
        view = self.query_one("#map", LineView)
        width = max(20, view.size.width - 2)
        height = max(6, view.size.height - 2)
        self.query_one("#title", Bar).show([Text(f" Station map · {len(placed)} of {len(stations)} stations have "
                                                 f"a position", style="bold", no_wrap=True)])
        self.query_one("#hint", Bar).show([Text("↑↓ choose · Enter opens the station · Esc back", style="dim")])
        if not placed:
            view.show([Text("No station has a position yet (lat and lon in its messages, or in [[stations]] of "
                            "mass.toml).", style="italic")])
            return
        view.show(render_map(placed, worst, listing.selected, width, height, app.look))

    @on(StationList.Highlighted)
    def _moved(self) -> None:
        self.draw()

    @on(StationList.Opened)
    def _open(self, event: StationList.Opened) -> None:
        self.dismiss()
        self.mass.select_station(event.item)


def render_map(placed: dict[str, tuple[float, float]], worst: dict[str, int], selected: str | None,
               width: int, height: int, look) -> list[Text]:  # noqa: ANN001 - a Look
    """Stations on an equirectangular grid of `width` × `height` cells (a cell is about twice as tall
    as wide), with degree lines and labels; the selected station is shown reversed."""
    lats = [p[0] for p in placed.values()]
    lons = [p[1] for p in placed.values()]
    mid_lat = (max(lats) + min(lats)) / 2
    squash = max(0.2, math.cos(math.radians(mid_lat)))
    lat_span = max(max(lats) - min(lats), 1.0) * 1.3
    lon_span = max(max(lons) - min(lons), 1.0) * 1.3
    # Degrees per cell, the same ground distance across and down (cells are 2:1).
    per_col = max(lon_span / (width - 8), lat_span / (height - 2) / 2 / squash)
    per_row = per_col * 2 * squash
    lon0 = (max(lons) + min(lons)) / 2 - per_col * (width - 8) / 2
    lat1 = (max(lats) + min(lats)) / 2 + per_row * (height - 2) / 2
    grid = [[" "] * width for _ in range(height)]
    styles: list[list[str]] = [[""] * width for _ in range(height)]
    step_lon = nice_step(per_col * (width - 8), 4)
    step_lat = nice_step(per_row * (height - 2), 3)
    for r in range(height - 1):
        lat = lat1 - r * per_row
        for c in range(6, width):
            lon = lon0 + (c - 6) * per_col
            on_lat = abs(lat / step_lat - round(lat / step_lat)) * step_lat < per_row / 2
            on_lon = abs(lon / step_lon - round(lon / step_lon)) * step_lon < per_col / 2
            if on_lat and on_lon:
                grid[r][c], styles[r][c] = "+", "dim"
            elif on_lat or on_lon:
                grid[r][c], styles[r][c] = "·", "dim"
        if abs(lat / step_lat - round(lat / step_lat)) * step_lat < per_row / 2:
            label = f"{abs(round(lat / step_lat) * step_lat):g}{'N' if lat >= 0 else 'S'}"[:5]
            for i, ch in enumerate(label.rjust(5)):
                grid[r][i], styles[r][i] = ch, "dim"
    for c in range(6, width):
        lon = lon0 + (c - 6) * per_col
        if abs(lon / step_lon - round(lon / step_lon)) * step_lon < per_col / 2:
            label = f"{abs(round(lon / step_lon) * step_lon):g}{'E' if lon >= 0 else 'W'}"
            for i, ch in enumerate(label):
                if c + i < width:
                    grid[height - 1][c + i], styles[height - 1][c + i] = ch, "dim"
    sev_of = {rank: sev for sev, rank in RANK.items()}
    for name, (lat, lon) in sorted(placed.items(), key=lambda kv: worst.get(kv[0], -1)):
        c = 6 + int(round((lon - lon0) / per_col))
        r = int(round((lat1 - lat) / per_row))
        if not (0 <= r < height - 1 and 0 <= c < width):
            continue
        sev = sev_of.get(worst.get(name, -1))
        style = look.severity_style(sev) if sev else ("green" if look.color else "")
        mark = "●" if look.glyphs != "ascii" else "o"
        if sev == "critical" and not look.color:
            mark = "#"
        label = f"{mark} {inert(name, 18)}"
        if name == selected:
            style = (style + " reverse").strip()
        # One grid cell per terminal cell: a wide character takes two (the second holds ""), a
        # combining one joins the cell before it, and what would pass the right edge is left out.
        at = c
        for start, stop, size in split_graphemes(label)[0]:
            if size == 0:
                continue
            if at + size > width:
                break
            grid[r][at], styles[r][at] = label[start:stop], style
            for k in range(1, size):
                grid[r][at + k], styles[r][at + k] = "", style
            at += size
    out = []
    for r in range(height):
        row = grid[r]
        for i, ch in enumerate(row):  # a label drawn over half of a wide character: a space instead
            if (ch and cell_len(ch) == 2 and (i + 1 >= width or row[i + 1] != "")) or \
                    (ch == "" and (i == 0 or cell_len(row[i - 1]) != 2)):
                row[i] = " "
        text = Text(no_wrap=True)
        for ch, style in zip(row, styles[r], strict=True):
            text.append(ch, style or None)
        out.append(text)
    return out


__all__ = ["EpisodeScreen", "HelpScreen", "help_entries", "help_split", "MapScreen", "MuteScreen", "render_map"]
