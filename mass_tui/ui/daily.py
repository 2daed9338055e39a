"""The daily-summary screen (`D`): one line per UTC day of a station, as a weather observer's log.

It reads the daily records of the store's `aggregates.jsonl` (rotated files
included; the last record of a day counts) in a thread worker, and adds the
days still open (today so far) from the running aggregates sink. `s` moves to
the next station that has summaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from mass_tui.sinks.aggregates import AGGREGATES
from mass_tui.store import JsonlStore
from mass_tui.ui.units import DECIMALS, spread_units, to_units

# Each column's title and the stored unit shown after it ("" for none): `u` shows it in the chosen system.
_COLUMNS = (("day (UTC)", ""), ("max gust", "m/s"), ("at", ""), ("max wind", ""), ("temp min", "°C"),
            ("temp max", ""), ("mean", ""), ("rain", "mm"), ("pressure", "hPa"), ("range", ""), ("obs", ""))


def columns(imperial: bool = False) -> tuple[str, ...]:
    """The column titles, their units in the chosen system (`u`: mph, °F, in, inHg)."""
    return tuple(f"{title} {to_units(0.0, unit, imperial)[1]}" if unit else title for title, unit in _COLUMNS)


def read_daily(db_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """station -> day -> the last daily record of that day in the store's aggregates files."""
    store = JsonlStore.__new__(JsonlStore)  # only to list files: no directory is created
    store.db_dir = Path(db_dir)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not store.db_dir.is_dir():
        return out
    for path in store.files(AGGREGATES):
        with open(path, "rb") as fh:
            for line in fh:
                if b'"kind":"daily"' not in line:  # most lines are windows: skip them unparsed
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a torn last line
                if isinstance(record, dict) and isinstance(record.get("station"), str):
                    out.setdefault(record["station"], {})[str(record.get("day"))] = record
    return out


def _num(value: Any, unit: str = "", imperial: bool = False, spread: bool = False) -> str:
    """A stored (metric) figure in the chosen system, with its unit's usual decimals; "" for none."""
    if value is None:
        return ""
    shown, unit = (spread_units if spread else to_units)(float(value), unit, imperial)
    return f"{shown:.{DECIMALS.get(unit, 1)}f}"


def row_of(r: Mapping[str, Any], imperial: bool = False) -> tuple[Any, ...]:
    """One table row: empty cells for what the station does not report; `imperial` as `u` shows."""
    at = str(r.get("gust_max_ts") or "")[11:16]
    pressure = "" if r.get("pressure_min") is None else (
        f"{_num(r['pressure_min'], 'hPa', imperial)}–{_num(r['pressure_max'], 'hPa', imperial)}")
    day = Text(str(r.get("day")) + ("" if r.get("final", True) else " …"), style="" if r.get("final", True)
               else "italic")
    return (day, _num(r.get("gust_max"), "m/s", imperial), at, _num(r.get("wind_max"), "m/s", imperial),
            _num(r.get("temp_min"), "°C", imperial), _num(r.get("temp_max"), "°C", imperial),
            _num(r.get("temp_mean"), "°C", imperial), _num(r.get("precip_total"), "mm", imperial), pressure,
            _num(r.get("pressure_range"), "hPa", imperial, spread=True), str(r.get("observations", "")))


class DailyScreen(ModalScreen[None]):
    """Daily summaries of one station, newest day first; days still open are marked "…"."""

    DEFAULT_CSS = """
    DailyScreen { align: center middle; }
    DailyScreen > Vertical { width: 110; max-width: 98%; height: 90%; border: thick $primary;
                             background: $surface; padding: 0 1; }
    DailyScreen DataTable { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q,D", "dismiss", "Close"), Binding("s", "next_station", "Station"),
                Binding("u", "units", "Units")]

    def __init__(self, db_dir: Path, station: str | None, open_days: Any = None) -> None:
        """`open_days(station)` gives the daily records of days not closed yet (the aggregates sink's)."""
        super().__init__()
        self.db_dir = Path(db_dir)
        self.station = station
        self.open_days = open_days
        self.days: dict[str, dict[str, dict[str, Any]]] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="daily-title")
            yield DataTable(id="daily", zebra_stripes=True, cursor_type="row")
            yield Static("[dim]UTC days; … = not closed yet. s: next station · u: units · Esc, q or D: "
                         "close[/dim]")

    @property
    def imperial(self) -> bool:
        """The app's choice of units (`u`), metric when the app has none."""
        return bool(getattr(self.app, "imperial", False))

    def on_mount(self) -> None:
        self._load()

    def action_units(self) -> None:
        """`u` here as on the main screen: the app's units switched, this table shown in them."""
        toggle = getattr(self.app, "action_toggle_units", None)
        if toggle is not None:
            toggle()
        self._show()

    @work(thread=True, exclusive=True, group="daily")
    def _load(self) -> None:
        days = read_daily(self.db_dir)
        self.app.call_from_thread(self._loaded, days)

    def _loaded(self, days: dict[str, dict[str, dict[str, Any]]]) -> None:
        self.days = days
        if self.station is None or (self.station not in days and not self._open(self.station)):
            self.station = next(iter(sorted(days)), self.station)
        self._show()

    def _open(self, station: str) -> list[dict[str, Any]]:
        return list(self.open_days(station)) if self.open_days is not None and station else []

    def _show(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns(*columns(self.imperial))
        station = self.station
        if station is None:
            self.query_one("#daily-title", Static).update(Text("No daily summaries stored yet"))
            return
        days = dict(self.days.get(station, {}))
        for r in self._open(station):
            days[str(r.get("day"))] = r  # today so far supersedes a summary written at the last stop
        for day in sorted(days, reverse=True):
            table.add_row(*row_of(days[day], self.imperial), key=day)
        self.query_one("#daily-title", Static).update(
            Text.assemble(("Daily summary: ", "bold"), (station, "bold cyan"), f"  ({len(days)} days)"))

    def action_next_station(self) -> None:
        names = sorted(self.days)
        if not names:
            return
        i = names.index(self.station) if self.station in names else -1
        self.station = names[(i + 1) % len(names)]
        self._show()
