"""Windowed aggregates: event-time windows, allowed lateness, groups, daily summaries against the raw rows."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.aggregates import Aggregator, decode, latest, parse_window
from mass_tui.sinks.aggregates import AggregateSink
from mass_tui.store import STREAM, JsonlStore
from sources.schema import parse_time
from tests.conftest import SANDY
from tests.history_helpers import aggregate_records, replay_into, stored

T0 = parse_time("2012-10-29T10:00:00Z")


def _windows(records, window="1h", variable="v"):
    return {r["ts"]: r for r in records if r["kind"] == "window" and r["window"] == window
            and r["variable"] == variable and r["scope"] == "station"}


def test_parse_window():
    assert [parse_window(s) for s in ("30s", "1m", "15m", "1h", "1d")] == [30, 60, 900, 3600, 86400]
    for bad in ("", "1", "h", "0m", "-1h", "1w", "1.5h"):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_a_late_reading_updates_its_open_window_and_a_later_one_is_counted_not_aggregated():
    agg = Aggregator({"1h": 3600.0}, lateness=1800.0, groups=())

    def add(minutes: float, value: float):
        return decode(agg.add("s", {}, np.array([T0 + minutes * 60]), {"v": np.array([value])}))

    assert add(10, 1.0) == [] and add(50, 2.0) == [] and add(80, 5.0) == []
    # 10:40 arrives after 11:20: its window [10:00, 11:00) is open until 11:30.
    assert add(40, 3.0) == []
    closed = add(105, 6.0)  # 11:45: the watermark passes 11:30, the 10:00 window closes
    (w,) = _windows(closed).values()
    assert (w["count"], w["mean"], w["min"], w["max"], w["late"], w["final"]) == (3, 2.0, 1.0, 3.0, 1, True)
    assert w["min_ts"] == "2012-10-29T10:10:00Z" and w["max_ts"] == "2012-10-29T10:40:00Z"
    assert add(55, 9.0) == []  # 10:55 now: too late, counted, aggregated nowhere
    assert agg.too_late == {"s": {"1h": 1}} and agg.late == {"s": {"1h": 1}}
    (open_,) = _windows(decode(agg.flush())).values()
    assert (open_["count"], open_["final"]) == (2, False)


def test_group_windows_add_up_their_stations():
    agg = Aggregator({"1h": 3600.0}, lateness=0.0, groups=("building", "building+floor"))
    ts = np.array([T0, T0 + 600])
    agg.add("r1", {"building": "b1", "floor": "1"}, ts, {"energy_kwh": np.array([1.0, 2.0])})
    agg.add("r2", {"building": "b1", "floor": "2"}, ts, {"energy_kwh": np.array([3.0, np.nan])})
    agg.add("r3", {"building": "b2", "floor": "1"}, ts, {"energy_kwh": np.array([4.0, 4.0])})
    records = decode(agg.flush())
    by = {(r["scope"], r["key"]): r for r in records if r["kind"] == "window"}
    assert by[("building", "b1")]["count"] == 3 and by[("building", "b1")]["sum"] == 6.0
    assert by[("building+floor", "b1/2")]["sum"] == 3.0 and by[("building", "b2")]["sum"] == 8.0
    assert by[("station", "r1")]["sum"] == 3.0 and "station" not in by[("building", "b1")]


def test_sums_only_for_quantities_that_accumulate():
    agg = Aggregator({"1h": 3600.0}, lateness=0.0, groups=())
    agg.add("s", {}, np.array([T0]), {"precip_mm": np.array([1.5]), "temp_c": np.array([3.0])})
    by = {r["variable"]: r for r in decode(agg.flush()) if r["kind"] == "window"}
    assert by["precip_mm"]["sum"] == 1.5 and "sum" not in by["temp_c"]


def _daily_from_raw(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """The daily summary computed plainly from stored observation rows (the test's own arithmetic)."""
    days: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        days[(r["station"], r["ts"][:10])].append(r)
    out = {}
    for key, rs in days.items():
        def values(name, rs=rs):
            return [(r[name], r["ts"]) for r in rs if r.get(name) is not None]

        gust, temp, rain = values("gust_mps"), values("temp_c"), values("precip_mm")
        pressure = values("pressure_msl_hpa") or values("pressure_hpa")
        top = min(gust, key=lambda x: (-x[0], x[1])) if gust else (None, None)  # the first time of the max
        out[key] = {
            "observations": len(rs),
            "gust_max": top[0], "gust_max_ts": top[1],
            "temp_min": min(v for v, _ in temp) if temp else None,
            "temp_max": max(v for v, _ in temp) if temp else None,
            "temp_mean": sum(v for v, _ in temp) / len(temp) if temp else None,
            "precip_total": sum(v for v, _ in rain) if rain else None,
            "pressure_range": max(v for v, _ in pressure) - min(v for v, _ in pressure) if pressure else None,
        }
    return out


def _close(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-6))


