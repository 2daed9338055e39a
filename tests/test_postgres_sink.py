"""The PostgreSQL sink against real servers: the shared one (a schema per test) and a throwaway one to stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.alerts.service import AlertService
from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.sinks.aggregates import AggregateSink
from mass_tui.sinks.follow import read_chunk
from mass_tui.sinks.postgres import PostgresSink, merged_rows, rows_of, split_url
from mass_tui.store import ALERTS, ANOMALIES, STREAM, JsonlStore
from tests.conftest import SANDY, free_port, wait_for
from tests.history_helpers import aggregate_records, decoded
from tests.pg_server import SHARED_URL, ThrowawayPostgres, drop_schema, pg_bin, shared_available, unique_schema

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def schema():
    if not shared_available():
        # CI machines run PostgreSQL: there a missing server is a failure, not a skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)("no PostgreSQL at 127.0.0.1:5432")
    name = unique_schema()
    yield name
    drop_schema(name)


def lines(path: Path) -> int:
    return sum(1 for line in path.read_bytes().split(b"\n") if line.strip()) if path.exists() else 0


def counts(url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(split_url(url)[0], connect_timeout=5) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("observations", "anomalies", "alerts", "aggregates", "daily_summary")}


def mass(*args: str, cwd: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "mass_tui", *args], capture_output=True, text=True, timeout=300,
                         cwd=cwd, env={"PATH": "/usr/bin:/bin", "MASS_LOG_DIR": str(cwd / "logs")})
    assert out.returncode == 0, out.stderr
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def aggregate_windows(db: Path) -> tuple[int, int]:
    """Distinct (window records of the sizes PostgreSQL takes, daily records) in aggregates.jsonl."""
    keys = set()
    daily = set()
    for r in aggregate_records(db):
        if r["kind"] == "daily":
            daily.add((r["station"], r["ts"]))
        elif r["window"] in ("1h", "1d"):  # store.postgres_windows
            keys.add((r["window"], r["scope"], r["key"], r["variable"], r["ts"]))
    return len(keys), len(daily)


def test_a_database_that_is_never_reached_shows_the_whole_store_as_lag(tmp_path):
    """Down from the start (nothing listens at the URL's port): the summary says down, and the lag is
    every byte the store holds, not 0 (the README: a database that is down costs only lag)."""
    repo = Path(__file__).resolve().parents[1]
    url = f"postgresql://mass@127.0.0.1:{free_port()}/mass"
    summary = mass("replay", str(SANDY), "--station", "ndbc-44005", "--headless", "--max", "-q", "--sink", url,
                   "--data-dir", str(tmp_path / "a"), cwd=repo)
    db = tmp_path / "a" / "db"
    stored = sum(p.stat().st_size for name in (STREAM, ANOMALIES) for p in db.glob(f"{Path(name).stem}*.jsonl"))
    assert summary["observations"] == 762
    assert summary["postgresql"]["up"] is False
    assert summary["postgresql"]["lag_bytes"] >= stored > 0


def test_sandy_replay_with_the_sink_gives_one_row_per_stored_line_and_twice_adds_nothing(schema, tmp_path):
    url = f"{SHARED_URL}?schema={schema}"
    repo = Path(__file__).resolve().parents[1]
    args = ["replay", str(SANDY), "--station", "ndbc-44005", "--headless", "--max", "-q", "--alerts", "--sink", url]
    summary = mass(*args, "--data-dir", str(tmp_path / "a"), cwd=repo)
    db = tmp_path / "a" / "db"
    first = counts(url, schema)
    assert first["observations"] == lines(db / STREAM) == summary["observations"] == 762
    assert first["anomalies"] == lines(db / ANOMALIES) == summary["anomalies"] > 0
    assert first["alerts"] == lines(db / ALERTS) == summary["alerts"] > 0
    assert (first["aggregates"], first["daily_summary"]) == aggregate_windows(db)
    assert summary["postgresql"]["up"] is True and summary["postgresql"]["lag_bytes"] == 0

    # Again into the same store (every line a duplicate: nothing new stored or sent), and into a new
    # store (no high-water mark: the database already has every row).
    again = mass(*args, "--data-dir", str(tmp_path / "a"), cwd=repo)
    assert lines(db / STREAM) == 762 and again["observations"] == 0 and again["duplicates"] == 762
    mass(*args, "--data-dir", str(tmp_path / "b"), cwd=repo)
    assert counts(url, schema) == first

    with psycopg.connect(SHARED_URL) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        top = conn.execute("SELECT max(gust_mps), count(DISTINCT station) FROM observations").fetchone()
        version = conn.execute("SELECT max(version) FROM mass_schema").fetchone()[0]
    assert top == (max(r["gust_mps"] for r in _stored(db) if "gust_mps" in r), 1)
    assert version == 1


def test_two_reports_for_one_station_and_time_make_one_row_with_both(schema, tmp_path, shared):
    """ASOS sends GRB 06:53 twice (once with precipitation): one row, the precipitation kept; the
    other rows one per stored line."""
    url = f"{SHARED_URL}?schema={schema}"
    repo = Path(__file__).resolve().parents[1]
    mass("replay", str(shared / "weather" / "asos_midwest_cyclone_2010-10.csv"), "--headless", "--max", "-q",
         "--sink", url, "--data-dir", str(tmp_path), cwd=repo)
    records = _stored(tmp_path / "db")
    assert counts(url, schema)["observations"] == len({(r["station"], r["ts"]) for r in records}) == len(records) - 1
    with psycopg.connect(SHARED_URL) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        row = conn.execute("SELECT precip_mm, temp_c, anomaly_score ? 'precip_mm' FROM observations "
                           "WHERE station = 'GRB' AND ts = '2010-10-24T06:53:00Z'").fetchone()
    assert row == (0.25, 10.0, True)


def _stored(db: Path) -> list[dict]:
    return [orjson.loads(line) for line in (db / STREAM).read_bytes().splitlines() if line.strip()]


def test_postgres_stopped_mid_replay_ingestion_goes_on_and_every_row_arrives_once(tmp_path):
    if pg_bin() is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)("no PostgreSQL server binaries")
    server = ThrowawayPostgres(free_port())
    try:
        server.start()
        cfg = load_config(env={}, dotenv_file=None, overrides={"data.dir": str(tmp_path), "alerts.enabled": True})
        store = JsonlStore(cfg.db_dir)
        states: list[str] = []
        sink = PostgresSink(server.url, store, on_status=lambda _name, text: states.append(text),
                            poll_seconds=0.05, max_backoff=0.5)
        alerts = AlertService.from_config(cfg)
        engine = Engine(cfg, store, alerts, sinks=[AggregateSink(store), sink])
        batch = decoded(engine, SANDY, "ndbc-44005")
        thirds = [batch.select(np.arange(a, b)) for a, b in ((0, 250), (250, 500), (500, len(batch)))]

        engine.process_batch(thirds[0])
        engine.sync()
        assert wait_for(lambda: sink.rows.get("observations", 0) == 250 and sink.behind() == 0, 60.0)

        server.stop()
        result = engine.process_batch(thirds[1])  # must not wait for the database
        engine.sync()
        assert len(result.batch) == 250 and lines(store.path(STREAM)) == 500
        # the state is said after the flag flips: wait for what the status bar is told
        assert wait_for(lambda: not sink.up and any(s.startswith("DOWN") for s in states), 60.0)
        assert sink.rows["observations"] == 250

        engine.process_batch(thirds[2])
        engine.sync()
        server.start()
        assert wait_for(lambda: sink.up and sink.behind() == 0, 60.0)
        engine.sinks.close()
        store.close()
        alerts.close(timeout=5)
        assert states[-1] == "up"

        with psycopg.connect(server.url) as conn:
            got = conn.execute("SELECT count(*), count(DISTINCT (station, ts)) FROM observations").fetchone()
            anomalies = conn.execute("SELECT count(*) FROM anomalies").fetchone()[0]
            alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
            stored_ts = conn.execute("SELECT ts FROM observations ORDER BY ts").fetchall()
        assert got == (762, 762) == (lines(store.path(STREAM)),) * 2
        assert anomalies == lines(store.path(ANOMALIES)) and alerts == lines(store.path(ALERTS))
        assert [t.timestamp() for (t,) in stored_ts] == sorted(_ts(r) for r in _stored(tmp_path / "db"))
    finally:
        server.cleanup()


def _ts(record: dict) -> float:
    from sources.schema import parse_time

    return parse_time(record["ts"])


def test_a_database_that_never_answers_costs_ingestion_nothing(tmp_path):
    """Nothing listens: the sink is down with a reason, the store has everything, close() does not hang."""
    cfg = load_config(env={}, dotenv_file=None, overrides={"data.dir": str(tmp_path)})
    store = JsonlStore(cfg.db_dir)
    sink = PostgresSink(f"postgresql://postgres:secret-pw@127.0.0.1:{free_port()}/x", store, poll_seconds=0.05)
    engine = Engine(cfg, store, sinks=[sink])
    engine.process_batch(decoded(engine, SANDY, "ndbc-44005"))
    engine.sync()
    assert wait_for(lambda: sink.last_error and sink.status_text().startswith("DOWN"), 30.0)
    assert sink.status_text().startswith("DOWN") and lines(store.path(STREAM)) == 762
    assert "secret-pw" not in sink.summary()["url"] and "secret-pw" not in sink.status_text()
    sink.close(timeout=30)
    assert not sink._thread.is_alive()


def test_read_chunk_follows_rotation_and_takes_only_whole_lines(tmp_path):
    store = JsonlStore(tmp_path, max_bytes=60)
    store.append_lines(STREAM, [b'{"n":1}', b'{"n":2}'])
    store.flush()
    data, pos = read_chunk(store, STREAM, None, 1 << 20)
    assert data == b'{"n":1}\n{"n":2}\n'
    store.append_lines(STREAM, [b'{"n":%d,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}' % i for i in range(3, 6)])
    store.flush()
    assert len(store.rotated(STREAM)) >= 1
    with open(store.path(STREAM), "ab") as fh:  # a line being written: not taken yet
        fh.write(b'{"n":6')
    seen = []
    while True:
        data, pos = read_chunk(store, STREAM, pos, 1 << 20)
        if not data:
            break
        seen += [orjson.loads(x)["n"] for x in data.splitlines()]
    assert seen == [3, 4, 5]
    store.close()


def test_rows_skip_lines_without_a_key_and_null_odd_values():
    data = b'{"ts":"2012-10-29T20:50:00Z","station":"a","gust_mps":"fast","temp_c":3}\n{"station":"b"}\nnot json\n'
    tables, skipped = rows_of(STREAM, data)
    (row,) = tables["observations"]
    from mass_tui.pg_schema import OBSERVATION_COLUMNS

    record = dict(zip(OBSERVATION_COLUMNS, row, strict=True))
    assert record["gust_mps"] is None and record["temp_c"] == 3.0 and record["ts"] == "2012-10-29T20:50:00Z"
    assert skipped == 2


def test_the_url_password_is_masked_in_mass_config(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mass_tui", "config", "--sink",
                          "postgresql://mass:hunter22@db.example/mass"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PGPASSWORD": "also-secret-1234"})
    assert out.returncode == 0, out.stderr
    assert "hunter22" not in out.stdout and "also-secret-1234" not in out.stdout
    shown = orjson.loads(out.stdout)
    assert shown["store"]["postgres_url"] in ("****", "postgresql://mass:****@db.example/mass")


def test_the_sink_state_reaches_prometheus(tmp_path):
    from mass_tui.metrics import Metrics

    metrics = Metrics(free_port())
    store = JsonlStore(tmp_path)
    sink = PostgresSink(f"postgresql://postgres@127.0.0.1:{free_port()}/x", store, metrics=metrics,
                        poll_seconds=0.05)
    try:
        read = metrics.registry.get_sample_value
        assert wait_for(lambda: read("mass_sink_up", {"sink": "postgresql"}) == 0, 30.0)
    finally:
        sink.close(timeout=30)
        metrics.close()
        store.close()


async def test_the_status_bar_shows_a_sink_that_is_down(tmp_path, monkeypatch):
    from mass_tui.ui.launch import replay_app
    from mass_tui.ui.lines import LineView

    def status() -> str:
        return "\n".join(app.query_one("#status", LineView).plain_lines())

    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, env={}, dotenv_file=None, overrides={
        "data.dir": str(tmp_path), "store.postgres_url": f"postgresql://postgres@127.0.0.1:{free_port()}/x"})
    app, cleanup = replay_app(cfg, SANDY, speed=None, station="ndbc-44005", fast_hz=10, chart_hz=5)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            deadline = time.monotonic() + 60
            while "postgresql DOWN" not in status() and time.monotonic() < deadline:
                await pilot.pause(0.1)
            assert "postgresql DOWN" in status()
            await pilot.press("q")
    finally:
        cleanup()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2), st.one_of(st.none(), st.floats(-50, 50)),
                          st.one_of(st.none(), st.floats(0, 5)),
                          st.one_of(st.none(), st.dictionaries(st.sampled_from(["t", "p"]), st.floats(0, 1),
                                                               min_size=1))),
                min_size=1, max_size=12))
def test_rows_of_one_key_in_a_batch_merge_as_the_table_merges_them_one_by_one(rows):
    """The rule: a batch's rows of one key become the row the table's ON CONFLICT merge would make of
    them one after another (each column the last value given, jsonb objects key by key)."""
    columns, key = ["station", "ts", "temp_c", "precip_mm", "anomaly_score"], ["station", "ts"]
    given_rows = [(s, t, a, b, None if j is None else orjson.dumps(j).decode()) for s, t, a, b, j in rows]
    expected: dict[tuple, list] = {}
    for row in given_rows:
        old = expected.get(row[:2])
        if old is None:
            expected[row[:2]] = list(row)
            continue
        for i in (2, 3):
            old[i] = row[i] if row[i] is not None else old[i]
        if row[4] is not None:
            both = {**orjson.loads(old[4]), **orjson.loads(row[4])} if old[4] is not None else None
            old[4] = row[4] if both is None else orjson.dumps(both).decode()
    out = merged_rows(given_rows, columns, key)
    assert [tuple(r) for r in expected.values()] == out
