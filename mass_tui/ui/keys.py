"""Bindings are data: the key bar, the `?` help screen and the command palette come from this list.

Each binding has an id (for remapping), a short description (the key bar)
and, here, a group and search words (help and palette). Keys handled by
a focused list (arrows, Enter) are in `LIST_KEYS`, shown on the help screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    binding: Binding
    group: str
    words: str = ""  # more words the palette finds it by
    footer: int = 0  # 0: not in the key bar; else its order there (lower first)


def _k(key: str, action: str, desc: str, group: str, words: str = "", footer: int = 0, show: bool = True,
       id: str | None = None) -> Key:  # noqa: A002 - Binding's own name
    return Key(Binding(key, action, desc, show=show, id=id or action), group, words, footer)


KEYS: list[Key] = [
    _k("question_mark", "help", "Help", "general", "keys documentation", footer=98),
    _k("q", "quit", "Quit", "general", "exit leave close", footer=99),
    _k("space", "pause", "Pause", "general", "freeze stop resume", footer=6),
    _k("slash", "filter", "Filter", "events", "search find severity station variable", footer=3),
    _k("exclamation_mark", "severity", "Min severity", "events", "critical warning filter", footer=0),
    _k("o", "sort", "Sort", "events", "order newest worst longest", footer=0),
    _k("a", "ack", "Ack", "events", "acknowledge", footer=1),
    _k("m", "mute", "Mute", "events", "silence snooze quiet", footer=2),
    _k("s", "next_station", "Next station", "stations", "station", footer=4),
    _k("S", "previous_station", "Prev station", "stations", "station back", footer=0),
    _k("M", "map", "Map", "stations", "map where lat lon", footer=7),
    _k("D", "daily", "Daily summary", "stations", "daily summary day history max gust rain", footer=0),
    _k("left_square_bracket", "step(-1)", "Prev anomaly", "time", "previous episode", id="prev_anomaly"),
    _k("right_square_bracket", "step(1)", "Next anomaly", "time", "next anomaly episode", footer=0, id="next_anomaly"),
    _k("plus,equals_sign", "zoom(0.5)", "Zoom in", "time", "zoom narrower", footer=0, id="zoom_in"),
    _k("minus", "zoom(2.0)", "Zoom out", "time", "zoom wider", footer=0, id="zoom_out"),
    _k("comma,less_than_sign", "pan(-0.5)", "Back in time", "time", "pan earlier history", footer=0, id="pan_back"),
    _k("full_stop,greater_than_sign", "pan(0.5)", "Forward", "time", "pan later", footer=0, id="pan_forward"),
    _k("escape", "clear", "Live / clear", "time", "live now clear filter", footer=0),
    _k("u", "toggle_units", "Units", "view", "imperial metric fahrenheit mph", footer=8),
    _k("d", "dense", "Dense/charts", "view", "compact one line", footer=9),
    _k("e", "focus('events')", "Events", "view", "list table anomalies", footer=0, id="focus_events"),
    _k("v", "focus('panes')", "Variables", "view", "panes charts", footer=0, id="focus_panes"),
    _k("l", "focus('stations')", "Station list", "view", "stations", footer=0, id="focus_stations"),
    _k("Z", "raise_z", "Fewer alarms", "thresholds", "threshold alarm rarity rarer raise less sensitive",
       footer=10),
    _k("z", "lower_z", "More alarms", "thresholds", "threshold alarm rarity commoner lower more sensitive",
       footer=11),
    _k("C", "raise_h", "Fewer critical", "thresholds", "threshold critical severity rarer", footer=12),
    _k("c", "lower_h", "More critical", "thresholds", "threshold critical severity commoner", footer=13),
    _k("t", "switch_transport", "Kafka/file", "source", "transport kafka file", footer=0),
    _k("r", "retry", "Retry source", "source", "reconnect now down", footer=0),
]
for _n in range(1, 10):
    KEYS.append(_k(str(_n), f"pane({_n})", f"Pane {_n}", "view", "", show=False, id=f"pane_{_n}"))

BINDINGS: list[Binding] = [k.binding for k in KEYS]

KEY_NAMES = {"space": "space", "slash": "/", "question_mark": "?", "escape": "Esc", "exclamation_mark": "!",
             "left_square_bracket": "[", "right_square_bracket": "]", "plus": "+", "equals_sign": "=",
             "minus": "-", "comma": ",", "less_than_sign": "<", "full_stop": ".", "greater_than_sign": ">",
             "enter": "Enter"}

GROUPS = {"events": "Events", "stations": "Stations", "time": "Charts and time", "view": "View",
          "thresholds": "Thresholds", "source": "Source", "general": "General"}

# Keys of the focused list or pane, for the help screen.
LIST_KEYS = [
    ("↑ ↓ PgUp PgDn", "move in the events or station list, between panes"),
    ("Enter", "events: the episode's detail; stations: open it; a pane: expand or fold its chart"),
    ("g", "in an episode's detail: the main charts at its peak (Esc: back to live)"),
    ("Tab", "the next part of the screen (stations, panes, events)"),
    ("1 … 9", "jump to variable pane 1 … 9"),
    ("ctrl+wheel", "zoom the chart under the mouse; shift+wheel pans"),
    ("ctrl+p", "command palette: stations and actions by name"),
]


def key_name(key: str) -> str:
    """The text a person types: "/" for slash, "+" for "plus,equals_sign"."""
    first = key.split(",")[0]
    return KEY_NAMES.get(first, first)


def footer_keys() -> list[Key]:
    return sorted((k for k in KEYS if k.footer and k.binding.action not in ("help", "quit")), key=lambda k: k.footer)
