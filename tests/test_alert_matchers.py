"""Matchers, durations and mute windows: pure functions, with the rules behind them as properties."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mass_tui.alerts.durations import DurationError, format_duration, parse_duration
from mass_tui.alerts.matchers import MatcherError, parse_matcher, parse_matchers
from mass_tui.alerts.mute_times import MuteTime, MuteTimeError, mute_times_from_config


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() if "+" not in text else \
        datetime.fromisoformat(text).timestamp()


def test_matchers_as_alertmanager():
    labels = {"station": "ndbc-44005", "variable": "gust_mps", "severity": "warning"}
    assert parse_matcher("station=ndbc-44005").matches(labels)
    assert not parse_matcher("station!=ndbc-44005").matches(labels)
    assert parse_matcher('station=~"ndbc-.*"').matches(labels)
    assert not parse_matcher("station=~ndbc").matches(labels)  # anchored at both ends
    assert parse_matcher("station!~asos-.*").matches(labels)
    # A missing label is the empty string.
    assert parse_matcher('kind=""').matches(labels) and parse_matcher("kind!=smoke").matches(labels)
    assert not parse_matcher("kind=~.+").matches(labels)
    assert parse_matcher('comment="a \\"quoted\\" word"').value == 'a "quoted" word'


@pytest.mark.parametrize("bad", ["station", "=x", "1abc=x", "station=~(", 'station="open', 'station="a"b"'])
def test_bad_matchers_say_what_was_expected(bad):
    with pytest.raises(MatcherError, match="expected|quote|regular expression"):
        parse_matcher(bad)


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(max_size=12), max_size=5),
       st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(max_size=12))
def test_negation_is_the_complement(labels, name, value):
    """For any labels, `!=` matches exactly when `=` does not, and `!~` exactly when `=~` does not."""
    import re

    eq, ne = parse_matcher(f'{name}="{_q(value)}"'), parse_matcher(f'{name}!="{_q(value)}"')
    assert eq.matches(labels) != ne.matches(labels)
    rx = re.escape(value)
    assert parse_matcher(f'{name}=~"{_q(rx)}"').matches(labels) != parse_matcher(f'{name}!~"{_q(rx)}"').matches(labels)
    assert eq.matches(labels) == (labels.get(name, "") == value)


def _q(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"')


@given(st.text(max_size=20))
def test_str_round_trips(value):
    m = parse_matcher(f'station="{_q(value)}"')
    assert parse_matcher(str(m)) == m


def test_durations():
    assert parse_duration("10m") == 600 and parse_duration("1h30m") == 5400 and parse_duration("2d") == 172800
    assert parse_duration(90) == 90.0 and parse_duration("500ms") == 0.5
    for bad in ("", "10", "m", "30m1h", "1h1h", "-5m", "5 m", True, -1):
        with pytest.raises(DurationError):
            parse_duration(bad)


@given(st.integers(min_value=0, max_value=10 * 365 * 86400))
def test_format_duration_round_trips(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


def mute(**table) -> MuteTime:
    return MuteTime.from_table({"name": "m", **table}, "alerts.mute_times[0]")


def test_weekends_in_the_buildings_time_zone():
    weekends = mute(weekdays=["saturday:sunday"], location="Europe/Berlin", matchers=["kind=building"])
    building = {"kind": "building", "station": "b1"}
    # Friday 2024-03-01 23:30 UTC is already Saturday 00:30 in Berlin.
    assert weekends.mutes(building, ts("2024-03-01T23:30:00"))
    assert not weekends.mutes(building, ts("2024-03-01T22:30:00"))
    assert weekends.mutes(building, ts("2024-03-03T22:30:00"))  # Sunday 23:30 Berlin
    assert not weekends.mutes({"kind": "weather"}, ts("2024-03-02T12:00:00"))


def test_times_days_of_month_months_and_years():
    evening = mute(times=[{"start_time": "17:00", "end_time": "24:00"}])
    assert evening.mutes({}, ts("2024-03-01T17:00:00")) and evening.mutes({}, ts("2024-03-01T23:59:00"))
    assert not evening.mutes({}, ts("2024-03-01T16:59:00"))  # start inclusive, end exclusive
    last3 = mute(days_of_month=["-3:-1"])
    assert last3.mutes({}, ts("2024-02-27T00:00:00")) and not last3.mutes({}, ts("2024-02-26T23:00:00"))
    q1 = mute(months=["january:march"], years=["2024"])
    assert q1.mutes({}, ts("2024-03-31T12:00:00")) and not q1.mutes({}, ts("2024-04-01T00:00:00"))
    assert not q1.mutes({}, ts("2023-02-01T00:00:00"))
    nested = MuteTime.from_table({"name": "n", "time_intervals": [{"weekdays": ["monday"]}, {"weekdays": ["friday"]}]},
                                 "x")
    assert nested.mutes({}, ts("2024-03-01T12:00:00")) and not nested.mutes({}, ts("2024-03-02T12:00:00"))


@pytest.mark.parametrize("table, words", [
    ({"name": "x", "weekdays": ["funday"]}, ["weekdays[0]", "funday"]),
    ({"name": "x", "times": [{"start_time": "18:00", "end_time": "08:00"}]}, ["times[0]", "not before"]),
    ({"name": "x", "location": "Mars/Olympus"}, ["location", "IANA"]),
    ({"name": "x", "days_of_month": ["32"]}, ["days_of_month[0]", "[1, 31]"]),
    ({"name": "x", "wekdays": ["monday"]}, ["wekdays", "unknown"]),
    ({"name": "x", "matchers": ["kind"]}, ["matchers", "kind"]),
])
def test_bad_mute_times_name_key_value_and_expectation(table, words):
    with pytest.raises(MuteTimeError) as err:
        mute_times_from_config([table])
    assert all(w in str(err.value) for w in words), str(err.value)


@given(st.integers(min_value=0, max_value=6), st.integers(min_value=0, max_value=6),
       st.integers(min_value=946684800, max_value=4102444800))
def test_weekday_range_contains_exactly_its_days(a, b, t):
    """A weekday range holds an instant exactly when its (UTC) weekday lies in the range."""
    from mass_tui.alerts.mute_times import WEEKDAYS

    lo, hi = min(a, b), max(a, b)
    m = mute(weekdays=[f"{WEEKDAYS[lo]}:{WEEKDAYS[hi]}"])
    assert m.mutes({}, t) == (lo <= datetime.fromtimestamp(t, UTC).weekday() <= hi)


def test_parse_matchers_list():
    assert [str(m) for m in parse_matchers(["station=a", "severity!=info"])] == ['station="a"', 'severity!="info"']
