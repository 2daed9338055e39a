"""Which episodes the events list shows, in which order, and the chip that says so.

The filter is typed after `/` as words: `sev:warning` (that severity and
worse), `station:MSP` (or `st:`), `var:gust` (or `v:`; a variable name or
label, by substring), `is:ongoing`, `is:muted` (or `is:silenced`), `is:acked`; any other word
must appear in the station, variable, label, what fired or the reason.
All words must match (AND). Pure functions, tested without a terminal.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mass_tui.ui.episodes import RANK, Episode, label_of

SORTS = ("worst", "newest", "longest", "station")
SORT_WORDS = {"worst": "worst first", "newest": "newest first", "longest": "longest first",
              "station": "by station"}


@dataclass(frozen=True)
class EventFilter:
    min_severity: str | None = None
    stations: tuple[str, ...] = ()
    variables: tuple[str, ...] = ()
    states: tuple[str, ...] = ()  # "ongoing", "muted", "acked"
    words: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=(), compare=False)  # words that could not be read

    @property
    def empty(self) -> bool:
        return not (self.min_severity or self.stations or self.variables or self.states or self.words)

    def chips(self) -> list[str]:
        """The filter as short pieces for the chip: "≥ warning", "station MSP", "“gust”"."""
        out = []
        if self.min_severity:
            out.append(f"≥ {self.min_severity}" if self.min_severity != "critical" else "critical")
        out += [f"station {s}" for s in self.stations]
        out += [f"var {v}" for v in self.variables]
        out += list(self.states)
        out += [f"“{w}”" for w in self.words]
        return out


def parse_filter(text: str, min_severity: str | None = None) -> EventFilter:
    """An `EventFilter` from what was typed after `/` (see the module docstring); never raises."""
    try:
        words = shlex.split(text)
    except ValueError:  # an open quote: take the words as they are
        words = text.split()
    sev = min_severity
    stations: list[str] = []
    variables: list[str] = []
    states: list[str] = []
    plain: list[str] = []
    problems: list[str] = []
    for word in words:
        key, sep, value = word.partition(":")
        key = key.lower()
        if not sep or not value:
            plain.append(word)
        elif key in ("sev", "severity"):
            value = value.lower().lstrip(">=")
            match = [s for s in RANK if s.startswith(value)]
            if match:
                sev = match[0]
            else:
                problems.append(word)
        elif key in ("station", "st", "s"):
            stations.append(value)
        elif key in ("var", "variable", "v"):
            variables.append(value)
        elif key == "is" and value.lower() in ("ongoing", "muted", "acked", "active", "silenced"):
            states.append({"active": "ongoing", "silenced": "muted"}.get(value.lower(), value.lower()))
        else:
            plain.append(word)
    return EventFilter(sev, tuple(stations), tuple(variables), tuple(states), tuple(plain), tuple(problems))


@dataclass
class RowState:
    """What the list shows beside an episode: its station's clock and the ack/mute state."""

    clock: float | None = None
    acked: bool = False
    muted_until: float | None = None  # a silence the UI sees (its own `m`, or one it matches) ends then
    silenced: str = ""  # why the alert service holds back its notices (Episode.silenced)
    alert: str = ""  # the alert service's state of it: firing, silenced, acked, resolved ("" none)

    @property
    def quiet(self) -> bool:
        """Muted or silenced: listed, not notified, not in the now strip."""
        return self.muted_until is not None or bool(self.silenced)


def matches(ep: Episode, f: EventFilter, state: RowState) -> bool:
    if f.min_severity and ep.rank < RANK[f.min_severity]:
        return False
    if f.stations and not any(s.lower() == ep.station.lower() or s.lower() in ep.station.lower()
                              for s in f.stations):
        return False
    if f.variables:
        names = f"{ep.variable} {label_of(ep.variable)}".lower()
        if not any(v.lower() in names for v in f.variables):
            return False
    for st in f.states:
        if st == "ongoing" and not ep.ongoing(state.clock):
            return False
        if st == "muted" and not state.quiet:
            return False
        if st == "acked" and not state.acked:
            return False
    if f.words:
        hay = f"{ep.station} {ep.variable} {label_of(ep.variable)} {ep.what} {ep.peak_reason} {ep.last_reason}".lower()
        if not all(w.lower() in hay for w in f.words):
            return False
    return True


def sort_key(mode: str, state_of: Callable[[Episode], RowState]) -> Callable[[Episode], tuple]:
    """The order of the list. "worst": unmuted before muted, ongoing before ended, then severity,
    then the newest reading; "newest"; "longest"; "station" (then variable, then start)."""
    if mode == "newest":
        return lambda e: (-e.last, e.id)
    if mode == "longest":
        return lambda e: (-e.duration(state_of(e).clock), -e.last, e.id)
    if mode == "station":
        return lambda e: (e.station, e.variable, -e.start, e.id)

    def worst(e: Episode) -> tuple:
        st = state_of(e)
        return (st.quiet, st.acked, not e.ongoing(st.clock), -e.rank, -e.last, e.id)

    return worst


def select(episodes: Sequence[Episode], f: EventFilter, mode: str,
           state_of: Callable[[Episode], RowState]) -> list[Episode]:
    """The episodes the list shows, in order."""
    shown = [e for e in episodes if matches(e, f, state_of(e))] if not f.empty else list(episodes)
    shown.sort(key=sort_key(mode, state_of))
    return shown


def chip(shown: int, total: int, f: EventFilter, mode: str) -> str:
    """ "12 of 80 · ≥ warning · station MSP · worst first" (just "80 episodes · worst first" unfiltered)."""
    head = f"{total} episode{'s' if total != 1 else ''}" if f.empty else f"{shown} of {total}"
    parts = [head, *f.chips()]
    if f.problems:
        parts.append("not understood: " + " ".join(f.problems))
    parts.append(SORT_WORDS.get(mode, mode))
    return " · ".join(parts)
