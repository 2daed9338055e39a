"""The input cases of ../shared/cases/inputs (vendored under tests/data/cases/inputs), each a kind of input,
each with a test that names its file, and a property test for the rule behind it."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.replay import replay_file
from mass_tui.store import JsonlStore
from sources.decode import Decoder, InputPolicy
from sources.formats import open_recording
from sources.schema import iso_utc, parse_time
from sources.times import zone

CASES = Path(__file__).parent / "data" / "cases" / "inputs"


def _config(tmp_path: Path, **env: str):
    return load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), **env}, dotenv_file=None)


def replay(tmp_path: Path, path: Path, *, name: str = "run", station: str | None = None, **env: str):
    """Replay a file flat out into a fresh store; returns (engine, stored records, rejected, anomalies)."""
    db = tmp_path / name
    with JsonlStore(db) as store:
        engine = Engine(_config(tmp_path, **env), store)
        assert replay_file(engine, path, station=station)
    return engine, _read(db / "consumer_stream.jsonl"), _read(db / "rejected.jsonl"), _read(db / "anomalies.jsonl")


def _read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


# --- 21: epoch micro- and nanoseconds ----------------------------------------------------------
def test_case_21_epoch_micro_nanoseconds_replays_three_minutes(tmp_path):
    engine, stored, rejected, _ = replay(tmp_path, CASES / "21-epoch-micro-nanoseconds.jsonl")
    assert [r["ts"] for r in stored] == ["2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z"]
    assert rejected == [] and engine.counters.observations == 3


@settings(max_examples=200, deadline=None)
@given(st.integers(-2_000_000_000, 4_000_000_000), st.sampled_from([1, 1_000, 1_000_000, 1_000_000_000]))
def test_epoch_numbers_in_any_unit_give_the_same_instant(seconds, scale):
    """The rule of case 21: s, ms, µs and ns are told apart by magnitude (for times after 1973 in ms and
    finer: earlier ones are small enough to read as a coarser unit, which the span check then judges)."""
    if scale > 1 and abs(seconds) < 1e8:
        return
    assert parse_time(seconds * scale) == pytest.approx(seconds, abs=1e-6)


# --- 02: NDBC MM kept in cells ---------------------------------------------------------------------
def test_case_02_ndbc_mm_cells_are_absent_values_not_rejected_rows(tmp_path):
    engine, stored, rejected, _ = replay(tmp_path, CASES / "02-ndbc-41002-mm-kept.csv")
    assert len(stored) == 24 and rejected == []
    assert all("pressure_msl_hpa" in r for r in stored)
    assert not any("temp_c" in r for r in stored)  # MM in every row: absent, never a number
    assert sum("wave_height_m" in r for r in stored) == 5
    assert engine.counters.missing > 0


_markers = st.sampled_from(["", "MM", "M", "NA", "n/a", "NaN", "null", "-", " MM "])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.one_of(_markers, st.floats(950, 1050).map(lambda v: f"{v:.1f}")),
                          st.one_of(_markers, st.floats(-20, 40).map(lambda v: f"{v:.1f}"))),
                min_size=1, max_size=30))
def test_missing_markers_drop_their_cell_only(cells):
    """The rule of case 02: a missing marker is an absent value; the row is kept while one value is left."""
    from sources.decode import Table

    rows = [[f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00Z", "s", p, t] for i, (p, t) in enumerate(cells)]
    table = Table(["ts", "station", "pressure_msl_hpa", "temp_c"], rows, [b"x"] * len(rows))
    out = Decoder().decode_table(table)
    assert out.fields == []
    kept = [i for i, (p, t) in enumerate(cells) if _num(p) or _num(t)]
    assert len(out.batch) == len(kept) and len(out.rejected) == len(cells) - len(kept)
    for k, i in enumerate(kept):
        obs = out.batch.observation(k)
        p, t = cells[i]
        assert ("pressure_msl_hpa" in obs.values) == _num(p) and ("temp_c" in obs.values) == _num(t)


def _num(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return cell.strip().lower() != "nan"


# --- 03b: NDBC numeric sentinels -------------------------------------------------------------------
def test_case_03b_ndbc_sentinels_are_quarantined_fields_and_never_alarm(tmp_path):
    engine, stored, rejected, anomalies = replay(tmp_path, CASES / "03b-ndbc-44005-sentinels-no-wdir.csv",
                                                 ALERTS_ENABLED="false")
    assert len(stored) == 19
    assert not any(r.get("wind_mps") == 99.0 or r.get("gust_mps") == 99.0 for r in stored)
    out = [r for r in stored if r["ts"] >= "2012-11-27T21:50:00Z"]
    assert len(out) == 10
    assert all({"pressure_msl_hpa", "temp_c", "wave_height_m"} <= set(r) for r in out)
    assert all("wind_mps" not in r and "gust_mps" not in r for r in out)
    assert len(rejected) == 20 and all(r["kind"] == "field" and r["code"] == "sentinel" for r in rejected)
    assert all("99.0" in r["reason"] and "NDBC" in r["reason"] and r["raw"] == "99.0" for r in rejected)
    assert {r["field"] for r in rejected} == {"wind_speed_ms", "wind_gust_ms"}
    assert all(r["station"] == "ndbc-44005" and r["ts"] >= "2012-11-27T21:50:00Z" for r in rejected)
    assert not any(a["variable"] in ("wind_mps", "gust_mps") and a["value"] >= 90 for a in anomalies)
    assert engine.counters.fields_rejected == 20 and engine.summary()["fields_rejected"] == 20


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["wind_mps", "gust_mps", "pressure_msl_hpa", "temp_c", "wind_dir_deg"]),
                          st.booleans()), min_size=1, max_size=5, unique_by=lambda t: t[0]))
def test_a_sentinel_is_quarantined_alone_and_never_stored(fields):
    """The rule of case 03b: a value equal to its variable's missing-value sentinel is set aside with a
    reason naming the marker; the message's other values are stored."""
    sentinel = {"wind_mps": 99.0, "gust_mps": 99.0, "pressure_msl_hpa": 9999.0, "temp_c": 999.0,
                "wind_dir_deg": 999.0}
    good = {"wind_mps": 5.0, "gust_mps": 7.0, "pressure_msl_hpa": 1010.0, "temp_c": 12.0, "wind_dir_deg": 180.0}
    msg = {"ts": 1_700_000_000, "station": "b", "humidity_pct": 50.0}
    msg.update({name: sentinel[name] if bad else good[name] for name, bad in fields})
    out = Decoder().decode([orjson.dumps(msg)])
    obs = out.batch.observation(0)
    assert {f.variable for f in out.fields} == {name for name, bad in fields if bad}
    assert all("sentinel" in f.reason and f.raw in f.reason for f in out.fields)
    assert obs.values == {"humidity_pct": 50.0, **{name: good[name] for name, bad in fields if not bad}}


