"""A replay stopped part way and run again scores what one run that never stopped scores.

The rerun drops what the first run stored as duplicates (tests/test_duplicates.py). Its detectors used
to start cold at the first new row, so the rest of the file got other scores and other anomalies
than one clean run (README's known gaps said so). The order check now hands the duplicates that the
detectors of their series have not seen back to the engine, which feeds them as a warm start does
(`Ordered.unseen`, `Engine._feed`): scored, not stored, counted or reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.replay import replay_file
from mass_tui.store import JsonlStore


def _recording(rows: int, stations: int, seed: int, special: bool = False) -> list[str]:
    """Hourly readings of `stations` stations with a daily cycle, noise, and a few spikes and a step;
    `special`: every sixth reading of a station is followed by a special report of the same instant
    with the same temperature and the humidity the routine one lacks (a second line, one new value)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(rows):
        step, s = divmod(k, stations)
        temp = 12 + 6 * np.sin(2 * np.pi * step / 24) + rng.normal(0, 0.4) + (9 if step % 97 == 50 else 0)
        pressure = 1012 + (step // 150) * 3 + rng.normal(0, 0.2)
        ts, station = 1_704_067_200 + 3600 * step, f"st{s}"
        out.append(json.dumps({"ts": ts, "station": station, "temp_c": round(float(temp), 2),
                               "pressure_msl_hpa": round(float(pressure), 2)}))
        if special and step % 6 == 0:
            humidity = 60 + 20 * np.sin(2 * np.pi * step / 24) + rng.normal(0, 2) + (30 if step % 150 == 75 else 0)
            out.append(json.dumps({"ts": ts, "station": station, "temp_c": round(float(temp), 2),
                                   "humidity_pct": round(float(humidity), 1)}))
    return out


def _replay(root: Path, db: Path, lines: list[str], **env: str) -> None:
    """Replay `lines` as root/rec.jsonl into `db` (a run that stopped part way: the lines it got to)."""
    path = root / "rec.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    cfg = load_config(None, env={"MASS_DATA_DIR": str(db.parent), "MASS_LOG_DIR": str(root / "logs"), **env},
                      dotenv_file=None)
    with JsonlStore(db) as store:
        engine = Engine(cfg, store)
        assert replay_file(engine, path)
        engine.sync()


def _stored(db: Path) -> tuple[list[str], list[dict]]:
    stream = (db / "consumer_stream.jsonl").read_text().splitlines()
    anomalies = [json.loads(line) for line in (db / "anomalies.jsonl").read_text().splitlines()] \
        if (db / "anomalies.jsonl").exists() else []
    # in time order; those of one instant in station order (a batch lists its stations in the order they
    # first come, which depends on where the batch starts)
    return stream, sorted(anomalies, key=lambda a: (a["ts"], a["station"], a["variable"], a["detector"]))


def test_a_replay_stopped_part_way_and_run_again_stores_the_scores_and_anomalies_of_one_run(tmp_path):
    lines = _recording(3000, 2, seed=1)
    _replay(tmp_path / "clean", tmp_path / "clean" / "data" / "db", lines)
    resumed = tmp_path / "resumed" / "data" / "db"
    _replay(tmp_path / "resumed", resumed, lines[:1700])  # the run that stopped: the first 1,700 lines
    first, _ = _stored(resumed)
    _replay(tmp_path / "resumed", resumed, lines)
    clean_stream, clean_anomalies = _stored(tmp_path / "clean" / "data" / "db")
    stream, anomalies = _stored(resumed)
    assert len(first) == 1700 and len(clean_anomalies) > 5  # the stop came part way, past some anomalies
    assert stream == clean_stream  # every row once, with the clean run's scores
    assert anomalies == clean_anomalies


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(400, 1500), stations=st.integers(1, 3), cut=st.floats(0.05, 0.95),
       seed=st.integers(0, 1000), twice=st.booleans(), special=st.booleans(), cap=st.sampled_from([0, 3, 5]))
