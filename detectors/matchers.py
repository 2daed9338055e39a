"""Matchers: which stations a rule applies to, by their labels.

A matcher is a table of label -> pattern, e.g. `{ kind = "smoke" }` or
`{ kind = ["weather", ""], station = "buoy-*" }`. A station matches when
every label matches one of its patterns: shell-style globs (`fnmatch`, case
sensitive), and "" matches a station without that label, as in
Alertmanager's matchers. An empty matcher matches every station.

Labels are the station's name, source, kind and tags (`sources.labels`).
A station of unknown kind (a CSV replayed without one) gets the kind its
variables imply (`infer_kind`), so a recorded storm still gets the weather
rules and a recorded desert afternoon does not get the smoke-sensor ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

# Variables that say what kind of instrument reports them (the first kind that matches wins).
# Wind, rain, cloud and the sea are measured outdoors only: a weather station that also carries an
# air-quality sensor (TVOC, eCO2) stays a weather station. Pressure and dewpoint come from indoor
# sensors too (a BME680 gives temperature, humidity, pressure and VOC), so they tell only when no
# smoke or building variable does.
_KIND_VARIABLES = (
    ("weather", frozenset({"wind_mps", "gust_mps", "precip_mm", "cloud_cover_pct", "wave_height_m",
                           "water_temp_c"})),
    ("smoke", frozenset({"tvoc_ppb", "eco2_ppm", "fire_alarm"})),
    ("building", frozenset({"co2_ppm", "occupancy", "energy_kwh"})),
    ("weather", frozenset({"pressure_hpa", "pressure_msl_hpa", "dewpoint_c"})),
)


KINDS = frozenset(kind for kind, _marks in _KIND_VARIABLES)  # the kinds `infer_kind` gives


def infer_kind(variables: Iterable[str]) -> str | None:
    """The kind of station that reports these variables, or None (temperature alone says nothing)."""
    return kind_evidence(variables)[0]


def kind_evidence(variables: Iterable[str]) -> tuple[str | None, list[str]]:
    """(the kind these variables imply, the variables that tell it), or (None, [])."""
    names = set(variables)
    for kind, marks in _KIND_VARIABLES:
        if names & marks:
            return kind, sorted(names & marks)
    return None, []


class MatcherError(ValueError):
    """A matcher table of the wrong shape; the message names where it is and what was expected."""


class Matcher:
    """Label patterns a station must match (see the module docstring)."""

    __slots__ = ("patterns",)

    def __init__(self, table: Mapping[str, Any] | None = None, where: str = "match") -> None:
        if table is None:
            table = {}
        if not isinstance(table, Mapping):
            raise MatcherError(f"{where} = {table!r}: expected a table of label = \"pattern\" or [patterns]")
        patterns: dict[str, tuple[str, ...]] = {}
        for label, value in table.items():
            values = value if isinstance(value, list | tuple) else [value]
            if not values or not all(isinstance(v, str) for v in values):
                raise MatcherError(f"{where}.{label} = {value!r}: expected a string or a list of strings")
            patterns[str(label)] = tuple(values)
        self.patterns = patterns

    def matches(self, labels: Mapping[str, str]) -> bool:
        for label, options in self.patterns.items():
            have = labels.get(label)
            if not any((have is None and p == "") or (have is not None and fnmatchcase(have, p))
                       for p in options):
                return False
        return True

    def describe(self) -> str:
        return ", ".join(f"{k}={'|'.join(v)}" for k, v in self.patterns.items()) or "every station"

    def __repr__(self) -> str:
        return f"Matcher({self.patterns!r})"