# --- 06: IEM ASOS M and knots ----------------------------------------------------------------------
def test_case_06_asos_m_cells_absent_and_knots_converted(tmp_path):
    engine, stored, rejected, _ = replay(tmp_path, CASES / "06-asos-msp-M-missing.csv")
    assert len(stored) == 21 and rejected == []
    assert stored[0]["wind_mps"] == pytest.approx(16 * 0.514444) and "precip_mm" not in stored[0]
    assert "pressure_msl_hpa" not in stored[1] and stored[1]["precip_mm"] == 0.0
    assert sum("pressure_msl_hpa" in r for r in stored) == 7


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([("wind_speed_kt", 0.514444), ("wind_kt", 0.514444), ("wind_mph", 0.44704),
                        ("wind_kmh", 1 / 3.6), ("Wind Speed (knots)", 0.514444), ("sknt", 0.514444)]),
       st.floats(0, 150))
@example(("wind_speed_kt", 0.514444), 99.0)  # NDBC's 99.0 marker is in m/s: 99 knots is a real wind
def test_unit_suffixed_headers_are_converted(header, value):
    """The rule of case 06: a unit in the field name converts to the registry unit."""
    name, factor = header
    out = Decoder().decode([orjson.dumps({"ts": 1_700_000_000, "station": "a", name: value})])
    assert out.batch.columns["wind_mps"][0] == pytest.approx(value * factor)


def test_iem_asos_download_with_many_stations_trace_and_debug_lines(tmp_path):
    f = tmp_path / "asos.csv"
    f.write_text("#DEBUG: Format Typ    -> comma\n#DEBUG: Time Zone     -> UTC\n"
                 "station,valid,lon,lat,tmpf,dwpf,relh,drct,sknt,p01i,alti,mslp,vsby,gust,skyc1,wxcodes,metar\n"
                 "MSP,2010-10-26 00:53,-93.2,44.9,59.00,53.96,83.5,110.00,16.00,T,29.12,986.20,10.00,M,OVC,-RA,x\n"
                 "DSM,2010-10-26 00:54,-93.7,41.5,M,M,M,M,M,M,M,M,M,M,M,M,M\n"
                 "ORD,2010-10-26 00:51,-87.9,41.9,68.00,60.80,77.8,200.00,12.00,0.05,29.50,999.00,10.00,22.00,,, y\n")
    assert open_recording(f).format == "iem"
    engine, stored, rejected, _ = replay(tmp_path, f)
    by = {r["station"]: r for r in stored}
    assert set(by) == {"MSP", "ORD"} and rejected[0]["code"] == "no_values" and "DSM" in rejected[0]["raw"]
    assert by["MSP"]["temp_c"] == pytest.approx(15.0) and by["MSP"]["precip_mm"] == pytest.approx(0.00254)
    assert by["MSP"]["altimeter_hpa"] == pytest.approx(29.12 * 33.8639) and "gust_mps" not in by["MSP"]
    assert by["ORD"]["gust_mps"] == pytest.approx(22 * 0.514444) and by["ORD"]["precip_mm"] == pytest.approx(1.27)
    assert by["ORD"]["lat"] == 41.9 and engine.counters.ignored_fields["metar"] == 3


# --- 14: Excel BOM and CRLF ---------------------------------------------------------------------------
def test_case_14_excel_bom_crlf_replays_and_mass_score_reads_a_bom(tmp_path):
    from mass_tui.engine import ensemble_params
    from mass_tui.scoring import score_csv

    _, stored, rejected, _ = replay(tmp_path, CASES / "14-excel-bom-crlf.csv")
    assert len(stored) == 4 and rejected == [] and stored[0]["station"] == "roof-logger"
    nab = tmp_path / "nab.csv"
    nab.write_bytes(b"\xef\xbb\xbftimestamp,value\r\n" + b"".join(
        f"2024-01-01 00:{i:02d}:00,{i % 5}\r\n".encode() for i in range(30)))
    stats = score_csv(nab, tmp_path / "out.csv", "ensemble", ensemble_params(_config(tmp_path)))
    assert stats["rows"] == 30 and stats["missing"] == 0


@settings(max_examples=50, deadline=None)
@given(st.booleans(), st.booleans(), st.sampled_from([",", ";", "\t"]))
def test_bom_crlf_and_separator_do_not_change_what_is_read(bom, crlf, sep):
    """The rule of case 14: a byte-order mark, CRLF and the separator are presentation only."""
    import tempfile

    rows = [["time_utc", "station", "air_temp_c", "humidity_pct"],
            ["2024-01-15T06:00:00Z", "r", "-3,2" if sep == ";" else "-3.2", "88"],
            ["2024-01-15T07:00:00Z", "r", "-3" if sep == ";" else "-3.0", "87"]]
    end = "\r\n" if crlf else "\n"
    text = end.join(sep.join(r) for r in rows) + end
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "x.csv"
        f.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
        out = Decoder().decode_table(next(open_recording(f).chunks()))
    assert [out.batch.observation(i).values for i in range(2)] == [{"temp_c": -3.2, "humidity_pct": 88.0},
                                                                   {"temp_c": -3.0, "humidity_pct": 87.0}]


def test_semicolon_csv_with_decimal_commas_and_unit_headers(tmp_path):
    f = tmp_path / "export.csv"
    f.write_text("time;Station;Temperatur (°C);temp_f;pressure_inhg;Wind (km/h)\n"
                 "2024-03-01 10:00;Hütte;3,5;38,3;29,92;36,0\n"
                 "2024-03-01 11:00;Hütte;NA;-;29,9x;18\n", encoding="utf-8")
    _, stored, rejected, _ = replay(tmp_path, f)
    assert stored[0]["station"] == "Hütte" and stored[0]["wind_mps"] == pytest.approx(10.0)
    assert stored[0]["temp_c"] == pytest.approx((38.3 - 32) * 5 / 9)  # the later of two temperature columns
    assert stored[0]["pressure_hpa"] == pytest.approx(29.92 * 33.8639)
    assert rejected == [] or all(r["kind"] == "field" for r in rejected)
    assert [r["field"] for r in rejected] == ["pressure_inhg"] and stored[1]["wind_mps"] == pytest.approx(5.0)


# --- 18: a desert weather station -------------------------------------------------------------------
def test_case_18_desert_heat_is_read_whole(tmp_path):
    _, stored, rejected, _ = replay(tmp_path, CASES / "18-desert-heat-dry-air.csv")
    assert len(stored) == 12 and rejected == [] and max(r["temp_c"] for r in stored) == 48.3


def test_case_18_desert_heat_raises_no_smoke_ladder_or_fire_anomaly(tmp_path):
    _, _, _, anomalies = replay(tmp_path, CASES / "18-desert-heat-dry-air.csv")
    assert not [a for a in anomalies if a["detector"] in ("bands", "fire") or a["detector"].startswith("bands")]


# --- 04: newest first ---------------------------------------------------------------------------------
def test_case_04_newest_first_gives_the_time_ordered_result(tmp_path):
    f = CASES / "04-ndbc-41002-newest-first.csv"
    lines = f.read_text().splitlines()
    ordered = tmp_path / "ordered.csv"
    ordered.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    engine, stored, _, anomalies = replay(tmp_path, f, name="newest-first", station="b")
    _, stored_ordered, _, anomalies_ordered = replay(tmp_path, ordered, name="ordered", station="b")
    for r in stored + stored_ordered:
        r.pop("source")  # replay:<file name>
    assert stored == stored_ordered and anomalies == anomalies_ordered
    assert not [a for a in anomalies if a["detector"] == "pressure_tendency"]
    assert not [a for a in anomalies if "in 0 min" in a["reason"]]
    assert engine.counters.out_of_order == 19 and engine.counters.late == 0


