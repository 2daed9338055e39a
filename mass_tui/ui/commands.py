"""The command palette (ctrl+p): stations by name and actions by words.

Typing part of a station's name offers "station NAME" (opens it) and
"events of NAME" (filters the list to it); typing "mute", "imperial",
"critical", "map" finds the action whatever its key. Names from data are
shown as plain text, never parsed as markup (the fuzzy matcher's own
highlighting would parse them, so it is not used for them).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from mass_tui.ui.keys import KEYS, key_name
from mass_tui.ui.text import inert

if TYPE_CHECKING:
    from mass_tui.ui.app import MassApp

# More than a key can say: filters and views as commands of their own.
EXTRA = [
    ("Show only critical events", "severity filter critical", "set_filter_critical"),
    ("Show warning and critical events", "severity filter warning", "set_filter_warning"),
    ("Show ongoing events only", "active now ongoing filter", "set_filter_ongoing"),
    ("Clear the events filter", "filter clear all", "clear_filter"),
]


class MassCommands(Provider):
    """Stations and actions for the palette."""

    @property
    def mass(self) -> MassApp:
        return self.app  # type: ignore[return-value]

    def _stations(self) -> list[str]:
        app = self.mass
        snap = getattr(app, "snapshot", None)
        if snap is None:
            return []
        return app._station_order or sorted(snap.stations)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.mass
        for name in self._stations():
            shown = inert(name, 60)
            for text, command, help_text in (
                (f"station {shown}", partial(app.select_station, name), "show this station's charts"),
                (f"events of {shown}", partial(app.set_filter, f"station:{_quote(name)}"),
                 "filter the events list to this station"),
            ):
                score = matcher.match(text)
                if score > 0:
                    yield Hit(score, Text(text), command, text=text, help=help_text)
        for k in KEYS:
            b = k.binding
            if not b.show or b.action == "quit":
                continue
            text = f"{b.description} ({key_name(b.key)})"
            score = max(matcher.match(text), matcher.match(f"{b.description} {k.words}") * 0.9)
            if score > 0:
                yield Hit(score, Text(text), partial(app.run_action, b.action), text=text,
                          help=f"{k.group}: {k.words}")
        for title, words, method in EXTRA:
            score = max(matcher.match(title), matcher.match(f"{title} {words}") * 0.9)
            if score > 0:
                yield Hit(score, Text(title), getattr(self, method), text=title, help=words)

    async def discover(self) -> Hits:
        app = self.mass
        for name in self._stations()[:30]:
            text = f"station {inert(name, 60)}"
            yield DiscoveryHit(Text(text), partial(app.select_station, name), text=text,
                               help="show this station's charts")
        for title, words, method in EXTRA:
            yield DiscoveryHit(Text(title), getattr(self, method), text=title, help=words)

    def set_filter_critical(self) -> None:
        self.mass.set_filter(self.mass.filter_text, "critical")

    def set_filter_warning(self) -> None:
        self.mass.set_filter(self.mass.filter_text, "warning")

    def set_filter_ongoing(self) -> None:
        text = self.mass.filter_text
        self.mass.set_filter(text if "is:ongoing" in text else f"{text} is:ongoing".strip())

    def clear_filter(self) -> None:
        self.mass.set_filter("", "")


def _quote(name: str) -> str:
    return f'"{name}"' if any(c.isspace() for c in name) else name
