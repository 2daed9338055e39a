"""Episodes: pending periods, N of M, recovery, flapping, acknowledgements, muting, no data (unit level)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Anomaly
from mass_tui.alerts.manager import AlertConfigError, AlertManager, AlertRule, rules_from_config
from mass_tui.alerts.nodata import NoDataTracker
from mass_tui.alerts.readings import Readings
from mass_tui.alerts.state import AlertState

H = 3600.0


def gust(t_h: float, value: float = 18.0, severity: str = "warning", station: str = "s") -> Anomaly:
    return Anomaly(t_h * H, station, "gust_mps", value, "gust_limit", severity, value / 15, f"gust {value} m/s")


def manager(rule: AlertRule | None = None, **kw) -> AlertManager:
    args = {"cooldown_s": 0.5 * H, "repeat_s": 6 * H, "resolve_after_s": 2 * H, "notify_resolved": True}
    args.update(kw)
    return AlertManager([rule or AlertRule("gust", ("gust_limit",))], **args)


def run(m: AlertManager, hits: set[float], hours: range, station: str = "s") -> list[tuple[str, float]]:
    """Feed one reading per hour (one batch each); an anomaly at the hours in `hits`."""
    out = []
    for h in hours:
        events = m.observe([gust(h, station=station)] if h in hits else [], Readings.of_times({station: [h * H]}))
        out += [(e.kind, e.ts / H) for e in events]
    return out


def test_for_needs_matching_readings_without_a_break():
    rule = AlertRule("gust", ("gust_limit",), for_s=2 * H)
    assert run(manager(rule), {0, 1, 2, 3}, range(0, 4)) == [("alert", 2.0)]
    # A clean reading at 1 h restarts the pending period at 2 h: it fires at 4 h.
    assert run(manager(rule), {0, 2, 3, 4}, range(0, 5)) == [("alert", 4.0)]
    # Never long enough: no alert, and no resolved either.
    assert run(manager(rule), {0, 1, 3, 4, 6}, range(0, 12)) == []


def test_n_of_m_readings():
    rule = AlertRule("gust", ("gust_limit",), readings=3, of=5)
    assert run(manager(rule), {0, 2, 4}, range(0, 5)) == [("alert", 4.0)]
    assert run(manager(rule), {0, 3, 6, 9}, range(0, 12)) == []  # never 3 in any 5


def test_recovery_needs_quiet_time_and_clean_readings():
    rule = AlertRule("gust", ("gust_limit",), resolve_after_s=1 * H, recover_readings=3)
    events = run(manager(rule), {0, 1, 2}, range(0, 8))
    assert events == [("alert", 0.0), ("resolved", 5.0)]  # clean at 3, 4, 5 h


def test_a_silent_station_does_not_recover():
    m = manager()
    m.observe([gust(0)], Readings.of_times({"s": [0], "other": [0]}))
    for h in range(1, 30):  # only the other station reports
        assert m.observe([], Readings.of_times({"other": [h * H]})) == []
    assert [e.kind for e in m.observe([], Readings.of_times({"s": [30 * H]}))] == ["resolved"]


def test_flapping_is_not_an_alert_storm():
    """Every other hourly reading over the limit for two days: with recovery needing two clean readings in a
    row, that is one episode, its repeats and one resolved, not an alert and a resolved every two hours."""
    rule = AlertRule("gust", ("gust_limit",), recover_readings=2)
    assert run(manager(AlertRule("gust", ("gust_limit",))), set(range(0, 48, 2)), range(0, 52)).count(
        ("alert", 2.0)) == 1  # without hysteresis it flaps
    events = run(manager(rule), set(range(0, 48, 2)), range(0, 52))
    assert events[0] == ("alert", 0.0) and events[-1] == ("resolved", 48.0)
    assert [k for k, _ in events[1:-1]] == ["repeat"] * 7  # every 6 h, never a new alert


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=120))
def test_notices_alternate_and_never_outnumber_episodes(pattern):
    """Whatever the readings: alert and resolved alternate per (station, rule), each episode opens once and
    resolves at most once, and nothing resolves that did not alert."""
    m = manager(cooldown_s=0.0)
    events = run(m, {h for h, hit in enumerate(pattern) if hit}, range(len(pattern) + 4))
    state = "closed"
    for kind, _ in events:
        if kind == "alert":
            assert state == "closed"
            state = "open"
        elif kind == "resolved":
            assert state == "open"
            state = "closed"
        else:
            assert state == "open"
    opened = sum(k == "alert" for k, _ in events)
    assert opened <= sum(pattern)


def test_acking_a_detector_episode_stops_the_repeats_of_the_alert_episode_that_carries_it():
    """The UI acknowledges an event row: a detector episode (Anomaly.episode), not an alert id."""
    from dataclasses import replace

    def gust_in(h: float):
        return replace(gust(h), episode="det-1", episode_start=0.0, episode_peak=1.2)

    m = manager()
    events = m.observe([gust_in(0)], Readings.of_times({"s": [0]}))
    assert events[0].labels["episode"] == "det-1"  # a silence on that episode matches its notices
    out = [e.kind for h in range(1, 8) for e in m.observe([gust_in(h)], Readings.of_times({"s": [h * H]}))]
    assert out == ["repeat"]  # at 6 h, while nobody has acknowledged
    m.acked.add("det-1")
    out = [e.kind for h in range(8, 15) for e in m.observe([gust_in(h)], Readings.of_times({"s": [h * H]}))]
    assert out == []  # no repeat at 12 h


def test_ack_stops_repeats_not_escalation_or_resolved():
    m = manager()
    events = m.observe([gust(0)], Readings.of_times({"s": [0]}))
    m.acked.add(events[0].episode)
    hours = range(1, 15)
    out = []
    for h in hours:
        sev = "critical" if h == 13 else "warning"
        batch = [gust(h, 25.0 if sev == "critical" else 18.0, sev)] if h <= 13 else []
        out += [e.kind for e in m.observe(batch, Readings.of_times({"s": [h * H]}))]
    out += [e.kind for e in m.observe([], Readings.of_times({"s": [16 * H]}))]
    assert out == ["escalated", "resolved"]  # no repeats at 6 h and 12 h


def test_muted_opening_alerts_after_the_silence_ends():
    m = manager()
    m.mute = lambda e: "silence x" if 2 * H <= e.ts < 10 * H else None
    events = []
    for h in range(0, 14):
        hit = [gust(h)] if 3 <= h <= 11 else []
        events += m.observe(hit, Readings.of_times({"s": [h * H]}))
    got = [(e.kind, e.ts / H, e.muted) for e in events]
    assert got == [("alert", 3.0, "silence x"), ("alert", 10.0, None), ("resolved", 13.0, None)]


def test_an_episode_inside_a_silence_says_nothing_unmuted():
    m = manager()
    m.mute = lambda e: "silence x"
    events = []
    for h in range(0, 20):
        events += m.observe([gust(h)] if h < 12 else [], Readings.of_times({"s": [h * H]}))
    assert [e.muted for e in events] == ["silence x"]  # said once, as muted; no repeats, no resolved


def test_data_time_going_back_starts_afresh():
    m = manager()
    m.observe([gust(100)], Readings.of_times({"s": [100 * H]}))
    assert [e.kind for e in m.observe([gust(0)], Readings.of_times({"s": [0]}))] == ["alert"]


@pytest.mark.parametrize("table, words", [
    ({"name": "g", "detectors": ["x"], "for": "10 minutes"}, ["alerts.rules[0]", "10 minutes", "duration"]),
    ({"name": "g", "detectors": ["x"], "readings": 3, "of": 2}, ["alerts.rules[0].of", "at least readings = 3"]),
    ({"name": "g", "detectors": ["x"], "for": "5m", "readings": 2, "of": 3}, ["either for", "not both"]),
    ({"name": "g", "detectors": ["x"], "matchers": ["kind~smoke"]}, ["matchers", "kind~smoke"]),
    ({"name": "g", "detectors": "x"}, ["alerts.rules[0]", "detectors"]),
    ({"name": "no-data", "detectors": ["x"]}, ["no-data", "built in"]),
    ({"name": "g", "detectors": ["x"], "fro": "5m"}, ["alerts.rules[0].fro", "unknown key"]),
])
def test_bad_rules_name_key_value_and_expectation(table, words):
    with pytest.raises(AlertConfigError) as err:
        rules_from_config([table])
    assert all(w in str(err.value) for w in words), str(err.value)


def test_rule_matchers_select_stations_by_labels():
    rule = rules_from_config([{"name": "smoke", "detectors": ["bands"], "matchers": ["kind=smoke"]}])[0]
    a = Anomaly(0, "x", "pm25_ugm3", 60, "bands", "warning", 2, "r")
    assert rule.matches(a, {"kind": "smoke"}) and not rule.matches(a, {"kind": "building"})


# --- no data ----------------------------------------------------------------------------
def feed(tracker: NoDataTracker, series: dict, wall: float = 0.0):
    return tracker.observe(Readings.of_times(series), wall)


def test_no_data_in_data_time_opens_once_and_resolves_when_the_station_returns():
    t = NoDataTracker(factor=5, min_seconds=0)
    conds = []
    for k in range(0, 36):  # every 10 min for 6 h; station a silent from 2 h to 4 h
        now = k * 600.0
        series = {"b": [now]}
        if not 2 * H < now < 4 * H:
            series["a"] = [now]
        conds += feed(t, series)
    assert [(c.opened, c.station, c.variable, c.ts / H) for c in conds] == [
        (True, "a", "", (2 * H + 3000) / H), (False, "a", "", 4.0)]
    assert conds[0].reason("a") == "no data from a since 1970-01-01T02:00:00Z (usual interval 10 min)"


def test_a_variable_silent_while_its_station_reports():
    t = NoDataTracker(factor=3, min_seconds=0)
    conds = []
    for k in range(0, 30):
        now = k * 600.0
        series = {("a", "temp_c"): [now]}
        if not 1 * H <= now < 3 * H:
            series[("a", "gust_mps")] = [now]
        conds += feed(t, series)
    assert [(c.opened, c.variable) for c in conds] == [(True, "gust_mps"), (False, "gust_mps")]
    assert conds[0].ts == 50 * 60 + 1800 + 600  # first station reading past last + 3 x 10 min


def test_a_gap_seen_only_on_return_opens_and_resolves_with_their_own_times():
    t = NoDataTracker(factor=5, min_seconds=0)
    times = [k * 600.0 for k in range(10)] + [10 * H + k * 600.0 for k in range(5)]
    conds = feed(t, {"a": times})
    assert [(c.opened, c.ts) for c in conds] == [(True, 5400.0 + 3000.0), (False, 10 * H)]


def test_wall_time_counts_only_for_live_sources():
    replay = NoDataTracker(factor=5, min_seconds=0, live=False)
    live = NoDataTracker(factor=5, min_seconds=0, live=True)
    for tr in (replay, live):
        for k in range(5):
            feed(tr, {"a": [k * 60.0]}, wall=1000.0 + k * 60)
    assert replay.wall_check(1e9) == []
    assert [(c.opened, c.station) for c in live.wall_check(1240.0 + 301.0)] == [(True, "a")]
    assert live.wall_check(1e9) == []  # once


# --- the SQLite state ---------------------------------------------------------------------
def test_state_silences_acks_and_changes_across_connections(tmp_path):
    from mass_tui.alerts.matchers import parse_matchers
    from mass_tui.alerts.state import StateError, StoredEpisode

    a, b = AlertState.in_dir(tmp_path), AlertState.in_dir(tmp_path)
    s = a.add_silence(parse_matchers(["station=x"]), 0, 100, created_by="me", comment="why")
    assert b.changed() and not b.changed()
    assert [x.id for x in b.silences()] == [s.id] and b.silences()[0].covers(50)
    with pytest.raises(StateError, match="at least 4"):
        b.expire_silence(s.id[:2])
    b.expire_silence(s.id[:8])
    assert a.silences() == [] and a.silences(include_expired=True)[0].status(0) == "expired"
    with pytest.raises(StateError, match="no episode"):
        a.ack("abcdef")
    a.save([StoredEpisode("abcdef123456", "x", "gust", "firing", {"start": 0})], [], [("x", "gust", 5.0)])
    b.ack("abcd", "me", "on it")
    assert set(a.acks()) == {"abcdef123456"} and a.cooldowns() == {("x", "gust"): 5.0}
    a.save([], ["abcdef123456"], [])  # resolved: the episode and its ack go
    assert b.episodes() == [] and b.acks() == {}
    with pytest.raises(StateError, match="before it starts"):
        a.add_silence(parse_matchers(["station=x"]), 10, 10)
    a.close()
    b.close()


def test_episodes_round_trip_through_the_state(tmp_path):
    state = AlertState.in_dir(tmp_path)
    m = manager()
    m.observe([gust(0, value=22.5, severity="critical")], Readings.of_times({"s": [0]}))
    state.save(*m.changes())
    m2 = manager()
    assert m2.restore(state.episodes(), state.cooldowns()) == 1
    ep = next(iter(m2.active.values()))
    assert ep.worst.value == 22.5 and ep.notified_severity == "critical" and ep.state == "firing"
    assert m2.observe([gust(1, value=25, severity="critical")], Readings.of_times({"s": [H]})) == []  # no re-alert
    assert math.isnan(Anomaly(0, "s", "", math.nan, "d", "warning", 1, "r").value)
    state.close()