@settings(max_examples=25, deadline=None)
@given(st.permutations(list(range(12))))
def test_any_row_order_of_a_file_replays_as_time_order(order):
    """The rule of case 04: replay puts a file in time order, so the stored stream and the anomalies
    do not depend on the order of its lines."""
    import tempfile

    pressures = [1012.0, 1011.5, 1011.0, 1010.0, 1009.0, 1007.5, 1006.0, 1005.5, 1005.0, 1006.0, 1008.0, 1010.0]
    lines = [json.dumps({"ts": 1_700_000_000 + 1800 * i, "station": "b", "pressure_msl_hpa": p})
             for i, p in enumerate(pressures)]
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for name, rows in (("a", lines), ("b", [lines[i] for i in order])):
            f = Path(tmp) / f"{name}.jsonl"
            f.write_text("\n".join(rows) + "\n")
            _, stored, _, anomalies = replay(Path(tmp), f, name=f"db-{name}")
            results.append(([r["ts"] for r in stored], [(a["ts"], a["detector"], a["reason"]) for a in anomalies]))
    assert results[0] == results[1]
    assert any(d == "pressure_tendency" for _, d, _ in results[0][1])  # the 7 hPa fall is still caught


@settings(max_examples=25, deadline=None)
@given(st.permutations(list(range(12))), st.integers(1, 3))
def test_any_row_order_of_a_file_of_several_stations_replays_as_time_order(order, stations):
    """The same rule over stations: the stored stream is the time-ordered file's, stations
    interleaved by time, whatever the lines' order (one station's rows after another's included:
    played paced, a file laid out so played one station at a time)."""
    import tempfile

    lines = [json.dumps({"ts": 1_700_000_000 + 1800 * (i // stations), "station": f"s{i % stations}",
                         "temp_c": 10.0 + i % 7}) for i in range(12)]
    by_station = sorted(lines, key=lambda line: json.loads(line)["station"])  # station after station
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for name, rows in (("a", lines), ("b", [lines[i] for i in order]), ("c", by_station)):
            f = Path(tmp) / f"{name}.jsonl"
            f.write_text("\n".join(rows) + "\n")
            _, stored, _, _ = replay(Path(tmp), f, name=f"db-{name}")
            results.append([(r["ts"], r["station"]) for r in stored])
    times = [ts for ts, _ in results[0]]
    assert times == sorted(times)
    assert sorted(results[1]) == sorted(results[0]) and [ts for ts, _ in results[1]] == times
    assert results[2] == results[0]  # station after station: the same stream, stations interleaved


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 400)), min_size=2, max_size=120, unique=True),
       st.sampled_from([600, 2_000, 1 << 20]))
def test_out_of_order_counts_each_reading_that_came_after_a_newer_one_of_its_station_once(keys, chunk):
    """Replayed whole (sorted) or chunk by chunk (sorted per chunk, older rows late), `out_of_order` is
    the number of readings that came after a newer one of their station in the file, each once (past
    the sort limit a late row was counted by the chunk's sort and again by the engine)."""
    import tempfile

    lines = [json.dumps({"ts": 1_700_000_000 + 60 * m, "station": f"s{s}", "temp_c": float(m % 9)}) for s, m in keys]
    newest: dict[int, int] = {}
    expected = 0
    for s, m in keys:
        expected += m < newest.get(s, -1)
        newest[s] = max(newest.get(s, -1), m)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "rec.jsonl"
        f.write_text("\n".join(lines) + "\n")
        for sort_bytes in (0, 1 << 30):  # chunk by chunk, whole
            with JsonlStore(Path(tmp) / f"db-{sort_bytes}") as store:
                engine = Engine(_config(Path(tmp)), store)
                assert replay_file(engine, f, chunk_bytes=chunk, sort_bytes=sort_bytes)
            assert engine.counters.out_of_order == expected, sort_bytes


def test_a_paced_replay_skips_a_gap_in_the_data_instead_of_waiting_it_out(tmp_path, caplog):
    """One mistyped year among minute readings: at 100000x the gap is 18 years of data, 1.6 h of
    waiting. The replay skips it (and says so) and stores every reading; the readings either side
    are paced as before."""
    import logging
    import threading

    lines = [json.dumps({"ts": 1_714_521_600 + 60 * i, "station": "a", "temp_c": 10.0 + i % 3}) for i in range(30)]
    lines[20] = lines[20].replace('"ts": 1714', '"ts": 2281')  # the year 2042
    f = tmp_path / "rec.jsonl"
    f.write_text("\n".join(lines) + "\n")
    done: list[bool] = []
    with JsonlStore(tmp_path / "db") as store, caplog.at_level(logging.INFO, logger="mass_tui.replay"):
        engine = Engine(_config(tmp_path), store)
        stop = threading.Event()
        worker = threading.Thread(target=lambda: done.append(replay_file(engine, f, speed=100_000.0, stop=stop)))
        worker.start()
        worker.join(120)  # bounded: the gap alone would take 1.6 h
        stop.set()
        worker.join(10)
    assert done == [True]
    assert engine.counters.observations == 30
    assert any("skipped a gap in the data before 2042" in r.getMessage() for r in caplog.records)


