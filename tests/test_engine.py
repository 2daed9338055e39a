from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.sinks.jsonl import _stream_lines
from mass_tui.store import JsonlStore
from sources.batch import ObservationBatch
from sources.schema import Observation, iso_utc
from sources.variables import REGISTRY


def _smoke_recording(n: int = 600) -> list[Observation]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(n):
        fire = 400 <= i < 430
        values = {
            "temp_c": 22 + rng.normal(0, 0.3) + (30 if fire else 0),
            "humidity_pct": 45 + rng.normal(0, 1) - (30 if fire else 0),
            "tvoc_ppb": abs(150 + rng.normal(0, 20) + (3000 if fire else 0)),
            "eco2_ppm": abs(600 + rng.normal(0, 30) + (2500 if fire else 0)),
        }
        if i % 7:  # PM2.5 only in some messages: the composite carries it forward
            values["pm25_ugm3"] = abs(8 + rng.normal(0, 1) + (200 if fire else 0))
        out.append(Observation(1.7e9 + i * 60.0, "room-1" if i % 3 else "room-2", "test", values))
    return out


def _run(tmp_path, name: str, batches: list[list[Observation]]) -> tuple[bytes, bytes]:
    cfg = load_config(None, env={}, dotenv_file=None)
    db = tmp_path / name
    with JsonlStore(db) as store:
        engine = Engine(cfg, store)
        for batch in batches:
            engine.process(batch)
    return (db / "consumer_stream.jsonl").read_bytes(), (db / "anomalies.jsonl").read_bytes()


def test_live_one_by_one_stores_exactly_what_a_batch_replay_stores(tmp_path):
    obs = _smoke_recording()
    batch = _run(tmp_path, "batch", [obs])
    live = _run(tmp_path, "live", [[o] for o in obs])
    mixed = _run(tmp_path, "mixed", [obs[:1], obs[1:250], *[[o] for o in obs[250:300]], obs[300:]])
    assert live[0] == batch[0] and mixed[0] == batch[0]
    # Anomalies of one batch are sorted by time; compare as sets of lines.
    assert sorted(live[1].splitlines()) == sorted(batch[1].splitlines())
    assert sorted(mixed[1].splitlines()) == sorted(batch[1].splitlines())
    assert b'"detector":"fire"' in batch[1]  # the composite fire pattern fired
    assert b'"severity":"critical"' in batch[1]


def _stream_line_plainly(obs: Observation, scores: dict[str, float], order: list[str]) -> bytes:
    record: dict = {"ts": iso_utc(obs.ts), "station": obs.station, "source": obs.source}
    if obs.lat is not None:
        record["lat"], record["lon"] = obs.lat, obs.lon
    if obs.tags:
        record["tags"] = obs.tags
    present = [k for k in order if k in obs.values]  # variables in the batch's column order
    record.update((k, obs.values[k]) for k in present)
    record["anomaly_score"] = {k: float(np.rint(scores[k] * 10000.0) / 10000.0) for k in present if k in scores}
    return orjson.dumps(record)


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6)
_readings = st.dictionaries(st.sampled_from(["temp_c", "pressure_hpa", "gust_mps", "occupancy"]),
                            st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["a", "%s", 'q"\\', "ünï"]), _names, _readings,
                               st.integers(0, 3), st.sampled_from([0.0, 0.5, 1e-6, -3e9])),
                     min_size=1, max_size=30),
       seed=st.integers(0, 99))
def test_stream_lines_are_the_records_orjson_writes(rows, seed):
    """The column-at-a-time writer gives the same bytes as a dict and orjson.dumps per row: with and
    without a position and tags (as columns), at whole and fractional seconds, before 1970 too."""
    places = [(None, None, {}), (1.5, -2.25, {}), (None, None, {"floor": "2"}), (-33.8, 151.0, {"a": "%s", "b": ""})]
    obs = [Observation(1.7e9 + 60 * k + shift, station, source, values, *places[extra])
           for k, station, source, values, extra, shift in rows]
    batch = ObservationBatch.from_observations(obs)
    rng = np.random.default_rng(seed)
    scores = {name: np.where(np.isnan(col), np.nan, rng.random(col.size))
              for name, col in batch.columns.items() if REGISTRY[name].scored}
    per_row = [{name: float(col[i]) for name, col in scores.items()} for i in range(len(batch))]
    order = list(batch.columns)
    expected = [_stream_line_plainly(o, s, order) for o, s in zip(obs, per_row, strict=True)]
    assert _stream_lines(batch, scores) == expected