@pytest.mark.parametrize("recording,station", [(SANDY, "ndbc-44005"), ("asos", None)])
def test_daily_aggregates_match_the_raw_rows(tmp_path, shared, recording, station):
    path = shared / "weather" / "asos_midwest_cyclone_2010-10.csv" if recording == "asos" else recording
    replay_into(tmp_path, path, station=station)
    rows = stored(tmp_path / "db" / STREAM)
    expected = _daily_from_raw(rows)
    daily = {(r["station"], r["day"]): r for r in latest(aggregate_records(tmp_path / "db"))
             if r["kind"] == "daily"}
    assert set(daily) == set(expected) and len(daily) > 5
    for key, want in expected.items():
        got = daily[key]
        assert got["observations"] == want["observations"], key
        assert got["gust_max_ts"] == want["gust_max_ts"], key
        for name in ("gust_max", "temp_min", "temp_max", "temp_mean", "precip_total", "pressure_range"):
            assert _close(got[name], want[name]), (key, name, got[name], want[name])
    if recording == "asos":
        assert any(want["precip_total"] for want in expected.values())  # rain totals were checked, not only nulls
    # Hourly means per variable, from the raw rows.
    hourly = defaultdict(list)
    for r in rows:
        hourly[(r["station"], r["ts"][:13], "temp_c")].append(r.get("temp_c"))
    windows = {(r["station"], r["ts"][:13], r["variable"]): r for r in latest(aggregate_records(tmp_path / "db"))
               if r["kind"] == "window" and r["window"] == "1h" and r["scope"] == "station"}
    for key, values in hourly.items():
        values = [v for v in values if v is not None]
        if values:
            assert windows[key]["count"] == len(values) and _close(windows[key]["mean"], sum(values) / len(values))


def test_a_restart_completes_the_open_day_from_the_stored_stream(tmp_path):
    """Half the recording, stop (open windows written as not final), the rest after a restart:
    the last record of each day equals one uninterrupted run's."""
    whole = tmp_path / "whole"
    replay_into(whole, SANDY, station="ndbc-44005")
    want = {r["day"]: r for r in latest(aggregate_records(whole / "db")) if r["kind"] == "daily"}

    from mass_tui.engine import Engine
    from tests.history_helpers import config_for, decoded, parts

    cut = 400  # mid-day
    for half in (0, 1):
        cfg = config_for(tmp_path / "split")
        store = JsonlStore(cfg.db_dir)
        engine = Engine(cfg, store, sinks=[AggregateSink(store)])
        batch = decoded(engine, SANDY, "ndbc-44005")
        engine.process_batch(parts(batch, cut)[0] if half == 0 else batch.select(np.arange(cut, len(batch))))
        engine.sinks.close()
        store.close()
    got = {r["day"]: r for r in latest(aggregate_records(tmp_path / "split" / "db")) if r["kind"] == "daily"}
    assert got.keys() == want.keys()
    for day in want:
        assert {k: v for k, v in got[day].items() if k != "final"} == \
               {k: v for k, v in want[day].items() if k != "final"}, day


readings = st.lists(st.tuples(st.integers(0, 6 * 3600), st.floats(-50, 50, allow_nan=False)), min_size=1,
                    max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["r1", "r2", "r3"]), st.lists(st.integers(0, 12 * 3600), min_size=1,
                                                                        max_size=12)), min_size=1, max_size=10),
       st.integers(0, 3600))
def test_property_a_group_counts_what_it_leaves_out(batches, lateness):
    """A station that lags the others sends readings its group's watermark has passed: each reading
    is in its group's window, one per window size, or counted under the group's too-late (a review
    found them left out with nothing said)."""
    agg = Aggregator({"1m": 60.0, "1h": 3600.0}, lateness=float(lateness), groups=("building",))
    records = []
    for station, times in batches:
        ts = np.array([T0 + t for t in sorted(times)], dtype=float)  # each station in its own time order
        records += agg.add(station, {"building": "b1"}, ts, {"v": np.ones(len(ts))})
    records = decode(records + agg.flush())
    total = sum(len(times) for _station, times in batches)
    for window in ("1m", "1h"):
        counted = sum(r["count"] for r in latest(records) if r["kind"] == "window" and r["window"] == window
                      and r["scope"] == "building" and r["variable"] == "v")
        assert counted + agg.group_too_late.get("building=b1", {}).get(window, 0) == total


