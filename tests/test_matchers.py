"""Rules scoped by matchers: smoke ladders for smoke sensors, weather rules for weather stations.

Case: tests/data/cases/inputs/18-desert-heat-dry-air.csv (a hot, dry afternoon at a desert weather
station must give no smoke-sensor ladder, no fire pattern and no smoke alert).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.bank import DetectorBank, RuleConfigError, RuleSet, effective_labels
from detectors.ensemble import EnsembleParams
from detectors.matchers import Matcher, MatcherError, infer_kind
from mass_tui.alerts.service import AlertService
from mass_tui.config import DEFAULTS, load_config
from mass_tui.engine import Engine
from mass_tui.replay import replay_file

SMOKE = {"station": "smoke-1", "source": "simulator:smoke", "kind": "smoke"}
WEATHER = {"station": "buoy", "source": "ndbc", "kind": "weather"}


def test_matcher_globs_lists_and_missing_labels():
    m = Matcher({"kind": ["weather", ""], "station": "buoy-*"})
    assert m.matches({"station": "buoy-44005", "kind": "weather"})
    assert m.matches({"station": "buoy-1"})  # no kind: "" matches a missing label
    assert not m.matches({"station": "buoy-1", "kind": "smoke"})
    assert not m.matches({"station": "b1-f1", "kind": "weather"})
    assert Matcher().matches({}) and Matcher({}).describe() == "every station"


@pytest.mark.parametrize("table", [["kind"], {"kind": 3}, {"kind": []}, "smoke"])
def test_a_matcher_of_the_wrong_shape_names_where_it_is(table):
    with pytest.raises(MatcherError, match="rules.bands.match"):
        Matcher(table, "rules.bands.match")
    rules = {**DEFAULTS["rules"], "bands": {**DEFAULTS["rules"]["bands"], "match": table}}
    with pytest.raises(RuleConfigError, match="rules.bands.match"):
        RuleSet(rules)


@settings(max_examples=200, deadline=None)
@given(label=st.text(max_size=8), value=st.text(max_size=8))
def test_a_literal_pattern_matches_exactly_its_value(label, value):
    safe = value.replace("*", "").replace("?", "").replace("[", "")
    assert Matcher({label: safe}).matches({label: safe})
    assert Matcher({label: safe}).matches({}) == (safe == "")


def test_kind_from_variables_for_a_station_of_unknown_kind():
    assert infer_kind(["temp_c", "humidity_pct", "pressure_msl_hpa"]) == "weather"
    assert infer_kind(["temp_c", "tvoc_ppb", "pm25_ugm3"]) == "smoke"
    assert infer_kind(["co2_ppm", "occupancy"]) == "building"
    assert infer_kind(["temp_c", "humidity_pct"]) is None
    assert effective_labels({"station": "x"}, ["gust_mps"])["kind"] == "weather"
    assert effective_labels({"station": "x", "kind": "smoke"}, ["gust_mps"])["kind"] == "smoke"


def test_shipped_rules_apply_by_kind():
    rules = RuleSet(DEFAULTS["rules"])
    names = lambda var, labels: sorted(r.name for r in rules.for_variable(var, labels))  # noqa: E731
    assert names("temp_c", SMOKE) == ["bands", "rapid_change"]
    assert names("temp_c", WEATHER) == ["rapid_change"]
    assert names("gust_mps", WEATHER) == ["gust_limit"] and names("gust_mps", SMOKE) == []
    assert names("pressure_msl_hpa", WEATHER) == ["pressure_tendency"]
    assert [c.name for c in rules.new_composites(SMOKE)] == ["fire"]
    assert rules.new_composites(WEATHER) == []


def test_a_ladder_of_its_own_overrides_the_family_matcher():
    table = {**DEFAULTS["rules"], "bands": {**DEFAULTS["rules"]["bands"],
                                            "temp_c": {**DEFAULTS["rules"]["bands"]["temp_c"],
                                                       "match": {"station": "oven-*"}}}}
    rules = RuleSet(table)
    assert [r.name for r in rules.for_variable("temp_c", {"station": "oven-2", "kind": "building"})
            if r.name == "bands"] == ["bands"]
    assert not [r for r in rules.for_variable("temp_c", SMOKE) if r.name == "bands"]


def test_a_user_matcher_replaces_the_default_one(tmp_path):
    path = tmp_path / "mass.toml"
    path.write_text('[rules.gust]\nmatch = { station = "buoy-*" }\n')
    cfg = load_config(path, env={}, dotenv_file=None)
    assert cfg.get("rules.gust.match") == {"station": "buoy-*"}


def test_rule_anomalies_score_on_the_unit_scale_with_episodes():
    bank = DetectorBank(EnsembleParams(), DEFAULTS["rules"])
    t = 1.7e9 + np.arange(6) * 3600.0
    gusts = np.array([5.0, 16.0, 18.0, 24.0, 8.0, 16.5])
    result = bank.step_series("buoy", "gust_mps", t, gusts, WEATHER)
    hits = [a for a in result.anomalies if a.detector == "gust_limit"]
    assert [a.ts for a in hits] == [t[1], t[2], t[3], t[5]]
    assert all(0.5 <= a.score < 1.0 for a in hits)
    assert hits[0].episode == hits[2].episode and hits[2].episode_peak == max(a.score for a in hits[:3])
    assert hits[2].severity == "critical"
    assert result.anomaly_score[1] >= 0.5 and result.anomaly_score[3] == hits[2].score  # stored, not 0


def test_desert_afternoon_gives_no_smoke_ladder_fire_or_smoke_alert(shared, tmp_path):
    """Case 18: a desert weather station at 38-48 °C and 5-12 % RH, replayed from a CSV of unknown kind."""
    path = shared / "cases" / "inputs" / "18-desert-heat-dry-air.csv"
    (tmp_path / "mass.toml").write_text("")
    cfg = load_config(tmp_path / "mass.toml", env={"MASS_DATA_DIR": str(tmp_path / "data")}, dotenv_file=None)
    alerts = AlertService.from_config(cfg)  # no channel configured: notices are only counted
    engine = Engine(cfg, None, alerts)
    found, sent = [], []

    def keep(result):
        found.extend(result.anomalies)
        sent.extend(result.alerts)

    replay_file(engine, path, on_batch=keep)
    alerts.close(timeout=5.0)
    assert engine.labels["phx-sky-harbor"].get("kind") is None  # nothing said what it is ...
    assert engine.counters.observations == 12
    detectors = {a.detector for a in found}
    assert not detectors & {"bands", "fire"}, found
    assert not [e for e in sent if e.rule in ("smoke-levels", "fire")]
    # ... yet the same readings from a smoke sensor do reach the ladders
    bank = DetectorBank(EnsembleParams(), DEFAULTS["rules"])
    hot = bank.step_series("smoke-9", "temp_c", np.array([1.7e9]), np.array([48.0]), SMOKE)
    assert [a.detector for a in hot.anomalies] == ["bands"]


@pytest.mark.parametrize("toml, key", [
    ('[rules.bands]\nmatch = "smoke"\n', "rules.bands.match"),
    ('[rules.gust]\nmatch = { kind = 3 }\n', "rules.gust.match"),
    ('[rules.bands.temp_c]\nlevels = [40.0]\nmatch = ["smoke"]\n', "rules.bands.temp_c.match"),
])
def test_a_bad_matcher_in_the_file_names_its_key(tmp_path, toml, key):
    from mass_tui.config import ConfigError

    path = tmp_path / "mass.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(path, env={}, dotenv_file=None)