_good = st.builds(
    lambda i, station, temp: orjson.dumps({"ts": 1_700_000_000 + 60 * i, "station": station, "temp_c": temp}),
    st.integers(0, 50), st.sampled_from(["a", "b"]), st.floats(-30, 45, allow_nan=False),
)
_junk = st.one_of(st.binary(max_size=60), st.just(b'{"ts": "soon", "station": "a", "temp_c": 1}'),
                  st.just(b'{"ts": 1700000000, "station": "a", "temp_c": 900}'), st.just(b"[1, 2]"),
                  st.just(b'{"ts": 1700000000, "station": "a", "temp_c": "hot"}'))


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(st.one_of(_good, _junk), max_size=30), min_size=1, max_size=5))
def test_malformed_messages_never_stop_the_pipeline_and_every_message_is_accounted_for(batches):
    """Whatever arrives, in whatever batches: nothing raises, and each message is stored,
    quarantined with a reason, or counted as a duplicate, exactly once."""
    cfg = load_config(None, env={}, dotenv_file=None)
    with tempfile.TemporaryDirectory() as tmp, JsonlStore(Path(tmp)) as store:
        engine = Engine(cfg, store)
        for raws in batches:
            engine.ingest(raws, default_source="fuzz")
        stored = (Path(tmp) / "consumer_stream.jsonl").read_bytes().splitlines() if engine.counters.observations else []
        rejected = [orjson.loads(line) for line in (Path(tmp) / "rejected.jsonl").read_bytes().splitlines()] \
            if engine.counters.rejected else []
    c = engine.counters
    assert c.observations + c.rejected + c.duplicates == sum(map(len, batches))
    assert len(stored) == c.observations and len(rejected) == c.rejected
    assert all(r["reason"] and "raw" in r for r in rejected)


def test_the_duplicate_check_remembers_a_bounded_number_of_instants_whatever_the_stations():
    """Memory is `capacity` instants over all stations, whatever the stream's length or time step;
    without a store, a re-read beyond it cannot be recognised (stored, late), with one it is a duplicate."""
    from mass_tui.lateness import REMEMBERED, OrderCheck

    def batch(t: np.ndarray, station: str = "s") -> ObservationBatch:
        return ObservationBatch(t, [station] * t.size, ["x"] * t.size, {"temp_c": np.full(t.size, 1.0)})

    check = OrderCheck(capacity=100)
    for start in range(0, 20_000, 500):
        t = np.arange(start, start + 500) * 60.0  # a reading a minute
        check.check(batch(t, f"s{start % 3}"))
    assert check.remembered() == 100
    again = check.check(batch(t[-10:], "s0"))
    assert again.duplicates == 10 and len(again.batch) == 0  # within the memory
    bare = check.check(batch(t[:1], "s0"))
    assert bare.duplicates == 0 and bare.late == 1  # beyond it, and nothing to ask
    assert REMEMBERED >= 4 * 4096  # a whole transport read re-read after a crash, with room

    with tempfile.TemporaryDirectory() as tmp, JsonlStore(Path(tmp)) as store:
        cfg = load_config(None, env={}, dotenv_file=None)
        engine = Engine(cfg, store)
        engine.order = OrderCheck(capacity=100, store=store)
        t = np.arange(2000) * 60.0 + 1.7e9
        engine.process_batch(batch(t))
        engine.sync()
        old = engine.order.check(batch(t[:5]))
        assert old.duplicates == 5 and old.late == 0 and engine.order.recalls == 1
        assert engine.order.remembered() <= 100 + 5


def _weather_batch(seed: int, days: int = 40) -> ObservationBatch:
    """Hourly readings of two stations, one variable with gaps: many daily-profile folds per batch."""
    rng = np.random.default_rng(seed)
    n = days * 24
    t = np.repeat(1.7e9 + np.arange(n) * 3600.0, 2)
    day = np.sin(2 * np.pi * t / 86400.0)
    columns = {
        "temp_c": np.round(12 + 6 * day + rng.normal(0, 0.4, t.size), 1),
        "humidity_pct": np.round(70 - 15 * day + rng.normal(0, 2, t.size), 0),
        "pressure_hpa": np.round(1010 + np.cumsum(rng.normal(0, 0.05, t.size)), 2),
        "wind_mps": np.where(rng.random(t.size) < 0.1, np.nan, np.abs(rng.normal(4, 1.5, t.size))),
    }
    columns["temp_c"][rng.integers(0, t.size, 3)] += 15  # a few spikes to announce
    return ObservationBatch(t, ["a", "b"] * n, ["test"] * t.size, columns)