# --- 11: OpenWeatherMap snow --------------------------------------------------------------------------
def test_case_11_owm_imperial_snow_from_a_loopback_server(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx

    from sources.http_sources import OpenWeatherMapSource

    body = (CASES / "11-owm-imperial-snow-1h.json").read_bytes()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = OpenWeatherMapSource(httpx.Client(timeout=5), [{"name": "msp", "lat": 44.98, "lon": -93.26}],
                                      api_key="k", base=f"http://127.0.0.1:{server.server_address[1]}/weather",
                                      units="imperial")
        poll = source.poll()
    finally:
        server.shutdown()
        server.server_close()
    assert "units=imperial" in seen[0]
    obs = Decoder().decode(poll.messages).batch.observation(0)
    assert obs.values["precip_mm"] == pytest.approx(0.89) and obs.values["snow_mm"] == pytest.approx(0.89)
    assert round(obs.values["gust_mps"], 1) == 9.3 and obs.values["temp_c"] == pytest.approx(-2.0)
    assert obs.values["pressure_msl_hpa"] == 1004.0


@settings(max_examples=100, deadline=None)
@given(st.fixed_dictionaries({}, optional={"rain": st.fixed_dictionaries({}, optional={
    "1h": st.floats(0, 50), "3h": st.floats(0, 100)}), "snow": st.fixed_dictionaries({}, optional={
    "1h": st.floats(0, 50), "3h": st.floats(0, 100)})}))
def test_owm_precipitation_is_rain_plus_snow(blocks):
    """The rule of case 11: snow is precipitation; 1 h blocks make precip_mm, 3 h blocks alone precip_3h_mm."""
    from sources.normalize import owm_weather

    body = {"dt": 1_706_151_600, "main": {"temp": 20.0}, "wind": {}, **blocks}
    m = owm_weather(body, "s", "metric")
    hour = [b["1h"] for b in blocks.values() if "1h" in b]
    three = [b["3h"] for b in blocks.values() if "3h" in b]
    if hour:
        assert m["precip_mm"] == pytest.approx(sum(hour)) and "precip_3h_mm" not in m
    elif three:
        assert m["precip_3h_mm"] == pytest.approx(sum(three)) and "precip_mm" not in m
    else:
        assert "precip_mm" not in m and "precip_3h_mm" not in m
    assert m.get("snow_mm") == blocks.get("snow", {}).get("1h")


def test_open_meteo_rain_showers_snowfall_as_liquid_mm():
    from sources.normalize import open_meteo_current

    payload = {"utc_offset_seconds": 0, "current": {"time": "2024-01-25T03:00", "rain": 0.2, "showers": 0.1,
                                                   "snowfall": 0.7},
               "current_units": {"time": "iso8601", "rain": "mm", "showers": "mm", "snowfall": "cm"}}
    m = open_meteo_current(payload, "s")
    assert m["snow_mm"] == pytest.approx(1.0) and m["precip_mm"] == pytest.approx(1.3)
    payload["current"]["precipitation"], payload["current_units"]["precipitation"] = 1.25, "mm"
    assert open_meteo_current(payload, "s")["precip_mm"] == 1.25


# --- native NDBC files ---------------------------------------------------------------------------------
REALTIME = """#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS PTDY  TIDE
#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC  nmi  hPa    ft
2024 05 01 11 00 120  5.0  6.0   0.6     6   4.2 134 1016.5  29.3  30.5  24.4   MM +0.3    MM
2024 05 01 10 50  MM   MM   MM    MM    MM    MM  MM     MM    MM    MM    MM   MM   MM    MM
2024 05 01 10 40 110  4.0  5.0    MM    MM    MM  MM 1016.9  29.1  30.5  24.0   MM   MM    MM
2024 05 01 10 30 110  4.0  5.0    MM    MM    MM  MM 1017.0  29.0  30.5  24.0   MM   MM    MM
"""
HISTORICAL = """YY MM DD hh WD   WSPD GST  WVHT  DPD   APD   MWD BAR    ATMP WTMP DEWP  VIS
89 01 01 01 166 03.2 03.7 00.80 05.90 04.70 999 1015.8 23.0 23.2 999.0 99.0
89 01 01 02 999 99.0 99.0 99.00 99.00 99.00 999 1016.4 23.0 23.0 999.0 99.0
"""


def test_ndbc_realtime2_newest_first_with_mm_in_every_column(tmp_path):
    f = tmp_path / "41002.txt"
    f.write_text(REALTIME)
    assert open_recording(f).format == "ndbc" and open_recording(f).station == "41002"
    engine, stored, rejected, _ = replay(tmp_path, f)
    assert [r["ts"] for r in stored] == ["2024-05-01T10:30:00Z", "2024-05-01T10:40:00Z", "2024-05-01T11:00:00Z"]
    assert stored[-1]["pressure_msl_hpa"] == 1016.5 and stored[-1]["wind_dir_deg"] == 120.0
    assert len(rejected) == 1 and rejected[0]["code"] == "no_values"  # the all-MM line, whole
    assert engine.counters.ignored_fields.get("PTDY") == 4


def test_ndbc_historical_two_digit_years_and_nine_filled_values(tmp_path):
    f = tmp_path / "41002h1989.txt"
    f.write_text(HISTORICAL)
    _, stored, rejected, _ = replay(tmp_path, f)
    assert [r["ts"] for r in stored] == ["1989-01-01T01:00:00Z", "1989-01-01T02:00:00Z"]
    assert stored[0]["station"] == "41002" and stored[0]["wind_mps"] == 3.2 and "dewpoint_c" not in stored[0]
    assert set(stored[1]) - {"anomaly_score"} == {"ts", "station", "source", "pressure_msl_hpa", "temp_c",
                                                   "water_temp_c"}
    assert rejected == []


def test_ndbc_units_line_in_knots_is_converted(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("#YY  MM DD hh mm WSPD  PRES\n#yr  mo dy hr mn kts   hPa\n2024 05 01 10 00 10.0 1010.0\n")
    _, stored, _, _ = replay(tmp_path, f)
    assert stored[0]["wind_mps"] == pytest.approx(5.14444)


# --- Telegraf ---------------------------------------------------------------------------------------
def test_telegraf_json_serializer_layout_with_ns_timestamps(tmp_path):
    f = tmp_path / "telegraf.jsonl"
    f.write_text(
        '{"fields":{"temperature":18.4,"humidity":61,"gust_mps":99.0},"name":"weather",'
        '"tags":{"host":"pi","station":"roof"},"timestamp":1714557600000000000}\n'
        '{"metrics":[{"fields":{"temperature":18.5},"name":"weather","tags":{"station":"roof"},'
        '"timestamp":1714557660},{"fields":{"temperature":"warm"},"name":"weather","tags":{"station":"roof"},'
        '"timestamp":1714557720}]}\n')
    _, stored, rejected, _ = replay(tmp_path, f)
    assert [(r["ts"], r["station"], r["source"], r["temp_c"]) for r in stored] == [
        ("2024-05-01T10:00:00Z", "roof", "weather", 18.4), ("2024-05-01T10:01:00Z", "roof", "weather", 18.5)]
    assert stored[0]["tags"] == {"host": "pi", "station": "roof"} and stored[0]["humidity_pct"] == 61
    assert sorted((r["kind"], r["code"]) for r in rejected) == [("field", "sentinel"), ("message", "no_valid_value")]


def test_a_telegraf_batch_with_no_metrics_is_set_aside_with_a_reason(tmp_path):
    """Every line is stored or quarantined: an empty batch was neither (a tester's count came out short)."""
    f = tmp_path / "telegraf.jsonl"
    f.write_text('{"metrics":[]}\n{"ts":1714557600,"station":"roof","temp_c":18.5}\n')
    engine, stored, rejected, _ = replay(tmp_path, f)
    assert len(stored) == 1 and [(r["code"], r["raw"]) for r in rejected] == [("no_values", '{"metrics":[]}')]
    assert engine.counters.observations + engine.counters.rejected == 2


def test_nan_infinity_and_1e400_are_bad_fields_with_their_text_and_null_is_absent(tmp_path):
    """A tester found 1e400 and Infinity quarantined as 'temp_c=null outside the physical range' with
    raw 'null', and NaN taken silently as an absent value."""
    f = tmp_path / "n.jsonl"
    temps = ["1e400", "NaN", "-Infinity", "null", "12.5"]
    f.write_text("".join(f'{{"ts":{1_700_000_000 + 60 * i},"station":"a","temp_c":{t},"pressure_hpa":1000}}\n'
                         for i, t in enumerate(temps)))
    engine, stored, rejected, _ = replay(tmp_path, f)
    assert len(stored) == 5 and all(r["pressure_hpa"] == 1000 for r in stored)
    assert [r.get("temp_c") for r in stored] == [None, None, None, None, 12.5]
    assert [(r["kind"], r["code"], r["raw"]) for r in rejected] == [
        ("field", "not_a_number", "Infinity"), ("field", "not_a_number", "NaN"),
        ("field", "not_a_number", "-Infinity")]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "null"]),
                          st.floats(-80, 60, allow_nan=False).map(repr), st.integers(-80, 60).map(str)),
                min_size=1, max_size=30))
