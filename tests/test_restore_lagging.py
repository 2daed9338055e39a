"""A restart rebuilds every station's open windows, also a station that lags the others.

The rebuild read the stored stream from a day before the newest reading of all. A station whose
last reading was older (a file laid out station after station and cut short, a station that went
quiet) lost its open windows, and its next readings started them afresh: the day's summary after
the second run counted 12 of 24 hours, marked final, over the right one written at the stop.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mass_tui.aggregates import latest
from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.store import STREAM, JsonlStore, read_recent
from tests.history_helpers import aggregate_records, replay_into

DAY = 1_704_067_200  # 2024-01-01T00:00:00Z


def _csv(path: Path, rows: list[tuple[str, int, float]]) -> Path:
    path.write_text("station,ts,temp_c\n" + "".join(f"{s},{t},{v}\n" for s, t, v in rows))
    return path


def _final(db: Path) -> list[dict]:
    """The last record of every window and day, without its `final` flag (a stop writes it open)."""
    return sorted((({k: v for k, v in r.items() if k != "final"}) for r in latest(aggregate_records(db))),
                  key=lambda r: sorted((k, str(v)) for k, v in r.items()))


def _rows(station: str, hours: range, start: int = DAY) -> list[tuple[str, int, float]]:
    return [(station, start + h * 3600, round(10 + h % 24 * 0.5 + (h % 7) * 0.1, 2)) for h in hours]


def test_a_station_that_stopped_a_week_before_the_others_completes_its_day(tmp_path):
    first = _rows("a", range(0, 12)) + _rows("b", range(0, 240))  # b goes on for ten days
    rest = _rows("a", range(12, 24))
    replay_into(tmp_path / "split", _csv(tmp_path / "p1.csv", first))
    replay_into(tmp_path / "split", _csv(tmp_path / "p2.csv", rest))
    replay_into(tmp_path / "whole", _csv(tmp_path / "all.csv", first + rest))
    got = _final(tmp_path / "split" / "db")
    day = [r for r in got if r["kind"] == "daily" and r["station"] == "a"]
    assert [r["observations"] for r in day] == [24]
    assert got == _final(tmp_path / "whole" / "db")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(2, 200), min_size=2, max_size=4),
       cuts=st.lists(st.floats(0.05, 0.95), min_size=4, max_size=4),
       offsets=st.lists(st.integers(0, 120), min_size=4, max_size=4))
def test_any_stations_cut_anywhere_end_as_one_run(tmp_path_factory, lengths, cuts, offsets):
    """The rule: whatever share of each station's hours the first run stored (stations that start and
    stop days apart, laid out one after another), a second run with the rest leaves the same final
    windows and days as one run of everything."""
    tmp = tmp_path_factory.mktemp("lag")
    first, rest = [], []
    for k, n in enumerate(lengths):
        rows = _rows(f"s{k}", range(n), DAY + offsets[k] * 3600)
        cut = max(1, int(n * cuts[k]))
        first += rows[:cut]
        rest += rows[cut:]
    replay_into(tmp / "split", _csv(tmp / "p1.csv", first))
    replay_into(tmp / "split", _csv(tmp / "p2.csv", rest))
    replay_into(tmp / "whole", _csv(tmp / "all.csv", first + rest))
    assert _final(tmp / "split" / "db") == _final(tmp / "whole" / "db")


def test_warm_start_feeds_a_lagging_station_its_own_last_hours(tmp_path):
    replay_into(tmp_path, _csv(tmp_path / "p1.csv", _rows("a", range(0, 12)) + _rows("b", range(0, 240))))
    with JsonlStore(tmp_path / "db") as store:
        records = read_recent(store, STREAM, DAY + 239 * 3600 - 6 * 3600, since_of=lambda last: last - 6 * 3600)
        assert sorted({r["station"] for r in records}) == ["a", "b"]
        assert sum(r["station"] == "a" for r in records) == 7  # hours 5 to 11
        cfg = load_config(env={}, dotenv_file=None, overrides={"data.dir": str(tmp_path)})
        engine = Engine(cfg, store)
        assert engine.warm(6.0) == 7 + 7
