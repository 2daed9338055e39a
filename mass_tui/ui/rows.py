"""The words on screen: event rows at any width, the "now" strip, durations, times.

Pure functions of an episode and what the UI knows about it (clock, ack,
silence, units), so every width and both unit systems are tested without
a terminal. Every string that came from data goes through `inert()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text

from mass_tui.ui.episodes import Episode, label_of, unit_of
from mass_tui.ui.event_filter import RowState
from mass_tui.ui.look import Look
from mass_tui.ui.text import fit, inert
from mass_tui.ui.units import convert_reason, fmt, to_units

SEVERITY_WORD = {"critical": "CRIT", "warning": "WARN", "info": "info"}
SEVERITY_LOUD = {"critical": "CRITICAL", "warning": "WARNING", "info": "info"}


SCORE_BANDS = (0.2, 0.5, 0.8)  # the README's score table: 1 in 100, the alarm (1 in 10^4), 1 in 10^8


def score_band(score: float) -> int:
    """0 ordinary, 1 elevated (rarer than 1 in 100 readings at the default alarm level), 2 at the
    alarm, 3 critical-rare: the anchors of the anomaly score's scale (README, "What the score means")."""
    return sum(score >= edge for edge in SCORE_BANDS)


def duration_words(seconds: float) -> str:
    """ "45 s", "12 min", "3 h", "3 h 10 min", "2 d 4 h"."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s} s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 3600:
        return f"{minutes} min"
    if s < 86400:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"


def short_duration(seconds: float) -> str:
    """ "45s", "12m", "3h10", "2d4h": for narrow columns."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}" if s % 3600 >= 60 else f"{s // 3600}h"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def local_time(ts: float, with_date: bool = True) -> str:
    dt = datetime.fromtimestamp(ts).astimezone()
    return dt.strftime("%m-%d %H:%M" if with_date else "%H:%M")


def state_words(ep: Episode, st: RowState) -> tuple[str, str]:
    """(word, style) of an episode's state: muted (by the UI's silence, with what is left of it),
    silenced (the alert service holds its notices back), acked, firing (an alert went out and it is
    ongoing), ongoing or ended."""
    if st.muted_until is not None and st.clock is not None:
        left = st.muted_until - st.clock
        return (f"muted {short_duration(left)}" if left < 86400 * 30 else "muted"), "dim italic"
    if st.silenced:
        return "silenced", "dim italic"
    if st.acked:
        return "✓ acked", "dim"
    if ep.ongoing(st.clock):
        return ("● firing" if st.alert == "firing" else "● now"), "bold"
    return "ended", "dim"


@dataclass(frozen=True)
class Column:
    name: str
    width: int  # 0: takes what is left


def event_columns(width: int) -> list[Column]:
    """Which columns fit in `width` cells: severity, station, variable, state and a reason always
    (the reason cut to what is left); duration, peak, start, what fired, readings as room allows."""
    cols = [Column("sev", 4), Column("station", 10), Column("variable", 11), Column("state", 9)]
    extras = [(70, Column("duration", 7)), (88, Column("peak", 11)), (104, Column("start", 11)),
              (124, Column("what", 16)), (136, Column("readings", 5))]
    for need, col in extras:
        if width >= need:
            cols.append(col)
    if width >= 150:
        cols[1] = Column("station", 16)
        cols[2] = Column("variable", 16)
    cols.append(Column("reason", 0))
    order = ["sev", "station", "variable", "what", "state", "start", "duration", "peak", "readings", "reason"]
    return sorted(cols, key=lambda c: order.index(c.name))


HEADINGS = {"sev": "sev", "station": "station", "variable": "variable", "what": "what fired", "state": "state",
            "start": "started", "duration": "for", "peak": "peak", "readings": "n", "reason": "reason"}


def _fit(text: str, width: int) -> str:
    """`text` in a column of `width` terminal cells (a name in CJK or with emoji takes two a character)."""
    return text if width <= 0 else fit(text, width)


def event_header(width: int) -> Text:
    out = Text(no_wrap=True, style="bold")
    for i, col in enumerate(event_columns(width)):
        out.append(("" if i == 0 else " ") + _fit(HEADINGS[col.name], col.width))
    return out