def test_any_number_token_in_a_field_is_stored_finite_or_set_aside_with_its_text(tokens):
    """The rule: a field's value is stored when it is a finite number in range, absent when null,
    else quarantined alone with its own text; the line's other fields are kept."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "n.jsonl"
        f.write_text("".join(f'{{"ts":{1_700_000_000 + 60 * i},"station":"a","temp_c":{t},"pressure_hpa":1000}}\n'
                             for i, t in enumerate(tokens)))
        _, stored, rejected, _ = replay(Path(tmp), f)
    assert len(stored) == len(tokens) and all(r["pressure_hpa"] == 1000 for r in stored)
    bad = [t for t in tokens if t in ("NaN", "Infinity", "-Infinity", "1e400", "-1e999")]
    assert len(rejected) == len(bad) and all(r["raw"] != "null" and r["kind"] == "field" for r in rejected)
    assert sum("temp_c" in r for r in stored) == len(tokens) - len(bad) - tokens.count("null")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-40, 40)), st.one_of(st.none(), st.integers(-40, 40))),
                min_size=1, max_size=20))
def test_two_keys_for_one_variable_in_a_message_keep_the_first_and_set_a_different_second_aside(pairs):
    """temp_c and its alias temperature in one message: the first value is stored; a second that
    differs is a conflicting duplicate, quarantined alone; one that agrees, or fills an absent
    first, is no problem (a tester saw the later one win, the other dropped unseen)."""
    import tempfile

    lines = []
    for i, (a, b) in enumerate(pairs):
        parts = [f'"ts":{1_700_000_000 + 60 * i}', '"station":"a"', '"pressure_hpa":1000']
        parts += [f'"temp_c":{a}'] if a is not None else []
        parts += [f'"temperature":{b}'] if b is not None else []
        lines.append("{" + ",".join(parts) + "}")
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "n.jsonl"
        f.write_text("\n".join(lines) + "\n")
        _, stored, rejected, _ = replay(Path(tmp), f)
    assert [r.get("temp_c") for r in stored] == [a if a is not None else b for a, b in pairs]
    clashes = [(i, b) for i, (a, b) in enumerate(pairs) if a is not None and b is not None and a != b]
    assert [(r["code"], r["field"], r["raw"]) for r in rejected] == [("conflict", "temperature", str(b))
                                                                        for _, b in clashes]


def test_a_latin1_byte_in_a_utf8_csv_is_read_as_windows_1252_not_as_a_new_station(tmp_path):
    """One Latin-1 byte in a UTF-8 CSV (past the head) was read as U+FFFD and stored as a new station
    'Gen\ufffdve' (a tester); then set aside. A stray byte is a Windows-1252 character typed on another
    machine: 'Genève' is stored, the same station as a UTF-8 'Genève'. A byte that is no character
    in Windows-1252 either (0x81) still sets its row aside."""
    rows = ["time,station,temp_c", *[f"2024-05-01T{h:02d}:00:00Z,Zurich,{h}" for h in range(24)]]
    f = tmp_path / "z.csv"
    f.write_bytes(b"# " + b"x" * 70_000 + b"\n" + ("\n".join(rows) + "\n").encode()
                  + b"2024-05-02T00:00:00Z,Gen\xe8ve,5\n" + "2024-05-02T01:00:00Z,Genève,6\n".encode()
                  + b"2024-05-02T02:00:00Z,Gen\x81ve,7\n")
    engine, stored, rejected, _ = replay(tmp_path, f)
    assert sorted({r["station"] for r in stored}) == ["Genève", "Zurich"] and len(stored) == 26
    assert [r["code"] for r in rejected] == ["bad_station"] and "U+FFFD" in rejected[0]["reason"]


def test_a_stray_byte_in_the_head_of_a_utf8_csv_leaves_its_names_as_written(tmp_path):
    """The same stray byte within the first 64 KiB (the head the encoding was judged on) made the whole
    file read as Windows-1252: every 'Zürich' stored as 'ZÃ¼rich', without a word (a tester)."""
    rows = ["time,station,temp_c", *[f"2024-05-01T{h:02d}:00:00Z,Zürich,{h}" for h in range(24)]]
    f = tmp_path / "z.csv"
    f.write_bytes(("\n".join(rows) + "\n").encode() + b"2024-05-02T00:00:00Z,Gen\xe8ve,5\n")
    engine, stored, rejected, _ = replay(tmp_path, f)
    assert sorted({r["station"] for r in stored}) == ["Genève", "Zürich"] and len(stored) == 25 and rejected == []


@pytest.mark.parametrize("case", ["bom-and-one-stray-byte", "utf8-degree-header-and-a-stray-byte",
                                  "stray-degree-in-the-header"])
def test_one_stray_byte_never_loses_a_csv(tmp_path, case):
    """A tester's three files, each lost whole by one byte: a UTF-8 BOM with one stray byte (read as
    Windows-1252, the BOM became part of the time column's name: every row missing_ts); one UTF-8 °
    in the header and one stray byte (a tie, read as Windows-1252: 'Temperature (Â°F)' unknown, every
    row no_values); a stray ° in the header of a UTF-8 file ('Temperature (\ufffdF)': every row
    no_values). Each row is stored, the stray byte read as the Windows-1252 character it is."""
    body = [f"2024-05-01T{h:02d}:00:00Z,Zürich,{60 + h % 5}.0" for h in range(24)]
    header, extra = {
        "bom-and-one-stray-byte": ("\ufefftime,station,Temperature (°F)".encode(),
                                   b"2024-05-02T00:00:00Z,Gen\xe8ve,50.0\n"),
        "utf8-degree-header-and-a-stray-byte": ("time,station,Temperature (°F)".encode(),
                                                b"2024-05-02T00:00:00Z,Montr\xe9al,50.0\n"),
        "stray-degree-in-the-header": (b"time,station,Temperature (\xb0F)",
                                       b"2024-05-02T00:00:00Z,Montr\xe9al,50.0\n"),
    }[case]
    f = tmp_path / "t.csv"
    f.write_bytes(header + b"\n" + "\n".join(body).encode() + b"\n" + extra)
    engine, stored, rejected, _ = replay(tmp_path, f)
    assert rejected == [] and len(stored) == 25
    assert {r["station"] for r in stored} == {"Zürich", "Genève" if case.startswith("bom") else "Montréal"}
    assert stored[0]["temp_c"] == pytest.approx((60.0 - 32) * 5 / 9, abs=0.01)


_NAMES = ["Zürich", "Genève", "Tromsø", "Kraków", "Oslo", "Lima", "Montréal"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(["utf-8", "cp1252", "cp1252-degree"])),
                min_size=1, max_size=30))
def test_property_rows_in_utf8_windows_1252_or_both_are_read_as_written(rows):
    """The rule behind them: a text recording is UTF-8 with each byte that is not UTF-8 read as
    Windows-1252, so rows written in either (or a UTF-8 row with one stray ° byte) are read with their
    names as written, whatever the mix and wherever the rows are."""
    import tempfile

    lines, expected = [], []
    for i, (name, how) in enumerate(rows):
        if how == "cp1252-degree":
            raw, text = name.encode() + b"\xb0", name + "°"
        else:
            raw, text = name.encode(how, errors="replace"), name.encode(how, errors="replace").decode(how)
        lines.append(f"2024-05-01T00:{i:02d}:00Z,".encode() + raw + b",1")
        expected.append(text)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "names.csv"
        f.write_bytes(b"time,station,temp_c\n" + b"\n".join(lines) + b"\n")
        recording = open_recording(f)
        out = Decoder().decode_table(next(recording.chunks()), default_station=recording.station)
    assert list(out.batch.station) == expected and out.rejected == []


@given(st.text(alphabet=st.sampled_from("abcZürich-_ 0\ufffd"), min_size=1, max_size=20))
def test_a_station_name_is_taken_unless_it_holds_the_replacement_mark(name):
    """The rule: a name holding U+FFFD (a byte a reader could not decode) is never a station; any other
    non-blank name is, as written (stripped)."""
    from sources.decode import _station

    station, why = _station(name)
    if not name.strip():
        assert why and not station
    elif "\ufffd" in name:
        assert "U+FFFD" in why and station == ""
    else:
        assert (station, why) == (name.strip(), "")


# --- time zones ----------------------------------------------------------------------------------------
def test_naive_local_times_across_the_autumn_and_spring_changes(tmp_path):
    f = tmp_path / "logger.csv"
    autumn = ["2024-11-03 00:30", "2024-11-03 01:00", "2024-11-03 01:30", "2024-11-03 01:00", "2024-11-03 01:30",
              "2024-11-03 02:00"]
    spring = ["2024-03-10 01:30", "2024-03-10 02:30", "2024-03-10 04:30"]
    f.write_text("time,station,temp_c\n" + "".join(f"{t},log,{i}\n" for i, t in enumerate(spring + autumn)))
    engine, stored, rejected, _ = replay(tmp_path, f, MASS_TZ="America/Chicago")
    assert rejected == [] and engine.counters.conflicts == 0
    ts = [r["ts"] for r in stored]
    # spring: 02:30 does not exist; read with the offset before the change (CST): 08:30Z (= 03:30 CDT)
    assert ts[:3] == ["2024-03-10T07:30:00Z", "2024-03-10T08:30:00Z", "2024-03-10T09:30:00Z"]
    # autumn: the repeated 01:00 and 01:30 are the second pass (CST) once the clock went back
    assert ts[-6:] == ["2024-11-03T05:30:00Z", "2024-11-03T06:00:00Z", "2024-11-03T06:30:00Z",
                       "2024-11-03T07:00:00Z", "2024-11-03T07:30:00Z", "2024-11-03T08:00:00Z"]
    summary = engine.summary()
    assert summary["tz_repeated"] == 4 and summary["tz_skipped"] == 1


def test_a_station_tz_in_mass_toml_applies_to_that_station_only(tmp_path):
    toml = tmp_path / "mass.toml"
    toml.write_text('[[stations]]\nname = "paris"\nlat = 48.8\nlon = 2.3\ntz = "Europe/Paris"\n')
    cfg = load_config(toml, env={}, dotenv_file=None)
    from mass_tui.config import input_policy

    policy = input_policy(cfg)
    out = Decoder(policy).decode([b'{"ts": "2024-07-01T12:00", "station": "paris", "temp_c": 20}',
                                  b'{"ts": "2024-07-01T12:00", "station": "oslo", "temp_c": 20}'])
    assert out.batch.ts.tolist() == [parse_time("2024-07-01T10:00:00Z"), parse_time("2024-07-01T12:00:00Z")]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[stations]]\nname = "x"\ntz = "Mars/Olympus"\n')
    with pytest.raises(Exception, match="stations\\[0\\].tz"):
        load_config(bad, env={}, dotenv_file=None)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 365 * 24 * 4 - 8), st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Sydney"]))
def test_a_logger_in_local_time_is_read_in_order_across_any_clock_change(start, tz):
    """The rule of the time zones: a logger writing naive local times every 15 min gives strictly rising
    instants 15 min apart, through the repeated hour too (the skipped hour has no readings to give)."""
    z = zone(tz)
    first = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * start)
    walls = [(first + timedelta(minutes=15 * k)).astimezone(z).replace(tzinfo=None).isoformat() for k in range(8)]
    msgs = [orjson.dumps({"ts": w, "station": "l", "temp_c": 1}) for w in walls]
    out = Decoder(InputPolicy(tz=z)).decode(msgs)
    assert np.diff(out.batch.ts).tolist() == [900.0] * 7
    assert out.batch.ts[0] == first.timestamp()


def _fall_back(z) -> datetime:
    """The UTC instant of `z`'s autumn clock change in 2024 (its offset falls), found hour by hour."""
    t = datetime(2024, 1, 1, tzinfo=UTC)
    while not (t + timedelta(hours=1)).astimezone(z).utcoffset() < t.astimezone(z).utcoffset():
        t += timedelta(hours=1)
    return t + timedelta(hours=1)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400), st.sampled_from([5, 10, 15, 30, 45, 60]), st.integers(3, 30),
       st.sampled_from(["Europe/Paris", "America/New_York", "America/Chicago", "Australia/Sydney"]), st.booleans(),
       st.integers(1, 3), st.booleans())
