"""Recurring mute windows (`[[alerts.mute_times]]`), in the shape of Alertmanager's `time_intervals`.

Alertmanager's configuration reference (`time_interval`): every field is a
list, and an instant matches a field when it matches one element of it; an
unset field matches anything; an instant matches an interval when it matches
every field, and a named mute time when it matches one of its intervals.

- `times`: `{start_time = "17:00", end_time = "24:00"}`, start inclusive, end exclusive.
- `weekdays`: `"monday:friday"`, `"saturday"`; inclusive ranges.
- `days_of_month`: `"1:5"`, `"-3:-1"` (the last three days); inclusive, negative from the end.
- `months`: `"january:march"` or `"1:3"`; inclusive.
- `years`: `"2020:2022"`; inclusive.
- `location`: an IANA zone (`"Europe/Berlin"`); UTC when unset.

mass adds `matchers`: which alerts the window mutes (all when empty). The
instant tested is the alert's data time, so a replay honours the windows of
the time it replays.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mass_tui.alerts.matchers import Matcher, MatcherError, matchers_from_config, matches_all

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
_FIELDS = ("times", "weekdays", "days_of_month", "months", "years", "location")


class MuteTimeError(ValueError):
    pass


def _minutes(text: Any, where: str) -> int:
    try:
        hh, mm = str(text).split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        raise MuteTimeError(f"{where} = {text!r}: expected HH:MM") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise MuteTimeError(f"{where} = {text!r}: expected a time of day from 00:00 to 24:00")
    return h * 60 + m


def _bound(text: str, names: Sequence[str], lo: int, hi: int, where: str, negative: bool = False) -> int:
    t = text.strip().lower()
    if t in names:
        return names.index(t) + lo
    try:
        n = int(t)
    except ValueError:
        choices = f"{names[0]} ... {names[-1]} or " if names else ""
        raise MuteTimeError(f"{where} = {text!r}: expected {choices}a number in [{lo}, {hi}]") from None
    if not (lo <= n <= hi or (negative and -hi <= n <= -1)):
        raise MuteTimeError(f"{where} = {text!r}: expected a number in [{lo}, {hi}]"
                            + (f" or [-{hi}, -1]" if negative else ""))
    return n


def _ranges(value: Any, names: Sequence[str], lo: int, hi: int, where: str,
            negative: bool = False) -> list[tuple[int, int]]:
    if not isinstance(value, list):
        raise MuteTimeError(f"{where} = {value!r}: expected a list such as [\"monday:friday\"]")
    out = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            raise MuteTimeError(f"{here} = {item!r}: expected a string such as \"1:5\"")
        first, _, last = item.partition(":")
        a = _bound(first, names, lo, hi, here, negative)
        b = _bound(last, names, lo, hi, here, negative) if last else a
        if (a < 0) == (b < 0) and a > b:
            raise MuteTimeError(f"{here} = {item!r}: the range starts after it ends")
        out.append((a, b))
    return out


@dataclass(frozen=True)
class TimeInterval:
    times: tuple[tuple[int, int], ...] = ()  # minutes of the day, [start, end)
    weekdays: tuple[tuple[int, int], ...] = ()  # 0 = Monday
    days_of_month: tuple[tuple[int, int], ...] = ()
    months: tuple[tuple[int, int], ...] = ()  # 1 = January
    years: tuple[tuple[int, int], ...] = ()
    location: tzinfo = UTC

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> TimeInterval:
        unknown = set(table) - set(_FIELDS) - {"name", "matchers", "time_intervals"}
        if unknown:
            raise MuteTimeError(f"{where}.{sorted(unknown)[0]}: unknown field; expected {', '.join(_FIELDS)}")
        times = []
        for i, t in enumerate(table.get("times", [])):
            if not isinstance(t, Mapping) or "start_time" not in t or "end_time" not in t:
                raise MuteTimeError(f"{where}.times[{i}] = {t!r}: expected {{start_time = \"HH:MM\", "
                                    f"end_time = \"HH:MM\"}}")
            start = _minutes(t["start_time"], f"{where}.times[{i}].start_time")
            end = _minutes(t["end_time"], f"{where}.times[{i}].end_time")
            if start >= end:
                raise MuteTimeError(f"{where}.times[{i}]: start_time {t['start_time']} is not before end_time "
                                    f"{t['end_time']} (split a window across midnight in two)")
            times.append((start, end))
        location: tzinfo = UTC
        if "location" in table:
            try:
                location = ZoneInfo(str(table["location"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise MuteTimeError(f"{where}.location = {table['location']!r}: expected an IANA time zone "
                                    "such as Europe/Berlin") from None
        return cls(
            tuple(times),
            tuple((a - 1, b - 1) for a, b in _ranges(table.get("weekdays", []), WEEKDAYS, 1, 7,
                                                     f"{where}.weekdays")),
            tuple(_ranges(table.get("days_of_month", []), (), 1, 31, f"{where}.days_of_month", negative=True)),
            tuple(_ranges(table.get("months", []), MONTHS, 1, 12, f"{where}.months")),
            tuple(_ranges(table.get("years", []), (), 1, 9999, f"{where}.years")),
            location,
        )

    def contains(self, ts: float) -> bool:
        """Whether the instant `ts` (epoch seconds) falls in this interval, in its location."""
        t = datetime.fromtimestamp(ts, UTC).astimezone(self.location)
        if self.times:
            minute = t.hour * 60 + t.minute
            if not any(a <= minute < b for a, b in self.times):
                return False
        if self.weekdays and not any(a <= t.weekday() <= b for a, b in self.weekdays):
            return False
        if self.days_of_month:
            last = calendar.monthrange(t.year, t.month)[1]
            day = t.day

            def _abs(n: int) -> int:
                return n if n > 0 else last + 1 + n

            if not any(_abs(a) <= day <= _abs(b) for a, b in self.days_of_month):
                return False
        if self.months and not any(a <= t.month <= b for a, b in self.months):
            return False
        return not self.years or any(a <= t.year <= b for a, b in self.years)


@dataclass(frozen=True)
class MuteTime:
    """A named recurring window and the alerts it mutes."""

    name: str
    intervals: tuple[TimeInterval, ...]
    matchers: tuple[Matcher, ...] = field(default=())

    def mutes(self, labels: Mapping[str, str], ts: float) -> bool:
        return matches_all(self.matchers, labels) and any(iv.contains(ts) for iv in self.intervals)

    @classmethod
    def from_table(cls, table: Any, where: str) -> MuteTime:
        if not isinstance(table, Mapping) or not isinstance(table.get("name"), str) or not table["name"]:
            raise MuteTimeError(f"{where} = {table!r}: expected a table with a name")
        try:
            matchers = tuple(matchers_from_config(table.get("matchers", []), f"{where}.matchers"))
        except MatcherError as exc:
            raise MuteTimeError(str(exc)) from None
        nested = table.get("time_intervals")
        if nested is None:
            intervals = (TimeInterval.from_table(table, where),)
        elif isinstance(nested, list) and nested and all(isinstance(t, Mapping) for t in nested):
            extra = set(table) & set(_FIELDS)
            if extra:
                raise MuteTimeError(f"{where}: {sorted(extra)[0]} beside time_intervals: put it inside each interval")
            intervals = tuple(TimeInterval.from_table(t, f"{where}.time_intervals[{i}]") for i, t in enumerate(nested))
        else:
            raise MuteTimeError(f"{where}.time_intervals = {nested!r}: expected a list of interval tables")
        return cls(table["name"], intervals, matchers)


def mute_times_from_config(tables: Any) -> list[MuteTime]:
    if not isinstance(tables, list):
        raise MuteTimeError(f"alerts.mute_times = {tables!r}: expected a list of [[alerts.mute_times]] tables")
    out = [MuteTime.from_table(t, f"alerts.mute_times[{i}]") for i, t in enumerate(tables)]
    names = [m.name for m in out]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise MuteTimeError(f"alerts.mute_times[{i}].name = {name!r}: expected a name no other mute time has")
    return out
