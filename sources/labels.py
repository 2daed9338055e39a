"""Station labels: the key/value set that rule matchers, silences and alert grouping select on.

A station's labels are its name, its source, its kind and its tags, e.g.
`{"station": "smoke-2", "source": "simulator:smoke", "kind": "smoke",
"building": "b1", "floor": "2", "room": "corridor"}`. The kind says what
sort of instrument it is ("weather", "smoke", "building"): from a `kind` tag,
else from the `[[stations]]` entry of that name, else from the source.
A station of unknown kind has no "kind" label.
"""

from __future__ import annotations

from collections.abc import Mapping

# Source name (before any ":") or exact source -> the kind of station it carries.
_KIND_BY_SOURCE = {
    "simulator:smoke": "smoke",
    "simulator:building": "building",
    "simulator": "building",
    "open-meteo": "weather",
    "openweathermap": "weather",
    "ndbc": "weather",
    "asos": "weather",
}


def kind_of_source(source: str) -> str | None:
    """The kind of station a source carries, or None when the source says nothing of it."""
    if source in _KIND_BY_SOURCE:
        return _KIND_BY_SOURCE[source]
    return _KIND_BY_SOURCE.get(source.partition(":")[0])


def station_labels(station: str, source: str, tags: Mapping[str, str] | None = None,
                   configured_kind: str | None = None) -> dict[str, str]:
    """The labels of one station (see the module docstring); tags never override station or source."""
    labels: dict[str, str] = dict(tags or {})
    kind = labels.get("kind") or configured_kind or kind_of_source(source)
    labels.pop("kind", None)
    if kind:
        labels["kind"] = kind
    labels["station"] = station
    labels["source"] = source
    return labels
