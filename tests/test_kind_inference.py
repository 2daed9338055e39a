"""A station's kind comes from the variables it gives values of, not from the columns a file lists.

An export lists every variable as a column; a weather station's `co2_ppm` and `tvoc_ppb` cells are
empty. The kind was inferred from the column names (smoke before building before weather), so the
export replayed as a smoke sensor: no pressure-tendency rule, 2 anomalies instead of 41.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.replay import replay_file
from mass_tui.store import JsonlStore
from sources.variables import REGISTRY

ASOS = Path(__file__).parent / "data" / "weather" / "asos_midwest_cyclone_2010-10.csv"
NOT_WEATHER = sorted(name for name in REGISTRY if name in {"co2_ppm", "tvoc_ppb", "eco2_ppm", "fire_alarm",
                                                          "occupancy", "energy_kwh", "pm25_ugm3", "us_aqi"})


def _replay(folder: Path, path: Path) -> tuple[dict, list[tuple]]:
    cfg = load_config(None, env={"MASS_DATA_DIR": str(folder / "data"), "MASS_LOG_DIR": str(folder / "logs")},
                      dotenv_file=None)
    found: list[tuple] = []
    with JsonlStore(folder / "db") as store:
        engine = Engine(cfg, store)
        assert replay_file(engine, path, on_batch=lambda r: found.extend(
            (a.station, a.variable, a.ts, a.detector, round(a.score, 9)) for a in r.anomalies))
    return engine.summary(), found


def _with_empty_columns(src: Path, dst: Path, names: list[str], rows: int | None = None) -> None:
    table = list(csv.reader(io.StringIO(src.read_text())))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table[0] + names)
    for row in table[1:] if rows is None else table[1 : rows + 1]:
        writer.writerow(row + [""] * len(names))
    dst.write_text(out.getvalue())


def test_empty_columns_of_other_kinds_leave_a_weather_recording_its_rules(tmp_path):
    plain, found = _replay(tmp_path / "plain", ASOS)
    padded = tmp_path / "padded.csv"
    _with_empty_columns(ASOS, padded, ["co2_ppm", "tvoc_ppb"])
    summary, found_padded = _replay(tmp_path / "padded", padded)
    assert any(a[3] == "pressure_tendency" for a in found)
    assert found_padded == found
    assert summary["variables"] == plain["variables"]  # an empty column is no variable of the run


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(NOT_WEATHER), min_size=1, max_size=4, unique=True))
def test_adding_columns_without_values_changes_no_anomaly(tmp_path_factory, names):
    """The rule: a column with no value in any row says nothing about a station, so adding any set of
    them to a recording leaves every anomaly as it was."""
    tmp = tmp_path_factory.mktemp("kind")
    part = tmp / "part.csv"
    _with_empty_columns(ASOS, part, [], rows=300)
    padded = tmp / "padded.csv"
    _with_empty_columns(ASOS, padded, names, rows=300)
    assert _replay(tmp / "a", padded)[1] == _replay(tmp / "b", part)[1]


def _engine(tmp_path: Path) -> Engine:
    cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs")},
                      dotenv_file=None)
    return Engine(cfg)


def _batch(t0: float, n: int, values: dict[str, float | None]):
    from sources.batch import ObservationBatch
    from sources.schema import Observation

    given = {k: v for k, v in values.items() if v is not None} or {"temp_c": 21.0}
    return ObservationBatch.from_observations([Observation(t0 + 60.0 * i, "sm1", "test", given) for i in range(n)])


def test_a_smoke_sensor_whose_tvoc_comes_later_gets_its_smoke_rules_then(tmp_path):
    """A sensor warming up gives TVOC only after a while: its temperature series, made before that
    as a station of no kind, takes the smoke ladder once TVOC has a value (a review found it kept
    no smoke rule for the run)."""
    engine = _engine(tmp_path)
    engine.process_batch(_batch(1_704_067_200.0, 50, {"temp_c": 21.0, "humidity_pct": 45.0}))
    engine.process_batch(_batch(1_704_067_200.0 + 3000, 50, {"temp_c": 21.0, "humidity_pct": 45.0, "tvoc_ppb": 110.0}))
    fire = engine.process_batch(_batch(1_704_067_200.0 + 6000, 5, {"temp_c": 60.0, "humidity_pct": 8.0,
                                                                    "tvoc_ppb": 3000.0, "eco2_ppm": 2500.0}))
    detectors = {a.detector for a in fire.anomalies}
    assert "bands" in detectors and "fire" in detectors


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.lists(st.sampled_from(["temp_c", "humidity_pct", "tvoc_ppb", "pressure_hpa", "co2_ppm",
                                               "gust_mps"]), max_size=4, unique=True), min_size=1, max_size=5))
def test_a_series_carries_the_rules_of_the_kind_its_station_has_shown_so_far(tmp_path_factory, plan):
    """The rule: after any batch, each series has the rules (by kind of rule) and the station the
    composites that the kind implied by every variable it has given a value of selects."""
    from detectors.bank import effective_labels

    engine = _engine(tmp_path_factory.mktemp("rules"))
    shown: set[str] = set()
    for k, names in enumerate(plan):
        engine.process_batch(_batch(1_704_067_200.0 + 6000 * k, 20, {"temp_c": None, **{n: 20.0 + k for n in names}}))
        shown |= set(names) or {"temp_c"}
        labels = effective_labels(engine.labels.get("sm1", {}), shown)
        bank = engine.bank
        for (_station, variable), det in bank.series.items():
            assert [type(r) for r in det.rules] == [type(r) for r in bank.rule_set.for_variable(variable, labels)]
        assert [c.name for c in bank.stations["sm1"].composites] == \
               [c.name for c in bank.rule_set.new_composites(labels)]


def test_a_tag_no_matcher_reads_does_not_refit_the_rules(tmp_path):
    """A device's sequence number in its tags changes every message: the rules are refitted only when a
    label some matcher reads changes (a review found every station's rules refitted each batch, at a
    cost growing with the square of the stations)."""
    from sources.batch import ObservationBatch
    from sources.schema import Observation

    engine = _engine(tmp_path)
    calls = []
    refit = engine.bank.relabel
    engine.bank.relabel = lambda *a: (calls.append(a[0]), refit(*a))[1]
    for k in range(4):
        engine.process_batch(ObservationBatch.from_observations(
            [Observation(1_704_067_200.0 + 600 * k + i, f"d{i}", "test", {"temp_c": 21.0, "pressure_hpa": 1000.0},
                         tags={"seq": str(k)}) for i in range(3)]))
    assert calls == [] and "kind" in engine.bank.rule_set.label_names
    engine.process_batch(_batch(1_704_070_000.0, 3, {"temp_c": 21.0}))
    engine.process_batch(_batch(1_704_070_500.0, 3, {"temp_c": 21.0, "tvoc_ppb": 100.0}))  # sm1 shows its kind
    assert calls == ["sm1"]


OUTDOOR = ["wind_mps", "gust_mps", "precip_mm", "cloud_cover_pct", "wave_height_m", "water_temp_c"]
INDOOR = ["tvoc_ppb", "eco2_ppm", "fire_alarm", "co2_ppm", "occupancy", "energy_kwh"]


@given(st.sets(st.sampled_from(OUTDOOR), min_size=1), st.sets(st.sampled_from(INDOOR + ["pressure_hpa", "temp_c",
                                                                                       "dewpoint_c"])))
def test_a_station_that_measures_wind_rain_cloud_or_sea_is_a_weather_station_whatever_else(outdoor, other):
    """The rule: wind, rain, cloud and the sea are measured outdoors only, so a weather station that
    also carries an air-quality sensor keeps the weather rules (a helper found one TVOC column
    made a desert station a smoke sensor: 23 smoke-ladder anomalies on a normal afternoon)."""
    from detectors.matchers import infer_kind

    assert infer_kind(outdoor | other) == "weather"


@given(st.sets(st.sampled_from(["pressure_hpa", "pressure_msl_hpa", "dewpoint_c", "temp_c"])),
       st.sampled_from([("smoke", "tvoc_ppb"), ("smoke", "eco2_ppm"), ("building", "co2_ppm"),
                        ("building", "occupancy")]))
def test_pressure_or_dewpoint_beside_an_indoor_variable_is_an_indoor_sensor(weak, indoor):
    """An indoor sensor may give pressure too (a BME680: temperature, humidity, pressure, VOC)."""
    from detectors.matchers import infer_kind

    kind, name = indoor
    assert infer_kind(weak | {name}) == kind


def test_a_weather_station_with_a_tvoc_sensor_keeps_the_weather_rules_and_the_log_says_its_kind(tmp_path, caplog):
    import logging

    engine = _engine(tmp_path)
    with caplog.at_level(logging.INFO, logger="mass_tui.engine"):
        engine.process_batch(_batch(1_704_067_200.0, 50, {"temp_c": 42.0, "humidity_pct": 8.0, "wind_mps": 3.0,
                                                          "pressure_hpa": 1008.0, "tvoc_ppb": 80.0}))
    detectors = {type(r).__name__ for det in engine.bank.series.values() for r in det.rules}
    assert "PressureTendency" in detectors
    said = [r.getMessage() for r in caplog.records if "inferred from" in r.getMessage()]
    assert said == ["station sm1: kind weather, inferred from wind_mps (a tags.kind in its messages overrides it)"]


def test_a_stations_kind_no_rule_names_is_warned_of_by_mass_config_and_the_engine(tmp_path, capsys, caplog):
    """A typo in `[[stations]] kind` ("weathr") quietly took the station out of the gust and pressure
    rules (a new-user check found it accepted without a word)."""
    import logging

    from mass_tui.cli import main

    toml = tmp_path / "mass.toml"
    toml.write_text('[[stations]]\nname = "x"\nlat = 1\nlon = 2\nkind = "weathr"\n'
                    '[[stations]]\nname = "y"\nlat = 1\nlon = 3\nkind = "building"\n'
                    '[[stations]]\nname = "z"\nlat = 1\nlon = 4\nkind = "greenhouse"\n'
                    '[rules.gust]\nmatch = { kind = ["weather", "green*"] }\n')
    assert main(["--config", str(toml), "--data-dir", str(tmp_path / "d"), "config"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "stations[0].kind = 'weathr'" in err[0] and "pass x by" in err[0]
    cfg = load_config(toml, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs")},
                      dotenv_file=None)
    with caplog.at_level(logging.WARNING, logger="mass_tui.engine"):
        Engine(cfg)
    assert [r.getMessage() for r in caplog.records if "weathr" in r.getMessage()] == [err[0].split("warning: ", 1)[1]]
