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