def event_row(ep: Episode, st: RowState, width: int, imperial: bool, look: Look) -> Text:
    """One episode as one line of `width` cells."""
    unit = unit_of(ep.variable)
    value, shown = to_units(ep.peak_value, unit, imperial)
    state, state_style = state_words(ep, st)
    cells = {
        "sev": (SEVERITY_WORD.get(ep.severity, ep.severity), look.severity_style(ep.severity)),
        "station": (inert(ep.station), ""),
        "variable": (label_of(ep.variable), ""),
        "what": (ep.what, ""),
        "state": (state, state_style),
        "start": (local_time(ep.start), "dim"),
        "duration": (short_duration(ep.duration(st.clock)) if ep.readings > 1 or ep.ongoing(st.clock) else "once",
                     ""),
        "peak": (fmt(value, shown), ""),
        "readings": (str(ep.readings), "dim"),
        "reason": (inert(convert_reason(ep.peak_reason, imperial)), "dim" if st.quiet else ""),
    }
    out = Text(no_wrap=True, overflow="ellipsis")
    used = 0
    for i, col in enumerate(event_columns(width)):
        sep = "" if i == 0 else " "
        text, style = cells[col.name]
        w = col.width if col.width else max(1, width - used - len(sep))
        out.append(sep)
        out.append(_fit(text, w), style or None)
        used += len(sep) + w
    if st.quiet:
        out.stylize("dim")
    return out


def episode_words(ep: Episode) -> str:
    """The variable and what fired, without saying a word twice: "wind gust over limit" (not "wind gust
    gust over limit"), "sea-level pressure falling", "wave height sudden jump"."""
    label = label_of(ep.variable).lower()
    what = ep.what
    last = label.split()[-1] if label.split() else ""
    if last and what.lower().split()[:1] == [last]:
        what = what.split(" ", 1)[1] if " " in what else ""
    return f"{label} {what}".strip()


def lasted_words(ep: Episode, clock: float | None) -> str:
    """How long an episode lasted, as the events list says it: "once" for a single reading that has
    ended, else "3 h 10 min"."""
    if ep.readings <= 1 and not ep.ongoing(clock):
        return "once"
    return duration_words(ep.duration(clock))


_FELL = re.compile(r"pressure (fell|rose) (?P<size>[\d.]+ \S+) in (?P<span>.+)$")


def now_phrase(ep: Episode, st: RowState, imperial: bool, with_station: bool) -> str:
    """What a person on call reads first: "gust 22.5 m/s for 3 h", "pressure falling 4.5 hPa/3 h"."""
    label = label_of(ep.variable).lower()
    unit = unit_of(ep.variable)
    value, shown = to_units(ep.peak_value, unit, imperial)
    reason = convert_reason(ep.peak_reason, imperial)
    m = _FELL.search(reason)
    if ep.family == "pressure_tendency" and m:
        span = m["span"].replace(" min", "min").replace(" h", "h").replace("h ", "h")
        what = f"pressure {'falling' if m[1] == 'fell' else 'rising'} {m['size']}/{span}"
    elif ep.family == "gust_limit":
        what = f"gust {fmt(value, shown, 3)}"
    elif ep.variable == ep.family:  # a composite rule ("fire"): its own name is the variable
        what = f"{ep.family} pattern"
    else:
        what = f"{label} {ep.what} ({fmt(value, shown, 4)})"
    where = f"{inert(ep.station, 24)} " if with_station else ""
    return f"{where}{what} {since_words(ep.duration(st.clock))}"


def since_words(seconds: float) -> str:
    """How long an ongoing episode has lasted, as a sentence ends: "for 3 h"; "just now" at its onset
    (its first reading: "for 0 s" read as a fault)."""
    return "just now" if seconds < 1.0 else f"for {duration_words(seconds)}"


def now_strip(active: list[tuple[Episode, RowState]], imperial: bool, look: Look, width: int,
              with_station: bool, muted: int = 0, quiet_note: str = "") -> Text:
    """The always-visible line: the active episodes, worst first, each with its severity."""
    out = Text(no_wrap=True, overflow="ellipsis")
    if not active:
        out.append("✓ " if look.glyphs == "braille" else "ok ", "bold green" if look.color else "bold")
        out.append(quiet_note or "no active anomaly")
    for i, (ep, st) in enumerate(active):
        if i:
            out.append(" · ", "dim")
        if i == 0 or active[i - 1][0].severity != ep.severity:
            sign = look.warn_sign + " " if ep.severity != "info" else ""
            out.append(f"{sign}{SEVERITY_LOUD.get(ep.severity, ep.severity)}", look.severity_style(ep.severity))
            out.append(" ")
        out.append(now_phrase(ep, st, imperial, with_station))
        if st.acked:
            out.append(" ✓", "dim")
    if muted:
        out.append(f"  ({muted} muted)", "dim")
    out.truncate(width, overflow="ellipsis")
    return out