def _together_scores_what_alone_scores(whole, cuts: list[int]) -> None:
    """`whole` fed in parts of `cuts` rows to an engine stepping series together and to one stepping
    each alone (step_series): the same scores and anomalies, part after part."""
    cfg = load_config(None, env={}, dotenv_file=None)
    together, alone = Engine(cfg), Engine(cfg)
    alone.bank.step_many = lambda requests, detail: [alone.bank.step_series(r.station, r.variable, r.times, r.values)
                                             for r in requests]
    i = k = 0
    while i < len(whole):
        part = whole.select(np.arange(i, min(i + cuts[k % len(cuts)], len(whole))))
        a, b = together.process_batch(part), alone.process_batch(part)
        assert a.scores.keys() == b.scores.keys()
        assert all(np.array_equal(a.scores[v], b.scores[v], equal_nan=True) for v in a.scores)
        assert a.anomalies == b.anomalies
        i, k = i + len(part), k + 1
    assert together.counters.anomalies > 0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), cuts=st.lists(st.integers(1, 700), min_size=1, max_size=8))
def test_series_stepped_together_score_what_each_alone_scores(seed, cuts):
    """The engine steps the series read at the same times together, across stations
    (DetectorBank.step_many: Ensemble.step_rows, detectors.seasonal.step_profiles): the same scores
    and anomalies as each series alone."""
    whole = _weather_batch(seed)
    _together_scores_what_alone_scores(whole, cuts)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), cuts=st.lists(st.integers(1, 700), min_size=1, max_size=8),
       gaps=st.lists(st.sampled_from([0.0, 0.005, 0.05, 0.5]), min_size=4, max_size=4))
def test_series_with_gaps_stepped_together_score_what_each_alone_scores(seed, cuts, gaps):
    """Series with random gaps (a field set aside, a missing value) step their daily profiles with
    their station's other series (DetectorBank.step_many, SeriesRequest.present): the same scores and
    anomalies as each series alone, whole days without a value of a series and stations whose rows
    differ included."""
    whole = _weather_batch(seed)
    rng = np.random.default_rng(seed + 1)
    for rate, col in zip(gaps, whole.columns.values(), strict=True):
        col[rng.random(col.size) < rate] = np.nan
    whole.columns["pressure_hpa"][(np.floor(whole.ts / 86400.0) % 9 == 4) & (rng.random(whole.ts.size) < 0.8)] = np.nan
    keep = np.flatnonzero(rng.random(len(whole)) >= 0.01)  # rows of one station or the other gone
    whole = whole.select(keep)
    _together_scores_what_alone_scores(whole, cuts)


def test_a_series_with_a_field_set_aside_steps_its_daily_profile_with_its_station(monkeypatch):
    """A field set aside in one row (NaN there) leaves its series with a gap: its daily profile still
    steps with the station's other series, in one step_profiles call, with the same scores."""
    import detectors.bank as bank_module

    calls: list[tuple[int, bool]] = []
    real = bank_module.step_profiles

    def counted(profiles, x, t, present=None):
        calls.append((len(profiles), present is not None))
        return real(profiles, x, t, present)

    monkeypatch.setattr(bank_module, "step_profiles", counted)
    whole = _weather_batch(5, days=6)
    whole.columns["wind_mps"][:] = 4.0 + np.sin(np.arange(len(whole)))  # no gaps but one
    whole.columns["temp_c"][[7, 101]] = np.nan
    cfg = load_config(None, env={}, dotenv_file=None)
    together, alone = Engine(cfg), Engine(cfg)
    alone.bank.step_many = lambda requests, detail: [alone.bank.step_series(r.station, r.variable, r.times, r.values)
                                             for r in requests]
    a, b = together.process_batch(whole), alone.process_batch(whole)
    assert all(np.array_equal(a.scores[v], b.scores[v], equal_nan=True) for v in a.scores)
    assert a.anomalies == b.anomalies
    # both stations' 4 series in one group (their times are the same), b's temp_c with gaps (rows 7 and 101)
    assert calls == [(8, True)]


def test_series_are_marked_seen_in_station_order_when_one_row_and_many_row_stations_mix():
    """Stations with one message take the live path at once and the others are scored together after,
    yet the bank sees the series in the batch's station order (what eviction of idle series reads)."""
    cfg = load_config(None, env={}, dotenv_file=None)
    engine = Engine(cfg)
    assert engine.bank.max_series

    def batch(stations: list[str], t0: float) -> ObservationBatch:
        t = t0 + np.arange(len(stations)) * 60.0
        return ObservationBatch(t, stations, ["test"] * len(stations),
                                {"temp_c": np.full(len(stations), 20.0), "humidity_pct": np.full(len(stations), 50.0)})

    engine.process_batch(batch(["c", "b", "b", "a"], 1.7e9))  # allocated in another order first
    engine.process_batch(batch(["a", "b", "c", "b", "b"], 1.7e9 + 3600))  # a and c: one row each
    assert list(engine.bank.series) == [(s, v) for s in "abc" for v in ("temp_c", "humidity_pct")]
