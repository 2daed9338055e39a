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


def test_the_duplicate_check_remembers_a_bounded_span_per_station():
    """Memory per station is bounded by the horizon (and a count), whatever the stream's length."""
    from mass_tui.lateness import SEEN_PER_STATION, OrderCheck

    check = OrderCheck(horizon_s=3600.0)
    for start in range(0, 20_000, 500):
        t = np.arange(start, start + 500) * 60.0  # a reading a minute
        check.check(ObservationBatch(t, ["s"] * t.size, ["x"] * t.size, {"temp_c": np.full(t.size, 1.0)}))
    seen = check._seen["s"]
    assert len(seen) <= 61 and min(seen) >= t[-1] - 3600.0
    # A re-read within the horizon is still a duplicate; one beyond it is late (and stored).
    again = check.check(ObservationBatch(t[-10:], ["s"] * 10, ["x"] * 10, {"temp_c": np.full(10, 1.0)}))
    assert again.duplicates == 10 and len(again.batch) == 0
    old = check.check(ObservationBatch(t[:1], ["s"], ["x"], {"temp_c": np.full(1, 1.0)}))
    assert old.duplicates == 0 and old.late == 1
    assert SEEN_PER_STATION >= 4096  # a whole transport batch re-read after a crash


def test_a_batch_longer_than_the_memory_leaves_what_small_batches_leave():
    """A replay's batch of many instants keeps only the newest SEEN_PER_STATION (what the trim
    would leave): the same memory, in the same order, as the stream fed a few rows at a time."""
    from mass_tui.lateness import SEEN_PER_STATION, OrderCheck

    t = np.arange(3 * SEEN_PER_STATION) * 60.0
    values = np.arange(t.size, dtype=float)

    def feed(size: int) -> OrderCheck:
        check = OrderCheck(horizon_s=1e9)
        check.check(ObservationBatch(t[:5], ["s"] * 5, ["x"] * 5, {"temp_c": values[:5]}))
        for i in range(5, t.size, size):
            part = slice(i, min(i + size, t.size))
            n = part.stop - part.start
            check.check(ObservationBatch(t[part], ["s"] * n, ["x"] * n, {"temp_c": values[part]}))
        return check

    whole, small = feed(t.size), feed(700)
    assert list(whole._seen["s"].items()) == list(small._seen["s"].items())
    assert len(whole._seen["s"]) == SEEN_PER_STATION and min(whole._seen["s"]) == t[-SEEN_PER_STATION]
    again = whole.check(ObservationBatch(t[-SEEN_PER_STATION:], ["s"] * SEEN_PER_STATION, ["x"] * SEEN_PER_STATION,
                                         {"temp_c": values[-SEEN_PER_STATION:]}))
    assert again.duplicates == SEEN_PER_STATION
