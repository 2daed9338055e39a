"""The stages after the episodes: inhibition, one mute decision, grouping, dedup; and the service's clock
(source down) and reload."""

from __future__ import annotations

import time

from detectors.base import Anomaly
from mass_tui.alerts.matchers import parse_matchers
from mass_tui.alerts.model import AlertEvent
from mass_tui.alerts.readings import Readings
from mass_tui.alerts.service import AlertService
from mass_tui.alerts.stages import GroupStage, Inhibitor, inhibit_rules_from_config
from mass_tui.alerts.state import AlertState
from mass_tui.config import DEFAULTS, load_config
from sources.base import SourceState

H = 3600.0


def notice(station: str, rule: str = "gust", ts: float = 0.0, variable: str = "gust_mps", **labels) -> AlertEvent:
    a = Anomaly(ts, station, variable, 18.0, "gust_limit", "warning", 1.2, "r")
    lab = {"station": station, "alertname": rule, "rule": rule, "variable": variable, **labels}
    if not variable:
        del lab["variable"]
    return AlertEvent("alert", ts, station, rule, a, ts, 1, episode=f"{station}-{rule}-{variable}", labels=lab)


def test_default_inhibitions():
    rules = inhibit_rules_from_config(DEFAULTS["alerts"]["inhibit_rules"])
    firing: list[tuple[str, dict]] = []
    inh = Inhibitor(rules, lambda: (len(firing) + sum(map(id, firing)), firing))
    gust_a, gust_b = notice("a"), notice("b")
    assert inh.mutes(gust_a.labels, 0) is None
    nodata_a = notice("a", "no-data", variable="", source="sim")
    firing.append(("ep1", nodata_a.labels))
    assert inh.mutes(gust_a.labels, 0) == "inhibited by no-data at a (ep1)"
    assert inh.mutes(gust_b.labels, 0) is None  # another station
    assert inh.mutes(nodata_a.labels, 0) is None  # never itself
    # One variable silent mutes that variable's alerts only.
    firing[:] = [("ep2", notice("a", "no-data", variable="gust_mps").labels)]
    assert inh.mutes(gust_a.labels, 0) and inh.mutes(notice("a", "pressure", variable="pressure_hpa").labels, 0) is None
    # A source down mutes the no-data alerts of its stations.
    firing[:] = [("ep3", {"alertname": "source-down", "source": "open-meteo"})]
    assert inh.mutes(notice("x", "no-data", variable="", source="open-meteo").labels, 0)
    assert inh.mutes(notice("y", "no-data", variable="", source="sim").labels, 0) is None


def test_grouping_by_rule_within_group_wait_in_data_time():
    g = GroupStage(["rule"], 30.0)
    out = []
    for i in range(40):
        out += g.add(notice(f"s{i}", ts=100 + i * 0.5), wall=0.0)
    out += g.add(notice("p", "pressure-fall", ts=105), wall=0.0)
    assert out == []
    out = g.due(data_clock=136.0, wall=1.0)
    assert sorted(len(n.notices) for n in out) == [1, 40]
    assert g.add(notice("late", ts=200), wall=2.0) == [] and len(g.due(229.0, 3.0)) == 0
    assert len(g.due(0.0, wall=33.0)) == 1  # the wall clock as a backstop
    # The same episode twice in a group is listed once, in its latest state.
    a1 = notice("s", ts=0)
    a2 = AlertEvent("escalated", 5.0, "s", "gust", a1.anomaly, 0, 2, episode=a1.episode, labels=a1.labels)
    g.add(a1, 0.0)
    g.add(a2, 0.0)
    [n] = g.flush()
    assert [x.kind for x in n.notices] == ["escalated"]


def _service(tmp_path, **env) -> AlertService:
    cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path), "ALERTS_ENABLED": "true", **env}, dotenv_file=None)
    return AlertService.from_config(cfg, live=True, ticker=False)


class _Source:
    """A source as the pipeline sees it: a name and a real SourceState (what an HTTP source keeps)."""

    def __init__(self) -> None:
        self.name = "open-meteo"
        self.state = SourceState("open-meteo")


def test_a_source_down_too_long_alerts_and_resolves(tmp_path):
    service = _service(tmp_path, ALERT_SOURCE_DOWN_MIN="0.01", ALERT_GROUP_WAIT_SECONDS="0")
    src = _Source()
    service.watch_source(src)
    src.state.up, src.state.down_since, src.state.last_error = False, time.time() - 1.0, "ConnectError"
    [opened] = service.tick()
    assert opened.rule == "source-down" and "ConnectError" in opened.anomaly.reason
    assert opened.labels["source"] == "open-meteo" and service.tick() == []
    src.state.up = True
    assert [e.kind for e in service.tick()] == ["resolved"]
    service.close(0.1)


def test_the_mute_function_marks_anomalies_and_notices_alike(tmp_path):
    state = AlertState.in_dir(tmp_path / "db")
    sid = state.add_silence(parse_matchers(["station=b", "variable=gust_mps"]), 0, 10 * H).id
    state.close()
    service = _service(tmp_path, ALERT_NO_DATA="false")
    anomalies = [Anomaly(H, s, "gust_mps", 20, "gust_limit", "warning", 1.3, "gust") for s in ("a", "b")]
    events, marks = service.observe(anomalies, Readings.of_times({"a": [H], "b": [H]}))
    assert marks == {1: f"silence {sid}"}
    assert [(e.station, e.muted) for e in events] == [("a", None), ("b", f"silence {sid}")]
    assert service.summary()["alerts"] == 1 and service.summary()["muted"] == 1
    service.close(0.1)


def test_reload_swaps_rules_and_channels_and_keeps_episodes(tmp_path):
    service = _service(tmp_path, ALERT_NO_DATA="false")
    service.observe([Anomaly(0, "a", "gust_mps", 20, "gust_limit", "warning", 1.3, "gust")],
                    Readings.of_times({"a": [0]}))
    (tmp_path / "m.toml").write_text('[alerts]\nenabled = true\n[[alerts.rules]]\nname = "gust"\n'
                                     'detectors = ["gust_limit"]\nfor = "1h"\n')
    service.reload(load_config(tmp_path / "m.toml", env={"MASS_DATA_DIR": str(tmp_path)}, dotenv_file=None))
    assert [r.for_s for r in service.manager.rules] == [3600.0]
    assert ("a", "gust", "") in service.manager.active  # the open episode stays
    service.close(0.1)


def test_stuck_sensor_anomalies_alert_by_default(tmp_path):
    service = _service(tmp_path, ALERT_NO_DATA="false", ALERT_GROUP_WAIT_SECONDS="0")
    a = Anomaly(H, "b1-f2-office", "temp_c", 21.5, "stuck", "warning", 1.0, "temp_c stuck at 21.5 for 12 readings")
    events, _ = service.observe([a], Readings.of_times({"b1-f2-office": [H]}))
    assert [(e.kind, e.rule) for e in events] == [("alert", "stuck")]
    service.close(0.1)