def test_property_any_stop_point_resumes_to_the_clean_runs_store(tmp_path_factory, rows, stations, cut, seed, twice,
                                                                 special, cap):
    """The rule: for any recording and any point (or two) a replay stopped at, running it again leaves the
    store a clean run leaves: the same stream lines (scores included) and the same anomalies. With special
    reports (a second line of an instant bringing another variable: its value is fed alone) and with a cap
    on the series (`detectors.max_series`: the fed readings are admitted with their batch, once)."""
    tmp = tmp_path_factory.mktemp("resume")
    lines = _recording(rows, stations, seed, special)
    env = {"MASS_MAX_SERIES": str(cap)}
    _replay(tmp / "clean", tmp / "clean" / "data" / "db", lines, **env)
    db = tmp / "resumed" / "data" / "db"
    stops = sorted({int(len(lines) * cut * 0.5), int(len(lines) * cut)}) if twice else [int(len(lines) * cut)]
    for stop in stops:
        _replay(tmp / "resumed", db, lines[:max(stop, 1)], **env)
    _replay(tmp / "resumed", db, lines, **env)
    assert _stored(db) == _stored(tmp / "clean" / "data" / "db")


def test_a_special_report_after_the_stop_point_feeds_its_new_variable(tmp_path):
    """The helper's case: hourly special reports bring pressure at an instant whose temperature the routine
    line had; the rerun's detectors must see that pressure (fed per value, not per line), or every
    pressure score after the stop is a cold detector's 0.0."""
    lines = _recording(1500, 1, seed=3, special=True)
    _replay(tmp_path / "clean", tmp_path / "clean" / "data" / "db", lines)
    db = tmp_path / "resumed" / "data" / "db"
    _replay(tmp_path / "resumed", db, lines[:900])
    _replay(tmp_path / "resumed", db, lines)
    assert _stored(db) == _stored(tmp_path / "clean" / "data" / "db")


def test_a_live_consumer_feeds_no_duplicate(tmp_path):
    """Outside a replay the check hands nothing back: a live consumer warms from the store at its start
    (store.warm_hours), and a series evicted while idle starts cold, whatever a source re-delivers."""
    from mass_tui.lateness import OrderCheck
    from sources.batch import ObservationBatch

    with JsonlStore(tmp_path / "db") as store:
        store.append("consumer_stream.jsonl", [{"ts": 1000.0 + k, "station": "a", "temp_c": 1.0} for k in range(5)])
        store.sync()
        batch = ObservationBatch(ts=np.arange(1000.0, 1006.0), station=["a"] * 6, source=["x"] * 6,
                                 columns={"temp_c": np.ones(6)})
        assert OrderCheck(store=store).check(batch).unseen is None
        fed = OrderCheck(store=store).check(batch, unseen=True).unseen
        assert fed is not None and fed.ts.tolist() == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]


def test_what_the_rerun_sets_aside_is_reported_with_its_batch(tmp_path):
    """Feeding the unseen readings must not take the batch's quarantine reasons with it: a bad field in
    the rerun's first batch is in that batch's result (the summary and metrics count from it)."""
    cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs")},
                      dotenv_file=None)
    lines = [json.dumps({"ts": 1_704_067_200 + 3600 * k, "station": "a", "temp_c": 10.0 + k % 3}).encode()
             for k in range(40)]
    with JsonlStore(tmp_path / "db") as store:
        Engine(cfg, store).ingest(lines[:20])
    bad = json.dumps({"ts": 1_704_067_200 + 3600 * 40, "station": "a", "temp_c": "warm", "humidity_pct": 50}).encode()
    with JsonlStore(tmp_path / "db") as store:
        result = Engine(cfg, store).ingest([*lines, bad])
    assert result.duplicates == 20 and len(result.batch) == 21
    assert result.fields_rejected == 1 and sum(result.reasons.values()) == 1