@settings(max_examples=60, deadline=None)
@given(readings, st.integers(0, 3600), st.lists(st.integers(1, 60), min_size=1, max_size=8))
def test_property_every_reading_is_aggregated_once_or_counted_too_late(items, lateness, cuts):
    """The lateness rule loses nothing silently: whatever the order and the batch cuts, each
    reading is in exactly one window per window size, or counted as too late."""
    agg = Aggregator({"1m": 60.0, "1h": 3600.0}, lateness=float(lateness), groups=())
    ts = np.array([T0 + t for t, _ in items], dtype=float)
    vs = np.array([v for _, v in items])
    records, i, k = [], 0, 0
    while i < len(items):
        n = cuts[k % len(cuts)]
        records += agg.add("s", {}, ts[i:i + n], {"v": vs[i:i + n]})
        i, k = i + n, k + 1
    records = decode(records + agg.flush())
    for window in ("1m", "1h"):
        counted = sum(r["count"] for r in records if r["kind"] == "window" and r["window"] == window)
        assert counted + agg.too_late.get("s", {}).get(window, 0) == len(items)
    keys = [(r["window"], r["ts"]) for r in records]
    assert len(keys) == len(set(keys))  # each window written once


@settings(max_examples=60, deadline=None)
@given(readings, st.sampled_from([0.0, 60.0, 1800.0, 3600.0]), st.lists(st.integers(1, 60), min_size=1, max_size=8))
def test_property_the_same_lines_whatever_the_batches_one_reading_or_many(items, lateness, cuts):
    """Streaming equals batch: in any order, any cut into batches gives the same lines as one
    reading at a time (the plain-float path) and as one batch (the column path)."""
    items = [(t, float(round(v))) for t, v in items]  # whole numbers: sums exact in any grouping
    ts = np.array([T0 + t for t, _ in items], dtype=float)
    vs = np.array([v for _, v in items])

    def run(sizes):
        agg = Aggregator({"1m": 60.0, "1h": 3600.0, "1d": 86400.0}, lateness=lateness, groups=("building",))
        out, i, k = [], 0, 0
        while i < len(items):
            n = sizes[k % len(sizes)]
            out += agg.add("s", {"building": "b"}, ts[i:i + n], {"v": vs[i:i + n], "temp_c": vs[i:i + n] / 2})
            i, k = i + n, k + 1
        records = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in decode(out + agg.flush())]
        return sorted(records), agg.too_late, agg.late

    assert run(cuts) == run([len(items)]) == run([1])


_VARIABLES = ("temp_c", "gust_mps", "pressure_msl_hpa", "pressure_hpa", "precip_mm")
_STATIONS = {"a": {}, "b": {"building": "b1", "floor": "2"}, "c": {"building": "b1", "floor": "3"}}
sink_rows = st.lists(
    st.tuples(st.sampled_from(sorted(_STATIONS)), st.integers(0, 4 * 86400),
              st.lists(st.one_of(st.none(), st.integers(-20, 40)), min_size=len(_VARIABLES),
                       max_size=len(_VARIABLES))),
    min_size=1, max_size=80)


@settings(max_examples=40, deadline=None)
@given(sink_rows, st.sampled_from([0.0, 600.0, 3600.0]), st.lists(st.integers(1, 80), min_size=1, max_size=6),
       st.booleans())
def test_property_the_sink_writes_the_same_records_for_any_batches_of_several_stations(rows, lateness, cuts, ordered):
    """The sink splits a batch by station and a station's days that open and close within it go
    straight to daily summaries: whatever the cuts (days apart, stations interleaved, in or out of
    time order), the records equal those of one reading at a time."""
    import tempfile

    from mass_tui.scored import BatchResult
    from sources.batch import ObservationBatch
    from sources.schema import Observation

    if ordered:
        rows = sorted(rows, key=lambda r: r[1])
    observations = [Observation(T0 + t, station, "test", {k: float(v) for k, v in zip(_VARIABLES, values, strict=True)
                                                          if v is not None} or {"temp_c": 1.0},
                                tags=_STATIONS[station]) for station, t, values in rows]

    def run(sizes: list[int]) -> tuple:
        with tempfile.TemporaryDirectory() as tmp:
            store = JsonlStore(tmp)
            sink = AggregateSink(store, Aggregator(lateness=lateness))
            i = k = 0
            while i < len(observations):
                n = sizes[k % len(sizes)]
                sink.write(BatchResult(ObservationBatch.from_observations(observations[i:i + n]), [], 0))
                i, k = i + n, k + 1
            sink.close()
            records = aggregate_records(Path(tmp))
            store.close()
        keyed = sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records)
        summary = sink.summary()
        # "records" counts windows, not the lines that pack them (which the cuts decide)
        assert summary["records"] == len(records)
        return keyed, summary["late"], summary["too_late"], summary["records"]

    one_by_one = run([1])
    assert run(cuts) == one_by_one == run([len(observations)])
    assert any(b'"kind":"daily"' in r for r in one_by_one[0])
