"""`mass query` and `mass export` over the JSONL store (DuckDB), on the Sandy and ASOS recordings."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict

import orjson
import pytest

from mass_tui.aggregates import latest
from mass_tui.cli import main
from mass_tui.store import STREAM, JsonlStore
from tests.conftest import SANDY
from tests.history_helpers import aggregate_records, replay_into, stored

duckdb = pytest.importorskip("duckdb")

ASOS = "weather/asos_midwest_cyclone_2010-10.csv"


def query(capsys, data_dir, sql: str, fmt: str = "csv") -> list[dict]:
    capsys.readouterr()
    assert main(["query", sql, "--data-dir", str(data_dir), "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        return orjson.loads(out)
    return list(csv.DictReader(io.StringIO(out)))


def raw_max(path, column: str) -> dict[str, float]:
    """Per station, the largest value of a column of the recording itself (empty cells skipped)."""
    top: dict[str, float] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get(column):
                station = row.get("station") or "ndbc-44005"
                top[station] = max(top.get(station, -math.inf), float(row[column]))
    return top


def test_max_gust_per_station_on_sandy_and_asos(tmp_path, shared, capsys):
    replay_into(tmp_path, SANDY, station="ndbc-44005")
    sql = "SELECT station, max(gust_mps) FROM observations GROUP BY station ORDER BY station"
    rows = query(capsys, tmp_path, sql)
    assert rows == [{"station": "ndbc-44005", "max(gust_mps)": str(raw_max(SANDY, "wind_gust_ms")["ndbc-44005"])}]

    # ASOS stations report no gust: the column is there, empty, in a store that never saw one ...
    asos = tmp_path / "asos"
    replay_into(asos, shared / ASOS)
    rows = query(capsys, asos, sql)
    stations = {r["station"] for r in stored(asos / "db" / STREAM)}
    assert {r["station"] for r in rows} == stations and len(rows) > 1
    assert all(r["max(gust_mps)"] == "" for r in rows)
    wind = query(capsys, asos, "SELECT station, max(wind_mps) AS top FROM observations GROUP BY station")
    assert {r["station"]: float(r["top"]) for r in wind if r["top"]} == raw_max(shared / ASOS, "wind_speed_ms")

    # ... and beside Sandy's in one store, each station keeps its own columns.
    replay_into(tmp_path, shared / ASOS)
    rows = query(capsys, tmp_path, sql)
    got = {r["station"]: r["max(gust_mps)"] for r in rows}
    assert got == {**{station: "" for station in stations},
                   "ndbc-44005": str(raw_max(SANDY, "wind_gust_ms")["ndbc-44005"])}


def test_table_and_json_formats(tmp_path, capsys):
    replay_into(tmp_path, SANDY, station="ndbc-44005")
    capsys.readouterr()
    assert main(["query", "SELECT station, max(gust_mps) AS gust FROM observations GROUP BY station",
                 "--data-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["station", "|", "gust"] and "22.8" in table[2] and table[-1] == "(1 row)"
    rows = query(capsys, tmp_path, "SELECT ts, anomaly_score, gust_mps FROM observations ORDER BY gust_mps DESC "
                 "LIMIT 1", fmt="json")
    assert rows[0]["gust_mps"] == 22.8 and rows[0]["ts"].endswith("Z")
    assert 0 <= rows[0]["anomaly_score"]["gust_mps"] < 1


def test_every_view_reads_rotated_files_and_skips_a_torn_line(tmp_path, capsys):
    from mass_tui.engine import Engine
    from mass_tui.sinks.configured import store_sinks
    from tests.history_helpers import config_for, decoded, parts

    cfg = config_for(tmp_path)
    db = tmp_path / "db"
    store = JsonlStore(db, max_bytes=50_000)
    engine = Engine(cfg, store, sinks=store_sinks(cfg, store))
    for part in parts(decoded(engine, SANDY, "ndbc-44005"), 100):  # batches, so the files rotate between them
        engine.process_batch(part)
    engine.sinks.close()
    store.close()
    assert len(store.rotated(STREAM)) > 2 and len(store.rotated("aggregates.jsonl")) > 2
    n = sum(len(stored(p)) for p in store.files(STREAM))
    with open(db / STREAM, "ab") as fh:
        fh.write(b'{"ts":"2012-11-20T00:00:00Z","station":"ndbc-44005","gust')  # a crash mid-write
    counts = query(capsys, tmp_path, "SELECT (SELECT count(*) FROM observations) AS o, "
                   "(SELECT count(*) FROM anomalies) AS a, (SELECT count(*) FROM alerts) AS al, "
                   "(SELECT count(*) FROM rejected) AS r, (SELECT count(*) FROM aggregates) AS ag")[0]
    assert int(counts["o"]) == n == 762
    assert int(counts["a"]) > 0 and counts["r"] == "0"
    assert int(counts["ag"]) == len(latest(aggregate_records(db))) > 762


def test_the_three_readme_queries_run(tmp_path, shared, capsys):
    replay_into(tmp_path, SANDY, station="ndbc-44005")
    replay_into(tmp_path, shared / ASOS)
    daily = query(capsys, tmp_path, "SELECT station, day, gust_max, gust_max_ts FROM aggregates "
                  "WHERE kind = 'daily' AND gust_max IS NOT NULL ORDER BY gust_max DESC LIMIT 1")
    assert daily[0]["gust_max"] == "22.8"
    weekly = query(capsys, tmp_path, "SELECT station, date_trunc('week', ts) AS week, count(*) AS anomalies "
                   "FROM anomalies GROUP BY ALL ORDER BY week, station")
    total = int(query(capsys, tmp_path, "SELECT count(*) AS n FROM anomalies")[0]["n"])
    assert sum(int(r["anomalies"]) for r in weekly) == total == len(stored(tmp_path / "db" / "anomalies.jsonl")) > 0
    rain = query(capsys, tmp_path, "SELECT station, sum(sum) AS rain_mm FROM aggregates WHERE kind = 'window' "
                 "AND \"window\" = '1d' AND scope = 'station' AND variable = 'precip_mm' GROUP BY station "
                 "ORDER BY station")
    want: dict[str, float] = defaultdict(float)
    for r in stored(tmp_path / "db" / STREAM):
        if r.get("precip_mm") is not None:
            want[r["station"]] += r["precip_mm"]
    assert {r["station"]: round(float(r["rain_mm"]), 6) for r in rain} == {k: round(v, 6) for k, v in want.items()}


def test_a_bad_query_says_why(tmp_path, capsys):
    replay_into(tmp_path, SANDY, station="ndbc-44005")
    capsys.readouterr()
    assert main(["query", "SELECT no_such_column FROM observations", "--data-dir", str(tmp_path)]) == 2
    assert "no_such_column" in capsys.readouterr().err


def test_an_empty_store_has_every_view(tmp_path, capsys):
    rows = query(capsys, tmp_path, "SELECT count(*) AS n, max(gust_mps) AS g FROM observations")
    assert rows == [{"n": "0", "g": ""}]


def test_export_parquet_round_trips_rows_and_values(tmp_path, shared, capsys):
    replay_into(tmp_path, SANDY, station="ndbc-44005")
    replay_into(tmp_path, shared / ASOS)
    out = tmp_path / "out" / "obs.parquet"
    capsys.readouterr()
    assert main(["export", "--format", "parquet", "--data-dir", str(tmp_path), "-o", str(out)]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    records = stored(tmp_path / "db" / STREAM)
    assert summary["rows"] == len(records)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.execute(f"SELECT * FROM read_parquet('{out}')")
    columns = [d[0] for d in rel.description]
    back = [dict(zip(columns, row, strict=True)) for row in rel.fetchall()]
    assert len(back) == len(records)

    def plain(row: dict) -> bytes:
        """A row with its empty fields (NULL columns, absent struct members) left out, as sortable JSON."""
        out = {}
        for name, value in row.items():
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if v is not None}
            elif hasattr(value, "strftime"):
                value = value.strftime("%Y-%m-%dT%H:%M:%SZ")
            if value is not None:
                out[name] = value
        return orjson.dumps(out, option=orjson.OPT_SORT_KEYS)

    # Every stored line comes back with the same values (ASOS has two lines for one station and time).
    assert sorted(map(plain, back)) == sorted(map(plain, records))
    assert {"gust_mps", "precip_mm", "anomaly_score"} <= set(columns)


def test_export_csv_with_time_and_station_filters(tmp_path, shared, capsys):
    replay_into(tmp_path, SANDY, station="ndbc-44005")
    replay_into(tmp_path, shared / ASOS)
    out = tmp_path / "cut.csv"
    capsys.readouterr()
    assert main(["export", "--format", "csv", "--data-dir", str(tmp_path), "-o", str(out), "--station", "ndbc-44005",
                 "--from", "2012-10-29T00:00:00Z", "--to", "2012-10-30T00:00:00Z"]) == 0
    rows = list(csv.DictReader(out.open()))
    want = [r for r in stored(tmp_path / "db" / STREAM)
            if r["station"] == "ndbc-44005" and r["ts"].startswith("2012-10-29")]
    assert len(rows) == len(want) == 24
    assert [float(r["gust_mps"]) for r in rows] == [r["gust_mps"] for r in want]
    assert orjson.loads(rows[0]["anomaly_score"])["gust_mps"] == want[0]["anomaly_score"]["gust_mps"]


def test_export_takes_its_format_from_the_output_name_and_refuses_a_contradiction(tmp_path, capsys):
    replay_into(tmp_path, SANDY, station="ndbc-44005")
    out = tmp_path / "day.csv"
    capsys.readouterr()
    assert main(["export", "--data-dir", str(tmp_path), "-o", str(out)]) == 0
    assert orjson.loads(capsys.readouterr().out)["format"] == "csv"
    assert out.read_bytes()[:4] != b"PAR1" and next(csv.reader(out.open()))[0]  # a CSV header, not Parquet
    other = tmp_path / "x.parquet"
    assert main(["export", "--format", "csv", "--data-dir", str(tmp_path), "-o", str(other)]) == 2
    assert "names a parquet file but --format is csv" in capsys.readouterr().err and not other.exists()


FILLER = 2000  # records around the two


@pytest.mark.parametrize("threads", [1, 8])
def test_a_window_written_twice_with_the_same_count_reads_as_first_written(tmp_path, threads):
    """A rerun after a killed writer writes again windows the killed run had closed (the aggregates
    are ahead of the stream): the same readings, final both times, summed in other groups, so a
    mean at a half-way tie of its 6th decimal may round the other way (12.303437 and 12.303438 of
    288 readings summing to 3543.39, found at one kill point of a 150 k-line replay). The view
    reads the first written, in either order, in one file or across a rotated one: whichever line
    DuckDB's parallel scan met first was read before, one or the other from the same files."""
    from mass_tui.history import connect

    def record(mean: float) -> bytes:
        return orjson.dumps({"kind": "windows", "window": "1d", "scope": "station", "key": "s3", "station": "s3",
                             "variable": "temp_c", "seconds": 86400.0, "final": True, "start": [1710460800.0],
                             "count": [288], "mean": [mean], "min": [6.77], "min_ts": [1710460800.0],
                             "max": [15.61], "max_ts": [1710500000.0]}) + b"\n"

    filler = b"".join(record(10.0).replace(b'"key":"s3"', f'"key":"f{k}"'.encode()) for k in range(FILLER))
    sql = "SELECT count(*), min(mean), max(mean) FROM aggregates WHERE key = 's3'"
    for name, first, second in (("ab", 12.303437, 12.303438), ("ba", 12.303438, 12.303437)):
        for rotated in (False, True):
            db = tmp_path / f"{name}-{rotated}" / "db"
            db.mkdir(parents=True)
            if rotated:  # the first record in a rotated file, the rerun's in the live one
                (db / "aggregates.2026-01-01.1.jsonl").write_bytes(filler + record(first))
                (db / "aggregates.jsonl").write_bytes(record(second) + filler)
            else:
                (db / "aggregates.jsonl").write_bytes(filler + record(first) + filler + record(second))
            con = connect(db, sql)
            try:
                con.execute(f"SET threads = {threads}")
                assert con.execute(sql).fetchall() == [(1, first, first)], (name, rotated)
            finally:
                con.close()