def test_a_logger_read_newest_first_or_oldest_first_gives_the_same_instants(shift, step, count, tz, newest_first,
                                                                            stations, near):
    """The rule behind the autumn change in a newest-first file (the second pass of the repeated hour
    read an hour early): naive local times every `step` min (up to an hour), of one or several stations
    interleaved, in either order, are the instants written, each `step` apart, whichever pass of the
    repeated hour they are in, the first line's too when a later one is outside the repeated hour
    (a file all inside it has nothing to tell its pass by: the first pass; those are left out)."""
    z = zone(tz)
    base = _fall_back(z) if near else datetime(2024, 6, 1, tzinfo=UTC)  # across the change, or a plain day
    # the first instant from an hour past the change back to where the series still reaches it
    first = base + timedelta(minutes=60 - (5 * shift) % (count * step + 120))
    instants = [first + timedelta(minutes=step * k) for k in range(count)]
    order = instants[::-1] if newest_first else instants
    walls = [t.astimezone(z).replace(tzinfo=None) for t in order]
    assume(any(w.replace(tzinfo=z, fold=0).utcoffset() == w.replace(tzinfo=z, fold=1).utcoffset() for w in walls))
    msgs = [orjson.dumps({"ts": t.astimezone(z).replace(tzinfo=None).isoformat(), "station": f"l{s}",
                          "temp_c": 1}) for t in order for s in range(stations)]
    got = Decoder(InputPolicy(tz=z)).decode(msgs).batch.ts.reshape(count, stations)
    assert (got == np.array([t.timestamp() for t in order])[:, None]).all()


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("step", [1, 10, 20, 60])
def test_second_data_that_starts_in_the_second_pass_is_read_as_written(step, newest_first):
    """Readings seconds apart that start after the clocks went back, inside the repeated hour: all
    the instants written, in either order. The look-ahead stopped after 128 readings (under an hour
    of data faster than every 28 s), where both passes looked alike: 3,000 of 3,600 one-second
    readings landed an hour early, and newest-first the second pass was set aside as conflicts."""
    z = zone("America/Chicago")
    if newest_first:  # from 01:50 CST (second pass) down to 00:50 CDT, through both passes
        instants = [datetime(2024, 11, 3, 7, 50, tzinfo=UTC) - timedelta(seconds=step * k)
                    for k in range(7200 // step + 1)]
    else:  # from 01:10 CST (second pass) on, past the repeated hour
        instants = [datetime(2024, 11, 3, 7, 10, tzinfo=UTC) + timedelta(seconds=step * k)
                    for k in range(3600 // step)]
    msgs = [orjson.dumps({"ts": t.astimezone(z).replace(tzinfo=None).isoformat(), "station": "l", "temp_c": 1})
            for t in instants]
    got = Decoder(InputPolicy(tz=z)).decode(msgs).batch.ts
    assert got.tolist() == [t.timestamp() for t in instants]


def test_a_swapped_pair_near_the_start_does_not_move_a_run_into_the_other_pass():
    """Newest-first minute readings from 01:40 CDT (the first pass) down to 00:40, with 01:27 written
    before 01:28: the instants written. The look-ahead ranked any turn back above a longer way and
    took the one-minute turn for the wrong pass: 01:40-01:27 were stored an hour late."""
    walls = [f"01:{m:02d}" for m in range(40, -1, -1)] + [f"00:{m:02d}" for m in range(59, 39, -1)]
    i = walls.index("01:28")
    walls[i], walls[i + 1] = walls[i + 1], walls[i]
    msgs = [orjson.dumps({"ts": f"2024-11-03T{w}", "station": "a", "temp_c": 1}) for w in walls]
    got = Decoder(InputPolicy(tz=zone("America/Chicago"))).decode(msgs).batch.ts
    assert [datetime.fromtimestamp(t, UTC).strftime("%H:%M") for t in got] == \
        [f"{int(w[:2]) + 5:02d}:{w[3:]}" for w in walls]  # CDT is UTC-5


def test_55_minute_readings_that_start_in_the_first_pass_are_read_as_written():
    """01:00, 01:55 (both CDT), 01:50, 02:45, 03:40 (CST): every 55 min from 06:00Z. With a step back
    weighted five times a step on, the look-ahead took the second pass for the first two (07:00Z,
    07:55Z, then 01:50 as five minutes late): shorter by the skipped hour than the truth."""
    msgs = [orjson.dumps({"ts": f"2024-11-03T{w}", "station": "a", "temp_c": 1})
            for w in ("01:00", "01:55", "01:50", "02:45", "03:40")]
    got = Decoder(InputPolicy(tz=zone("America/Chicago"))).decode(msgs).batch.ts
    assert [datetime.fromtimestamp(t, UTC).strftime("%H:%M") for t in got] == ["06:00", "06:55", "07:50", "08:45",
                                                                              "09:40"]


def test_a_late_reading_in_the_second_pass_stays_in_it_oldest_first():
    """Oldest-first 5-min readings from 01:35 CDT to 02:30 CST, with 01:25 CST written before 01:20 CST:
    the instants written. The late 01:20 CST was read as 01:20 CDT (its first pass, an hour early),
    the rule taking the second pass only past the newest reading; a reading not after the newest is
    now late in the pass the newest is in."""
    z = zone("America/Chicago")
    instants = [datetime(2024, 11, 3, 6, 35, tzinfo=UTC) + timedelta(minutes=5 * k) for k in range(24)]
    i = instants.index(datetime(2024, 11, 3, 7, 20, tzinfo=UTC))
    instants[i], instants[i + 1] = instants[i + 1], instants[i]
    msgs = [orjson.dumps({"ts": t.astimezone(z).replace(tzinfo=None).isoformat(), "station": "a", "temp_c": 1})
            for t in instants]
    assert Decoder(InputPolicy(tz=z)).decode(msgs).batch.ts.tolist() == [t.timestamp() for t in instants]


def test_a_file_with_one_variable_a_line_keeps_the_second_pass_oldest_first(tmp_path):
    """Two lines an instant (temperature, then humidity), oldest-first 15-min readings from 01:10 CST,
    the second pass: every line stored at its instant, none a conflict. The humidity line of each
    instant was taken for the first pass (its instant already the newest) and quarantined as a
    conflicting duplicate of the hour before."""
    z = zone("America/Chicago")
    instants = [datetime(2024, 11, 3, 7, 10, tzinfo=UTC) + timedelta(minutes=15 * k) for k in range(6)]
    f = tmp_path / "split.jsonl"
    lines = [{"ts": t.astimezone(z).replace(tzinfo=None).isoformat(), "station": "a", key: value}
             for k, t in enumerate(instants) for key, value in (("temp_c", 5 + k), ("humidity_pct", 60 + k))]
    f.write_text("".join(orjson.dumps(line).decode() + "\n" for line in lines))
    engine, stored, rejected, _ = replay(tmp_path, f, MASS_TZ="America/Chicago")
    assert rejected == [] and engine.counters.conflicts == 0
    assert sorted({r["ts"] for r in stored}) == [iso_utc(t.timestamp()) for t in instants]
    assert len(stored) == 12


@pytest.mark.parametrize(("walls", "want"), [(["01:00", "01:45"], ["06:00", "06:45"]),
                                             (["01:00", "01:45", "01:30"], ["06:00", "06:45", "07:30"])])
def test_readings_all_inside_the_repeated_hour_one_way_are_the_first_pass(walls, want):
    """Readings inside the repeated hour with nothing after them, going one way, tell nothing of their
    pass: the first, as documented, however far apart (the look-ahead's "nearer together" had made
    01:00 then 01:45 a newest-first pair of the second pass)."""
    z = zone("America/Chicago")
    msgs = [orjson.dumps({"ts": f"2024-11-03T{w}", "station": "l", "temp_c": 1}) for w in walls]
    got = Decoder(InputPolicy(tz=z)).decode(msgs).batch.ts
    assert [datetime.fromtimestamp(t, UTC).strftime("%H:%M") for t in got] == want


_ACROSS = ["2024-11-03 00:30", "2024-11-03 00:45", "2024-11-03 01:00", "2024-11-03 01:15", "2024-11-03 01:30",
           "2024-11-03 01:45", "2024-11-03 01:00", "2024-11-03 01:15", "2024-11-03 01:30", "2024-11-03 01:45",
           "2024-11-03 02:00"]
_FROM_SECOND = ["2024-11-03 01:15", "2024-11-03 01:30", "2024-11-03 01:45", "2024-11-03 02:00", "2024-11-03 02:15"]


@pytest.mark.parametrize(("walls", "first"),
                         [(_ACROSS, "2024-11-03T05:30:00Z"), (_FROM_SECOND, "2024-11-03T07:15:00Z")],
                         ids=["across-the-change", "starts-in-the-second-pass"])
def test_a_logger_file_in_local_time_stores_the_same_instants_newest_first_as_oldest_first(tmp_path, walls, first):
    """A logger's export in local time, oldest line first and newest line first (as NDBC and many loggers
    write), across the night the clocks go back, or starting after they went back, inside the repeated
    hour (its first lines the second pass): the instants written, 15 min apart, either way. Before: the
    second pass of 01:00-01:45 of a newest-first file landed an hour early, on the first pass's instants,
    as conflicts or duplicates; a file starting in the second pass was read as the first pass, an hour
    early, with a 75-minute gap before the next hour."""
    runs = {}
    for name, rows in (("oldest", walls), ("newest", walls[::-1])):
        f = tmp_path / f"{name}.csv"
        f.write_text("time,station,temp_c\n" + "".join(f"{t},log,{5 + 0.1 * i}\n" for i, t in enumerate(rows)))
        engine, stored, rejected, _ = replay(tmp_path, f, name=name, MASS_TZ="America/Chicago")
        assert rejected == [] and engine.counters.conflicts == 0 and engine.counters.duplicates == 0
        runs[name] = [r["ts"] for r in stored]
    assert runs["newest"] == runs["oldest"] == [iso_utc(parse_time(first) + 900 * k) for k in range(len(walls))]


# --- live late data, duplicates and conflicts ----------------------------------------------------------
def test_live_late_readings_are_stored_not_scored_and_conflicts_quarantined(tmp_path):
    cfg = _config(tmp_path)
    msgs = [orjson.dumps({"ts": 1_700_000_000 + 600 * i, "station": "b", "pressure_msl_hpa": 1010 - 0.3 * i})
            for i in range(20)]
    late = orjson.dumps({"ts": 1_700_000_000 + 600 * 5 + 60, "station": "b", "pressure_msl_hpa": 990.0})
    conflict = orjson.dumps({"ts": 1_700_000_000 + 600 * 19, "station": "b", "pressure_msl_hpa": 1000.0})
    dup = msgs[19]
    with JsonlStore(tmp_path / "db") as store:
        engine = Engine(cfg, store)
        for m in msgs:
            engine.ingest([m])
        results = [engine.ingest([m]) for m in (late, conflict, dup)]
    c = engine.counters
    assert (c.observations, c.late, c.out_of_order, c.conflicts, c.duplicates, c.rejected) == (21, 1, 1, 1, 1, 1)
    stored = _read(tmp_path / "db" / "consumer_stream.jsonl")
    assert stored[-1]["pressure_msl_hpa"] == 990.0 and stored[-1]["anomaly_score"] == {"pressure_msl_hpa": None}
    assert not results[0].anomalies  # a late value never reaches a rule: no "fell 19 hPa in -54 min"
    rejected = _read(tmp_path / "db" / "rejected.jsonl")
    assert rejected[0]["code"] == "conflict" and "conflicting duplicate" in rejected[0]["reason"]
    summary = engine.summary()
    assert (summary["late"], summary["conflicts"], summary["out_of_order"]) == (1, 1, 1)


def test_readings_of_different_variables_at_one_instant_are_not_conflicts(tmp_path):
    with JsonlStore(tmp_path / "db") as store:
        engine = Engine(_config(tmp_path), store)
        engine.ingest([b'{"ts": 1700000000, "station": "b", "source": "w", "temp_c": 10}'])
        engine.ingest([b'{"ts": 1700000000, "station": "b", "source": "air", "pm25_ugm3": 8}'])
        engine.ingest([b'{"ts": 1700000000, "station": "b", "source": "w", "temp_c": 11, "humidity_pct": 50}'])
    c = engine.counters
    assert (c.observations, c.conflicts, c.fields_rejected) == (3, 1, 1)
    stored = _read(tmp_path / "db" / "consumer_stream.jsonl")
    assert "temp_c" not in stored[2] and stored[2]["humidity_pct"] == 50


# --- strings from data ---------------------------------------------------------------------------------
def test_control_characters_in_names_sources_and_tags_are_made_inert(tmp_path):
    msg = {"ts": 1_700_000_000, "station": "\x1b]0;PWNED\x07a\nb\u202e", "source": "\x1b[31mred",
           "tags": {"k\r": "v\x9b2J"}, "temp_c": 1}
    obs = Decoder().decode([orjson.dumps(msg)]).batch.observation(0)
    assert obs.station == "\\x1b]0;PWNED\\x07a\\x0ab\\u202e" and obs.source == "\\x1b[31mred"
    assert obs.tags == {"k\\x0d": "v\\x9b2J"}
    for text in (obs.station, obs.source, *obs.tags, *obs.tags.values()):
        assert not any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F or 0x202A <= ord(ch) <= 0x202E for ch in text)


# --- never raise, account for everything ---------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=120), json_values.map(lambda v: json.dumps(v).encode())),
                max_size=20))
def test_arbitrary_bytes_and_json_values_never_raise_and_each_message_is_accounted_once(raws):
    out = Decoder().decode(raws)
    assert len(out.batch) + len(out.rejected) == len(raws)
    for r in out.quarantined:
        assert r.reason
        json.dumps(r.to_record(0.0))


VALID = {"temp_c": 12.5, "humidity_pct": 60.0, "pressure_hpa": 1001.0, "wind_mps": 3.0, "gust_mps": 6.5}
DAMAGE = st.one_of(
    st.just(None), st.just("MM"), st.just("NA"), st.just(""), st.just(True), st.just("warm"), st.just([1]),
    st.just({"deep": {"er": 1}}), st.just(99.0), st.just(9999.0), st.just(-9999), st.just(1e300),
    st.just(10**400), st.just(5000.0), st.just("1e999"), st.just("12,5"),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.dictionaries(st.sampled_from(sorted(VALID)), DAMAGE, max_size=5),
                          st.sampled_from([1_700_000_000, "2024-01-01T00:00:00Z", 1_700_000_000_000_000_000])),
                min_size=1, max_size=12))
