"""The shapes of the configuration's named tables: rule tables, stations, and the alert tables.

Scalars live in `config.SETTINGS`. The tables here are keyed by names a
user chooses (a variable, a rule's name) or are lists of tables, so each
has a `Table` entry saying what its keys must be and what fields each entry
has; a check per field says what is expected. Adding a key to a rule is one
line in `FIELDS`. Every problem comes back as a `Problem` (key, value, what
was expected); `config.load_config` adds where the value came from and
raises it as a `ConfigError`, for `mass config` as for every command.

A misspelt variable or detector name is an error, with the closest known
name suggested: a rule on `temp_cc` would otherwise never fire.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sources.text import has_controls
from sources.variables import REGISTRY

SEVERITIES = ("info", "warning", "critical")
MAX_NAME_CHARS = 128
MAX_LIST = 64

# A check returns None when the value is fine, else what was expected.
Check = Callable[[Any], str | None]


@dataclass
class Problem:
    """One bad value: `key = value`, and what was expected."""

    key: str
    value: Any
    expected: str
    unknown: bool = False  # the key itself is not known (the value is then not shown)

    def text(self, origin: str) -> str:
        if self.unknown:
            return f"{self.key} (from {origin}): {self.expected}"
        shown = repr(self.value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        return f"{self.key} = {shown} (from {origin}): expected {self.expected}"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def number(low: float, high: float, *, low_open: bool = False, unit: str = "") -> Check:
    """A finite number in [low, high] (or (low, high] with `low_open`)."""
    expected = f"a number{' of ' + unit if unit else ''} in {'(' if low_open else '['}{low:g}, {high:g}]"

    def check(v: Any) -> str | None:
        ok = _is_number(v) and (v > low if low_open else v >= low) and v <= high
        return None if ok else expected

    return check


def integer(low: int, high: int) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
        return None if ok else f"an integer in [{low}, {high}]"

    return check


def choice(*options: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v in options else f"one of {', '.join(options)}"

    return check


def name_text(v: Any) -> str | None:
    """A non-empty name without control characters, at most MAX_NAME_CHARS long."""
    if not isinstance(v, str) or not v.strip() or len(v) > MAX_NAME_CHARS or has_controls(v):
        return f"a non-empty name of at most {MAX_NAME_CHARS} characters without control characters"
    return None


def _suggest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.5)
    return f" (did you mean {close[0]}?)" if close else ""


def unknown_variable(name: Any) -> str | None:
    if isinstance(name, str) and name in REGISTRY:
        return None
    known = sorted(REGISTRY)
    return f"a variable of the registry, not {name!r}{_suggest(str(name), known)}: {', '.join(known)}"


def list_of(item: Check, *, low: int = 0, high: int = MAX_LIST, what: str = "items") -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or not low <= len(v) <= high:
            return f"a list of {low} to {high} {what}"
        for x in v:
            problem = item(x)
            if problem is not None:
                return f"a list of {what}; {x!r}: expected {problem}"
        return None

    return check


def _number_item(v: Any) -> str | None:
    return None if _is_number(v) else "a number"


def _severity_item(v: Any) -> str | None:
    return choice(*SEVERITIES)(v)


def indicator(v: Any) -> str | None:
    """`variable >= number` or `variable <= number`, the variable known."""
    parts = v.split() if isinstance(v, str) else []
    if len(parts) != 3 or parts[1] not in (">=", "<="):
        return "'variable >= number' or 'variable <= number'"
    try:
        level = float(parts[2])
    except ValueError:
        return f"'variable >= number' ({parts[2]!r} is not a number)"
    if not math.isfinite(level):
        return f"'variable >= number' ({parts[2]!r} is not finite)"
    return unknown_variable(parts[0])


def flat_tags(v: Any) -> str | None:
    ok = isinstance(v, dict) and len(v) <= MAX_LIST and all(
        name_text(k) is None and isinstance(x, str) and len(x) <= MAX_NAME_CHARS and not has_controls(x)
        for k, x in v.items())
    return None if ok else f"a flat table of at most {MAX_LIST} name = \"text\" pairs without control characters"


def time_zone(v: Any) -> str | None:
    from sources.times import zone

    if isinstance(v, str) and not has_controls(v):
        try:
            zone(v)
            return None
        except ValueError:
            pass
    return "an IANA time zone such as America/Chicago"


def detector_names(extra: list[str]) -> list[str]:
    """Every name an anomaly's `detector` can have (what alert rules select), plus `extra`
    (the composite rules' names): the ensemble and its views, and every rule and detector class."""
    import importlib
    import pkgutil

    import detectors
    from detectors.base import Detector
    from detectors.ensemble import COMPONENTS

    for module in pkgutil.iter_modules(detectors.__path__):  # a new detector module counts at once
        importlib.import_module(f"detectors.{module.name}")
    names = {"ensemble", *(f"ensemble/{c}" for c in COMPONENTS), *DETECTORS_TO_COME, *extra}
    todo = list(Detector.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if isinstance(getattr(cls, "name", None), str) and cls.name != "detector":
            names.add(cls.name)
    return sorted(names)


def matcher(v: Any) -> str | None:
    """A rule's `match`: label = "glob" or ["glob", ...] (detectors.matchers)."""
    shape = 'a table of label = "glob" or ["glob", ...], e.g. { kind = "smoke" }'
    if not isinstance(v, dict) or len(v) > MAX_LIST:
        return shape
    for label, pattern in v.items():
        patterns = pattern if isinstance(pattern, list) else [pattern]
        if not isinstance(label, str) or not patterns or len(patterns) > MAX_LIST:
            return shape
        if any(not isinstance(p, str) or len(p) > 200 or has_controls(p) for p in patterns):
            return shape
    return None


#: Matchers outside the named tables (a family's default; each entry of a table may have its own).
MATCHERS = ("rules.pressure_tendency.match", "rules.gust.match", "rules.bands.match", "rules.rapid_change.match")


# Named by the default alert rules before its module is on this branch: the stuck-sensor view of
# the detection work (issue 10). Found by the module walk once there; harmless to keep.
DETECTORS_TO_COME = ("stuck",)


@dataclass
class Table:
    """A configuration table of named entries (`keys` = "variable" or "name") or a list of tables
    (`keys` = None), each entry with `fields` (field -> check) of which `required` must be there,
    and `whole`, a check of one entry as a whole (levels and severities of equal length ...)."""

    fields: dict[str, Check]
    keys: str | None = None
    required: tuple[str, ...] = ()
    whole: Callable[[Mapping[str, Any]], str | None] | None = None
    shape: str = "a table"


def _bands_whole(entry: Mapping[str, Any]) -> str | None:
    levels, severities = entry.get("levels", []), entry.get("severities")
    if severities is not None and len(severities) != len(levels):
        return "as many severities as levels"
    direction = entry.get("direction", "above")
    sign = 1 if direction == "above" else -1
    if any(sign * (b - a) <= 0 for a, b in zip(levels, levels[1:], strict=False)):
        return f"levels strictly {'in' if sign > 0 else 'de'}creasing for direction = {direction!r}"
    return None


def _composite_whole(entry: Mapping[str, Any]) -> str | None:
    n = len(entry.get("indicators", []))
    k = entry.get("k")
    return None if isinstance(k, int) and 1 <= k <= n else f"k in [1, {n}] (the number of indicators)"


# Named tables. The detection helper's new rule keys go here, one line each.
TABLES: dict[str, Table] = {
    "rules.rapid_change": Table(
        keys="variable",
        fields={"max_change": number(0, 1e6, low_open=True), "per_minutes": number(0, 10080, low_open=True,
                                                                                   unit="minutes"),
                "match": matcher},
        required=("max_change",),
        shape="a table of variable = { max_change = ..., per_minutes = ... }",
    ),
    "rules.bands": Table(
        keys="variable",
        fields={"direction": choice("above", "below"),
                "levels": list_of(_number_item, low=1, high=20, what="numbers"),
                "severities": list_of(_severity_item, low=1, high=20, what="severities (info, warning, critical)"),
                "match": matcher},
        required=("levels",),
        whole=_bands_whole,
        shape="a table of variable = { direction = ..., levels = [...], severities = [...] }",
    ),
    "rules.composite": Table(
        keys="name",
        fields={"k": integer(1, MAX_LIST), "severity": choice(*SEVERITIES),
                "stale_seconds": number(0, 7 * 86400, low_open=True, unit="seconds"),
                "indicators": list_of(indicator, low=1, what="indicators"), "match": matcher},
        required=("k", "indicators"),
        whole=_composite_whole,
        shape="a table of name = { k = ..., indicators = [...] }",
    ),
    "stations": Table(
        fields={"name": name_text, "lat": number(-90, 90), "lon": number(-180, 180), "kind": name_text,
                "tags": flat_tags, "tz": time_zone},
        required=("name",),
        shape="a list of [[stations]] tables",
    ),
}


def check_table(key: str, value: Any) -> Problem | None:
    """The first problem in the named table `key` (one of TABLES), or None."""
    spec = TABLES[key]
    if spec.keys is None:
        if not isinstance(value, list):
            return Problem(key, value, spec.shape)
        entries = [(f"{key}[{i}]", entry) for i, entry in enumerate(value)]
    else:
        if not isinstance(value, dict):
            return Problem(key, value, spec.shape)
        entries = []
        for name, entry in value.items():
            where = f"{key}.{name}"
            if where in MATCHERS:  # the family's default matcher, beside its entries
                continue
            bad_key = unknown_variable(name) if spec.keys == "variable" else name_text(name)
            if bad_key is not None:
                return Problem(where, None, f"unknown {spec.keys} {name!r}: expected {bad_key}", unknown=True)
            entries.append((where, entry))
    for where, entry in entries:
        problem = _check_entry(spec, where, entry)
        if problem is not None:
            return problem
    return None


def _check_entry(spec: Table, where: str, entry: Any) -> Problem | None:
    if not isinstance(entry, dict):
        return Problem(where, entry, f"a table with {', '.join(spec.fields)}")
    for name in entry:
        if name not in spec.fields:
            return Problem(f"{where}.{name}", None, f"unknown key{_suggest(str(name), list(spec.fields))}: "
                                                    f"expected one of {', '.join(spec.fields)}", unknown=True)
    for name in spec.required:
        if name not in entry:
            return Problem(f"{where}.{name}", None, f"missing: {where} needs {', '.join(spec.required)}",
                           unknown=True)
    for name, value in entry.items():
        expected = spec.fields[name](value)
        if expected is not None:
            return Problem(f"{where}.{name}", value, expected)
    if spec.whole is not None:
        expected = spec.whole(entry)
        if expected is not None:
            return Problem(where, dict(entry), expected)
    return None


def check_alert_names(rules: Any, composites: list[str]) -> Problem | None:
    """Alert rules may only name detectors and variables that exist: a misspelt one would never
    match, silently. (The alerts module checks everything else of a rule: `alert_tables()`.)"""
    if not isinstance(rules, list):
        return None  # the alerts module says what shape it wants
    known = detector_names(composites)
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        detectors = rule.get("detectors")
        for name in detectors if isinstance(detectors, list) else []:
            if isinstance(name, str) and name not in known:
                return Problem(f"alerts.rules[{i}].detectors", detectors,
                               f"detector names, not {name!r}{_suggest(name, known)}: {', '.join(known)}")
        variables = rule.get("variables")
        for name in variables if isinstance(variables, list) else []:
            expected = unknown_variable(name)
            if expected is not None:
                return Problem(f"alerts.rules[{i}].variables", variables, f"variable names; {expected}")
    return None


def alert_tables() -> dict[str, Callable[[Any], object]]:
    """The alert tables and the alerts module's own parser of each (it raises with the key and what
    it expected); run at load so `mass config` reports them like every other value."""
    from mass_tui.alerts.manager import rules_from_config
    from mass_tui.alerts.mute_times import mute_times_from_config
    from mass_tui.alerts.stages import inhibit_rules_from_config

    return {"alerts.rules": rules_from_config, "alerts.mute_times": mute_times_from_config,
            "alerts.inhibit_rules": inhibit_rules_from_config}


ALERT_TABLES = ("alerts.rules", "alerts.mute_times", "alerts.inhibit_rules")