def test_valid_messages_with_damaged_fields_keep_every_valid_field_exactly_once(messages):
    """Every valid field of every message is stored, or quarantined with its whole message when nothing
    valid is left; a damaged field is quarantined once or, if it is a missing marker, absent."""
    raws = []
    for k, (damage, ts) in enumerate(messages):
        msg = {"ts": ts, "station": f"s{k}", **{name: VALID[name] for name in VALID if name not in damage}}
        msg.update(damage)
        raws.append(orjson.dumps(msg) if 10**400 not in damage.values() else json.dumps(msg).encode())
    out = Decoder().decode(raws)
    assert len(out.batch) + len(out.rejected) == len(raws)
    stored = {out.batch.station[i]: out.batch.observation(i) for i in range(len(out.batch))}
    rejected_whole = {json.loads(r.raw)["station"] for r in out.rejected}
    fields = {}
    for f in out.fields:
        fields.setdefault(f.station, []).append(f.variable)
    for k, (damage, _) in enumerate(messages):
        station = f"s{k}"
        valid = {name for name in VALID if name not in damage}
        missing = {n for n, v in damage.items() if v is None or (isinstance(v, str) and v.strip().casefold() in
                                                                   {"", "na", "mm", "m", "n/a", "nan", "null", "-"})}
        # a damage value that is a fine reading of that variable (99 % humidity) is stored
        valid |= {n for n, v in damage.items() if n == "humidity_pct" and v == 99.0}
        bad = set(damage) - missing - valid
        if station in stored:
            assert station not in rejected_whole
            assert set(stored[station].values) == valid
            assert sorted(fields.get(station, [])) == sorted(bad)  # each damaged field quarantined once
        else:
            assert station in rejected_whole and not valid and station not in fields


def test_poison_values_and_recursion_never_escape(tmp_path):
    deep = b'{"ts": 1, "station": "a", "temp_c": 1, "tags": ' + b'{"a":' * 200 + b"1" + b"}" * 200 + b"}"
    value_deep = b'{"ts": 1700000000, "station": "a", "temp_c": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    out = Decoder().decode([deep, value_deep, b'{"ts": 1700000000, "station": "a", "temp_c": 1e999}'])
    assert len(out.rejected) == 3 and all(math.isfinite(len(r.reason)) for r in out.rejected)
