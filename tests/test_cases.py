"""Every case of ../shared/cases (vendored under tests/data/cases), run the way its README says a user
would: `mass replay FILE --headless` in a subprocess with a fresh --data-dir, `mass score`, a replay that
mails its alerts to a real SMTP server; each outcome compared with the README's. The deeper tests of each
case and its rule are in test_inputs.py, test_poison_pills.py, test_torn_and_full.py, test_matchers.py,
test_ui.py and test_tmux.py; the property tests here cover the rules those files do not.

Also the close variants a user produces (each a kind that broke before): compressed and UTF-16
recordings, an .xlsx or binary file, a download cut short, an IEM download in local time, ERDDAP's units
row, separate date and time columns, `mass score` on a `;` or UTF-16 export.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from sources.decode import Decoder, Table
from sources.fields import tidy
from sources.formats import open_recording
from sources.schema import iso_utc
from sources.times import EARLIEST, LATEST

from .conftest import ROOT

CASES = Path(__file__).parent / "data" / "cases"
INPUTS = CASES / "inputs"
RELIABILITY = CASES / "reliability"


def mass(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`mass ARGS` as a user runs it, in `tmp_path` (logs go to tmp_path/logs)."""
    full_env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                "HOME": str(tmp_path), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mass_tui", *args], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=180)


def replay(tmp_path: Path, path: Path, *extra: str, env: dict[str, str] | None = None, name: str = "d"):
    """`mass replay PATH --headless -q --data-dir NAME`: (summary, stored, rejected, anomalies)."""
    out = mass(tmp_path, "replay", str(path), "--headless", "-q", "--data-dir", name, *extra, env=env)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    db = tmp_path / name / "db"
    return (json.loads(out.stdout.splitlines()[-1]), _read(db / "consumer_stream.jsonl"),
            _read(db / "rejected.jsonl"), _read(db / "anomalies.jsonl"))


def _read(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


# --- the input cases, through `mass replay --headless` --------------------------------------------

def test_case_21_epoch_micro_nanoseconds_cli(tmp_path):
    """21-epoch-micro-nanoseconds.jsonl: 3 observations at 10:00, 10:01, 10:02 UTC; no exception."""
    summary, stored, rejected, _ = replay(tmp_path, INPUTS / "21-epoch-micro-nanoseconds.jsonl")
    assert [r["ts"] for r in stored] == ["2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z"]
    assert summary["observations"] == 3 and summary["rejected"] == 0 and rejected == []


def test_case_02_ndbc_mm_kept_cli(tmp_path):
    """02-ndbc-41002-mm-kept.csv: 24 observations with the values present (pressure in all 24); no row
    rejected for an MM."""
    summary, stored, rejected, _ = replay(tmp_path, INPUTS / "02-ndbc-41002-mm-kept.csv")
    assert summary["observations"] == 24 and summary["rejected"] == 0 and rejected == []
    assert all(isinstance(r["pressure_msl_hpa"], float) for r in stored)
    assert not any(v == "MM" for r in stored for v in r.values())


def test_case_03b_ndbc_sentinels_cli(tmp_path):
    """03b-ndbc-44005-sentinels-no-wdir.csv: no 99 m/s wind or gust stored, no anomaly from them; those
    fields quarantined with a reason naming the marker; pressure, temperature and waves of those rows kept."""
    summary, stored, rejected, anomalies = replay(tmp_path, INPUTS / "03b-ndbc-44005-sentinels-no-wdir.csv",
                                                  "--alerts")
    assert not any(r.get(v) == 99.0 for r in stored for v in ("wind_mps", "gust_mps"))
    assert not [a for a in anomalies if a["variable"] in ("wind_mps", "gust_mps")]
    assert summary.get("alerts", 0) == 0
    assert summary["fields_rejected"] == len(rejected) == 20
    assert summary["fields_rejected_by_reason"] == {"sentinel": 20}
    assert all(r["kind"] == "field" and "sentinel 99.0" in r["reason"] and r["raw"] == "99.0" for r in rejected)
    hit = {r["ts"] for r in rejected}
    kept = [r for r in stored if r["ts"] in hit]
    assert len(kept) == 10 and all({"pressure_msl_hpa", "temp_c", "wave_height_m"} <= set(r) for r in kept)


def test_case_06_asos_m_missing_cli(tmp_path):
    """06-asos-msp-M-missing.csv: 21 observations; M cells absent; knots converted to m/s."""
    summary, stored, rejected, _ = replay(tmp_path, INPUTS / "06-asos-msp-M-missing.csv")
    assert summary["observations"] == 21 and rejected == []
    assert stored[0]["wind_mps"] == pytest.approx(16 * 0.514444) and "precip_mm" not in stored[0]
    assert "pressure_msl_hpa" not in stored[1]
    assert not any(v == "M" for r in stored for v in r.values())


def test_case_14_excel_bom_crlf_cli_and_mass_score(tmp_path):
    """14-excel-bom-crlf.csv: 4 observations; `mass score` reads a NAB-layout file with a BOM too (and says
    in one line why it will not score this file, which is not in that layout)."""
    summary, stored, rejected, _ = replay(tmp_path, INPUTS / "14-excel-bom-crlf.csv")
    assert summary["observations"] == 4 and rejected == [] and stored[0]["station"] == "roof-logger"
    assert [r["temp_c"] for r in stored] == [-3.2, -3.0, -2.1, -0.8]
    nab = tmp_path / "nab.csv"
    nab.write_bytes(b"\xef\xbb\xbftimestamp,value\r\n" + b"".join(
        f"2024-01-01 00:{i:02d}:00,{i % 5}\r\n".encode() for i in range(40)))
    out = mass(tmp_path, "score", "-i", str(nab), "-o", "scored.csv")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == 40 and json.loads(out.stdout)["missing"] == 0
    refused = mass(tmp_path, "score", "-i", str(INPUTS / "14-excel-bom-crlf.csv"), "-o", "x.csv")
    assert refused.returncode == 2 and "expected columns timestamp and value" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_case_18_desert_heat_cli(tmp_path):
    """18-desert-heat-dry-air.csv: no smoke-sensor ladder or fire-pattern anomaly and no smoke alert."""
    summary, stored, _, anomalies = replay(tmp_path, INPUTS / "18-desert-heat-dry-air.csv", "--alerts")
    assert summary["observations"] == 12
    assert not [a for a in anomalies if a["detector"].startswith("bands") or a["detector"] == "fire"]
    alerts = _read(tmp_path / "d" / "db" / "alerts.jsonl")
    assert not [a for a in alerts if a.get("rule") in ("smoke-levels", "fire")]


def test_case_04_newest_first_cli(tmp_path):
    """04-ndbc-41002-newest-first.csv: the same result as the rows in time order; no pressure-tendency
    anomaly (the pressure rose), never a reason like "fell ... in 0 min"."""
    lines = (INPUTS / "04-ndbc-41002-newest-first.csv").read_text().splitlines()
    ordered = tmp_path / "ordered.csv"
    ordered.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    summary, stored, _, anomalies = replay(tmp_path, INPUTS / "04-ndbc-41002-newest-first.csv")
    _, stored_o, _, anomalies_o = replay(tmp_path, ordered, name="o")
    assert [{k: v for k, v in r.items() if k != "source"} for r in stored] == [
        {k: v for k, v in r.items() if k != "source"} for r in stored_o]
    assert [(a["ts"], a["reason"]) for a in anomalies] == [(a["ts"], a["reason"]) for a in anomalies_o]
    assert not [a for a in anomalies if a["detector"] == "pressure_tendency" or " 0 min" in a["reason"]]
    assert summary["out_of_order"] == 19


def test_case_11_owm_imperial_snow_cli(tmp_path):
    """11-owm-imperial-snow-1h.json served on loopback to `mass run --headless --source openweathermap`
    with OPENWEATHER_UNITS=imperial: °F, mph, hPa converted; 0.89 mm of precipitation stored; gust 20.8 mph
    → 9.3 m/s."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = (INPUTS / "11-owm-imperial-snow-1h.json").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "mass.toml").write_text('[[stations]]\nname = "msp"\nlat = 44.98\nlon = -93.26\n')
    env = {"OPENWEATHER_BASE": f"http://127.0.0.1:{server.server_address[1]}/weather",
           "OPENWEATHER_API_KEY": "k", "OPENWEATHER_UNITS": "imperial"}
    try:
        out = mass(tmp_path, "run", "--headless", "--source", "openweathermap", "--data-dir", "d",
                   "--max-seconds", "4", env=env)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert out.returncode == 0, out.stderr
    stored = _read(tmp_path / "d" / "db" / "consumer_stream.jsonl")
    assert len(stored) == 1
    r = stored[0]
    assert (r["temp_c"], r["pressure_msl_hpa"], r["precip_mm"], r["snow_mm"]) == (-2.0, 1004.0, 0.89, 0.89)
    assert round(r["gust_mps"], 1) == 9.3 and r["wind_mps"] == pytest.approx(9.22 * 0.44704)


# --- the reliability cases, through `mass replay --headless` --------------------------------------

@pytest.mark.parametrize("name", ["ts-out-of-range.jsonl", "poison-pill-year10000.jsonl"])
def test_reliability_time_poison_pills_cli(tmp_path, name):
    """ts-out-of-range.jsonl, poison-pill-year10000.jsonl: 2 stored, 1 quarantined ("timestamp out of
    range"), no exception."""
    summary, stored, rejected, _ = replay(tmp_path, RELIABILITY / name)
    assert [r["temp_c"] for r in stored] == [10.0, 12.0]
    assert summary["rejected_by_reason"] == {"ts_out_of_range": 1}
    assert len(rejected) == 1 and rejected[0]["reason"].startswith("timestamp out of range")


def test_reliability_nested_tags_cli(tmp_path):
    """nested-tags-recursion.jsonl: quarantined with a reason (tags must be flat); no RecursionError."""
    summary, stored, rejected, _ = replay(tmp_path, RELIABILITY / "nested-tags-recursion.jsonl")
    assert stored == [] and summary["rejected_by_reason"] == {"bad_tags": 1}
    assert "tags must be flat" in rejected[0]["reason"]


def test_reliability_tui_injection_mails_keep_their_headers(tmp_path, smtp_server):
    """tui-injection.jsonl, the mail side: replayed with alerts to a real SMTP server, every mail has only
    its own headers, and no control, escape or bidi character of the station names reaches a header or
    the text (they arrive escaped, readable)."""
    port, received = smtp_server
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "ALERT_EMAIL_FROM": "mass@example.org",
           "ALERT_EMAIL_TO": "ops@example.org"}
    summary, stored, _, _ = replay(tmp_path, RELIABILITY / "tui-injection.jsonl", "--alerts", env=env)
    assert summary["observations"] == 800 and summary["deliveries"]["email"]["sent"] == len(received) > 0
    for rcpt, msg in received:
        assert rcpt == ["ops@example.org"] and msg["Bcc"] is None
        assert set(msg.keys()) <= {"From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding",
                                   "MIME-Version", "Date", "Message-ID"}
        assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
        for text in (msg["Subject"], msg.get_content()):
            assert not any(ch in text for ch in "\x1b\x07\x9b\u202e")
        assert "\\x1b]0;PWNED-TITLE\\x07T" in msg.get_content()


INVISIBLE = "\xad\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.sampled_from(INVISIBLE), st.text(max_size=12))
def test_property_a_name_with_an_invisible_character_never_looks_like_another(before, hidden, after):
    """tui-injection.jsonl's kind, one step on: a zero-width or other invisible format character in a
    station name (as stored, mailed and logged) is shown escaped, so "plain\u200b" never passes for
    "plain"."""
    from sources.text import inert

    name = before + hidden + after
    assert inert(name) != inert(before + after)
    assert not any(ch in inert(name) for ch in INVISIBLE)
    obs = Decoder().decode([orjson.dumps({"ts": 1_700_000_000, "station": name or "x", "temp_c": 1})]).batch
    assert not any(ch in obs.station[0] for ch in INVISIBLE)


# --- variants a user produces ----------------------------------------------------------------------

NDBC_2012 = """#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS  TIDE
#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC  mi    ft
2012 10 29 20 50 999 99.0 99.0  7.82 12.12  8.86 999  976.3  13.4  12.5 999.0 99.0 99.00
2012 10 29 21 50 160 19.5 25.0  8.04 12.90  9.21 178  974.0  13.6  12.5 999.0 99.0 99.00
"""


@pytest.mark.parametrize("suffix, compress", [(".gz", gzip.compress), (".bz2", bz2.compress),
                                              (".xz", lzma.compress)])
def test_a_compressed_ndbc_download_replays_as_the_text_does(tmp_path, suffix, compress):
    """NDBC's historical files download as 44005h2012.txt.gz: before, 0 observations and no reason."""
    plain = tmp_path / "44005h2012.txt"
    plain.write_text(NDBC_2012)
    packed = tmp_path / f"44005h2012.txt{suffix}"
    packed.write_bytes(compress(NDBC_2012.encode()))
    _, stored, _, _ = replay(tmp_path, plain, name="plain")
    summary, stored_packed, _, _ = replay(tmp_path, packed, name="packed")
    assert summary["observations"] == 2 and stored_packed[0]["station"] == "44005"
    assert [{k: v for k, v in r.items() if k != "source"} for r in stored_packed] == [
        {k: v for k, v in r.items() if k != "source"} for r in stored]


def test_a_download_cut_short_keeps_what_came_before_and_says_so(tmp_path):
    lines = [json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "a", "temp_c": i % 7}) for i in range(5000)]
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    summary, stored, rejected, _ = replay(tmp_path, cut)
    assert 0 < len(stored) < 5000 and [r["temp_c"] for r in stored] == [i % 7 for i in range(len(stored))]
    truncated = [r for r in rejected if r["code"] == "truncated_file"]
    assert len(truncated) == 1 and "gzip data ends early" in truncated[0]["reason"]
    assert summary["rejected"] == len(rejected)  # the torn last line too, if the cut fell inside one


@pytest.mark.parametrize("tail", [b"garbage", b"\x00" * 100, b"again"])
def test_bytes_after_a_gzip_stream_lose_no_line_of_it(tmp_path, tail):
    """Everything the stream holds is read whatever follows it (the last 42 lines were lost to
    trailing garbage: the piece being decompressed when the error came); NUL padding is quiet, other
    bytes are one truncated_file record; a second stream is read on ("again" becomes one)."""
    lines = [json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "a", "temp_c": i % 7}) for i in range(5000)]
    data = ("\n".join(lines) + "\n").encode()
    more = gzip.compress(b'{"ts":1800000000,"station":"a","temp_c":1}\n') if tail == b"again" else tail
    f = tmp_path / "rec.jsonl.gz"
    f.write_bytes(gzip.compress(data) + more)
    summary, stored, rejected, _ = replay(tmp_path, f)
    assert len(stored) == 5000 + (tail == b"again")
    assert [r["code"] for r in rejected] == (["truncated_file"] if tail == b"garbage" else [])


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 100), st.binary(max_size=40))
def test_a_cut_or_damaged_gzip_loses_no_line_zlib_can_recover(cut_percent, tail):
    """The rule: from a gzip cut anywhere, with any bytes after the cut, every whole line that zlib
    decompresses from the bytes before the cut is stored (the bytes after it may decompress into
    more, which is checked like any line); the run ends in a summary, or, when nothing at all came
    out, in one refusing line."""
    import tempfile
    import zlib

    lines = [json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "a", "temp_c": i % 7}) for i in range(3000)]
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    intact = whole[: len(whole) * cut_percent // 100]
    try:
        recoverable = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(intact).count(b"\n")
    except zlib.error:  # the cut fell inside the header
        recoverable = 0
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "rec.jsonl.gz"
        f.write_bytes(intact + tail)
        out = mass(Path(tmp), "replay", str(f), "--headless", "--max", "-q", "--data-dir", "d")
        stream = Path(tmp) / "d" / "db" / "consumer_stream.jsonl"
        records = [json.loads(line) for line in stream.read_bytes().splitlines()] if stream.exists() else []
        stored = {r["ts"] for r in records if r["station"] == "a"}  # junk may decompress into other stations
    if out.returncode == 2:
        assert recoverable == 0 and len(out.stderr.strip().splitlines()) == 1
    else:
        assert out.returncode == 0 and json.loads(out.stdout.strip().splitlines()[-1])["observations"] == len(records)
        expected = {time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + 60 * i))
                    for i in range(recoverable)}
        assert expected <= stored


@pytest.mark.parametrize("name, content, says", [
    ("book.xlsx", b"PK\x03\x04" + b"\x00" * 40, "zip archive (an Excel .xlsx workbook"),
    ("data.bin", b"\x00\x01\x02binary\x00", "binary data (NUL bytes)"),
    ("broken.gz", b"\x1f\x8b\x08\x00garbage", "the gzip data ends early after 0 bytes"),
])
def test_what_is_no_recording_is_refused_in_one_line(tmp_path, name, content, says):
    (tmp_path / name).write_bytes(content)
    out = mass(tmp_path, "replay", name, "--headless", "--data-dir", "d")
    assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_excel_unicode_text_utf16_tab_separated(tmp_path):
    f = tmp_path / "export.txt"
    f.write_bytes("time_utc\tstation\tair_temp_c\thumidity_pct\r\n2024-01-15T06:00:00Z\troof\t-3.2\t88\r\n"
                  "2024-01-15T07:00:00Z\troof\t-3.0\t87\r\n".encode("utf-16"))
    summary, stored, rejected, _ = replay(tmp_path, f)
    assert [(r["temp_c"], r["humidity_pct"]) for r in stored] == [(-3.2, 88.0), (-3.0, 87.0)] and rejected == []


def test_an_iem_download_in_local_time_is_read_in_the_zone_it_states(tmp_path):
    """IEM writes `#DEBUG: Time Zone -> America/Chicago` when asked for local times: 19:53 CDT is 00:53Z
    (before, the times were taken as UTC: 5 hours off)."""
    f = tmp_path / "asos.csv"
    f.write_text("#DEBUG: Format Typ    -> comma\n#DEBUG: Time Zone     -> America/Chicago\n"
                 "station,valid,tmpf,sknt\nMSP,2010-10-25 19:53,59.00,16.00\nMSP,2010-11-07 01:30,40.00,5.00\n")
    _, stored, _, _ = replay(tmp_path, f)
    assert [r["ts"] for r in stored] == ["2010-10-26T00:53:00Z", "2010-11-07T06:30:00Z"]  # CDT, then the 1st 01:30
    assert open_recording(f).tz == "America/Chicago"
    utc = tmp_path / "utc.csv"
    utc.write_text("#DEBUG: Time Zone     -> UTC\nstation,valid,tmpf\nMSP,2010-10-25 19:53,59\n")
    assert open_recording(utc).tz == "UTC"
    _, stored, _, _ = replay(tmp_path, utc, "--tz", "Europe/Paris", name="utc")  # the file's word wins
    assert stored[0]["ts"] == "2010-10-25T19:53:00Z"


def test_erddap_csv_units_row_is_read_as_units_not_a_bad_row(tmp_path):
    """ERDDAP's NDBC CSV: a units row under the header (before: rejected as a bad time), `bar` is the
    sea-level pressure (before: ignored), and a unit the row names is converted."""
    f = tmp_path / "erddap.csv"
    f.write_text("station,longitude,latitude,time,wd,wspd,gst,bar,atmp,wvht\n"
                 ",degrees_east,degrees_north,UTC,degrees_true,m s-1,knots,hPa,degree_F,m\n"
                 "41002,-74.936,31.759,2024-05-01T10:00:00Z,120,5.0,10.0,1016.5,84.2,0.6\n")
    summary, stored, rejected, _ = replay(tmp_path, f)
    assert rejected == [] and summary["observations"] == 1
    r = stored[0]
    assert (r["wind_dir_deg"], r["wind_mps"], r["pressure_msl_hpa"], r["wave_height_m"]) == (120.0, 5.0, 1016.5, 0.6)
    assert r["gust_mps"] == pytest.approx(5.14444) and r["temp_c"] == pytest.approx(29.0)
    assert (r["lat"], r["lon"]) == (31.759, -74.936)


def test_date_and_time_columns_are_one_time_and_empty_rows_are_blank(tmp_path):
    f = tmp_path / "logger.csv"
    f.write_bytes(b"\xef\xbb\xbfDate;Time;Station;Temp_C;;\r\n2024-01-15;06:00;roof;-3,2;;\r\n"
                  b"2024-01-15;07:00;roof;-3,0;;\r\n;;;;;\r\n")
    summary, stored, rejected, _ = replay(tmp_path, f)
    assert [(r["ts"], r["temp_c"]) for r in stored] == [("2024-01-15T06:00:00Z", -3.2), ("2024-01-15T07:00:00Z", -3.0)]
    assert rejected == [] and "Date" not in summary.get("ignored_fields", {})
    daily = tmp_path / "daily.csv"
    daily.write_text("Date,station,precip_mm\n2024-01-15,r,1.5\n2024-01-16,r,0\n")
    _, stored, _, _ = replay(tmp_path, daily, name="daily")
    assert [r["ts"] for r in stored] == ["2024-01-15T00:00:00Z", "2024-01-16T00:00:00Z"]


def test_iem_one_minute_asos_valid_utc_column(tmp_path):
    """IEM's one-minute ASOS CSV: `valid(UTC)` is the time (before: every row "missing ts"), gust_sknt knots."""
    f = tmp_path / "asos1min.csv"
    f.write_text("station,station_name,valid(UTC),tmpf,sknt,gust_sknt\nMSP,MINNEAPOLIS,2010-10-26 00:53,59,16,25\n")
    _, stored, rejected, _ = replay(tmp_path, f)
    assert rejected == [] and stored[0]["ts"] == "2010-10-26T00:53:00Z" and stored[0]["temp_c"] == 15.0
    assert stored[0]["gust_mps"] == pytest.approx(25 * 0.514444)


def test_a_header_without_a_time_column_says_which_names_it_looks_for(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("Zeit;Station;temp_c\n01.03.2024 10:00;H;3,5\n")
    _, _, rejected, _ = replay(tmp_path, f)
    assert rejected[0]["code"] == "missing_ts" and "no field or column named ts" in rejected[0]["reason"]


@pytest.mark.parametrize("encoding, sep", [("utf-8-sig", ";"), ("utf-16", "\t"), ("cp1252", ";")])
def test_mass_score_reads_semicolon_decimal_comma_utf16_and_cp1252(tmp_path, encoding, sep):
    """Before: a `;` export was "header ['timestamp;value']: expected columns timestamp and value"."""
    rows = [f"2024-01-01 00:{i:02d}:00{sep}{i % 5},5" if sep == ";" else f"2024-01-01 00:{i:02d}:00{sep}{i % 5}.5"
            for i in range(40)]
    f = tmp_path / "nab.csv"
    f.write_bytes(("timestamp" + sep + "value\r\n" + "\r\n".join(rows) + "\r\n").encode(encoding))
    out = mass(tmp_path, "score", "-i", str(f), "-o", "scored.csv")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert {k: summary[k] for k in ("output", "detector", "rows", "missing", "quarantined")} == {
        "output": "scored.csv", "detector": "ensemble", "rows": 40, "missing": 0, "quarantined": 0}


def test_converted_values_carry_no_conversion_noise(tmp_path):
    f = tmp_path / "asos.csv"
    f.write_text("station,valid,tmpf,dwpf,alti,gust\nMSP,2010-10-26 00:53,59.00,53.96,29.12,25.00\n")
    _, stored, _, _ = replay(tmp_path, f)
    r = stored[0]
    assert (r["temp_c"], r["dewpoint_c"], r["altimeter_hpa"], r["gust_mps"]) == (15.0, 12.2, 986.116768, 12.86110)


# --- property tests for the rules behind the cases ----------------------------------------------------

NUMERIC = ["temp_c", "dewpoint_c", "humidity_pct", "pressure_msl_hpa", "wind_mps", "gust_mps", "wind_dir_deg",
           "precip_mm", "water_temp_c", "wave_height_m"]
GOOD = {"temp_c": "12.5", "dewpoint_c": "3.1", "humidity_pct": "61", "pressure_msl_hpa": "1012.4",
        "wind_mps": "4.2", "gust_mps": "7.9", "wind_dir_deg": "220", "precip_mm": "0.2", "water_temp_c": "10.4",
        "wave_height_m": "1.3"}
MARKERS = ["", "M", "MM", "NA", "N/A", "NaN", "null", "-", " mm ", "nan", "NULL"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(MARKERS) | st.none(), min_size=len(NUMERIC), max_size=len(NUMERIC)),
                min_size=1, max_size=12),
       st.sets(st.sampled_from(NUMERIC), min_size=1))
def test_property_a_missing_marker_in_any_numeric_column_keeps_the_rows_other_values(grid, columns):
    """Cases 02 and 06: whatever numeric columns a file has and wherever its missing markers fall (None
    here: a real value), each row keeps exactly its real values; a row is rejected only when none is left,
    and never does a marker become a value or a quarantined field."""
    cols = sorted(columns)
    rows, expected = [], []
    for i, cells in enumerate(grid):
        chosen = dict(zip(NUMERIC, cells, strict=True))
        row = [f"2024-01-01T00:{i:02d}:00Z", "s"] + [GOOD[c] if chosen[c] is None else chosen[c] for c in cols]
        rows.append(row)
        expected.append({c: float(GOOD[c]) for c in cols if chosen[c] is None})
    out = Decoder().decode_table(Table(["ts", "station", *cols], rows, [b"r"] * len(rows)))
    assert out.fields == []
    kept = [e for e in expected if e]
    assert len(out.batch) == len(kept) and len(out.rejected) == len(expected) - len(kept)
    assert [out.batch.observation(k).values for k in range(len(out.batch))] == kept
    assert all(r.code == "no_values" for r in out.rejected)


INSTANTS = st.integers(int(1e9), int(4e9)).flatmap(
    lambda s: st.tuples(st.just(s), st.integers(0, 999_999)))


@settings(max_examples=300, deadline=None)
@given(INSTANTS, st.integers(-14 * 60, 14 * 60), st.sampled_from(["s", "ms", "us", "ns", "iso", "text"]))
def test_property_any_unit_or_offset_gives_the_same_instant(instant, offset_min, form):
    """Case 21 (and its variants): one instant written as epoch s, ms, µs or ns, as a numeric string, or
    as ISO 8601 with microseconds and any offset, decodes to that instant (to the unit's precision)."""
    from datetime import UTC, datetime, timedelta, timezone

    seconds, micros = instant
    exact = seconds + micros / 1e6
    if form == "iso":
        zone = timezone(timedelta(minutes=offset_min))
        value: object = datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros).astimezone(zone).isoformat()
        tolerance = 1e-6
    elif form == "text":
        value, tolerance = str(seconds * 1_000_000 + micros), 1e-6
    else:
        scale = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[form]
        value = (seconds * 1_000_000 + micros) * scale // 1_000_000
        tolerance = 1.0 / scale  # the unit's own precision (a double holds these instants to 0.5 µs)
    out = Decoder().decode([orjson.dumps({"timestamp": value, "station": "t", "temp_c": 1})])
    assert out.rejected == [], (value, out.rejected)
    assert abs(out.batch.ts[0] - exact) <= max(tolerance, 2e-6), (value, iso_utc(out.batch.ts[0]))


# Numbers are read as s, ms, µs or ns by magnitude, so only those beyond the span in ns are out of it whatever
# the unit: past 2100-01-01 or before 1900-01-01 even read as nanoseconds.
OUT_OF_SPAN = st.one_of(
    st.floats(min_value=LATEST * 1e9), st.floats(max_value=EARLIEST * 1e9 - 1e9),
    st.integers(min_value=int(LATEST * 1e9)), st.integers(max_value=int(EARLIEST * 1e9) - 10**9),
    st.integers(10000, 99999).map(lambda y: f"{y}-01-01T00:00:00Z"),
    st.integers(1, 1899).map(lambda y: f"{y:04d}-06-01T00:00:00+01:00"),
    st.integers(2100, 9999).map(lambda y: f"{y:04d}-12-31T23:59:59-05:00"),
    st.sampled_from(["1e20", "-1e20", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]),
)


@settings(max_examples=300, deadline=None)
@given(OUT_OF_SPAN)
def test_property_any_out_of_range_time_is_quarantined_with_a_reason_and_never_raises(bad):
    """The poison pills ts-out-of-range.jsonl and poison-pill-year10000.jsonl: any time outside the
    plausible span, as a number of any size or an ISO string of any year, is one quarantine record with
    a reason; the valid neighbours are stored; nothing raises, and what is stored can be written."""
    good = [{"ts": "2024-01-01T00:00:00Z", "station": "a", "temp_c": 10},
            {"ts": "2024-01-01T00:05:00Z", "station": "a", "temp_c": 12}]
    raws = [orjson.dumps(good[0]), json.dumps({"ts": bad, "station": "a", "temp_c": 11}).encode(),
            orjson.dumps(good[1])]
    out = Decoder().decode(raws)
    assert [out.batch.observation(i).values["temp_c"] for i in range(len(out.batch))] == [10.0, 12.0]
    assert len(out.rejected) == 1
    assert out.rejected[0].code in ("ts_out_of_range", "bad_ts") and "timestamp" in out.rejected[0].reason
    for i in range(len(out.batch)):
        iso_utc(out.batch.ts[i])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3000), st.sampled_from(["object", "list", "mixed"]), st.sampled_from(["tags", "fields"]))
def test_property_any_nesting_depth_never_raises(depth, shape, where):
    """nested-tags-recursion.jsonl: tags (or Telegraf fields) nested to any depth never raise; nested tags
    are quarantined with a reason; the line after is stored."""
    opener, closer = {"object": ('{"a":', "}"), "list": ("[", "]"), "mixed": ('{"a":[', "]}")}[shape]
    inner = opener * depth + "1" + closer * depth
    if where == "tags":
        line = '{"ts":"2024-01-01T00:00:00Z","station":"a","temp_c":10,"tags":{"k":' + inner + "}}"
    else:
        line = '{"ts":"2024-01-01T00:00:00Z","station":"a","fields":{"temp_c":10,"k":' + inner + "}}"
    after = b'{"ts":"2024-01-01T00:01:00Z","station":"a","temp_c":11}'
    out = Decoder().decode([line.encode(), after])
    assert len(out.batch) + len(out.rejected) == 2
    assert out.batch.observation(len(out.batch) - 1).values == {"temp_c": 11.0}
    if where == "tags" and depth:
        assert len(out.rejected) == 1 and out.rejected[0].reason


WEATHER_SOURCES = ["replay:desert.csv", "openweathermap", "open-meteo", "file", "ndbc", "replay:kphx.jsonl"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(30, 60), st.floats(0, 25)), min_size=4, max_size=16),
       st.sets(st.sampled_from(["pressure_msl_hpa", "wind_mps", "dewpoint_c", "gust_mps"])),
       st.sampled_from(WEATHER_SOURCES), st.text(min_size=1, max_size=12).filter(str.strip))
def test_property_desert_heat_never_fires_smoke_rules_off_a_smoke_sensor(readings, extra, source, station):
    """Case 18: any hot, dry spell (30-60 °C, 0-25 % RH) at a station that is not a smoke sensor (any
    name, any weather source, any other weather variables beside) gives no smoke-ladder or fire anomaly
    and no smoke or fire alert."""
    from mass_tui.alerts.service import AlertService

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, env={"MASS_DATA_DIR": tmp}, dotenv_file=None)
        alerts = AlertService.from_config(cfg)
        engine = Engine(cfg, None, alerts)
        values = {"pressure_msl_hpa": 1006.0, "wind_mps": 2.0, "dewpoint_c": 4.0, "gust_mps": 5.0}
        msgs = [orjson.dumps({"ts": 1_497_973_860 + 1800 * i, "station": station, "source": source,
                              "temp_c": t, "humidity_pct": h, **{k: values[k] for k in extra}})
                for i, (t, h) in enumerate(readings)]
        found, sent = [], []
        for m in msgs:
            result = engine.ingest([m])
            found.extend(result.anomalies)
            sent.extend(result.alerts)
        alerts.close(timeout=5.0)
    assert engine.counters.observations == len(readings)
    assert not [a for a in found if a.detector.startswith("bands") or a.detector == "fire"]
    assert not [e for e in sent if e.rule in ("smoke-levels", "fire")]


CONTAINERS = {"none": lambda b: b, "gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]), st.booleans(),
       st.sampled_from([",", ";", "\t"]), st.sampled_from(sorted(CONTAINERS)))
def test_property_encoding_bom_crlf_separator_and_compression_never_change_the_values(enc, crlf, sep, box):
    """Case 14 and its variants: however the same table is written (UTF-8 with or without a BOM, UTF-16,
    Windows-1252; CRLF; `,` `;` or tab with decimal commas after `;`; compressed or not), the same values
    are read."""
    def num(v: str) -> str:
        return v.replace(".", ",") if sep == ";" else v

    rows = [["time_utc", "station", "Temperature (°C)", "humidity_pct"],
            ["2024-01-15T06:00:00Z", "Hütte", num("-3.2"), "88"], ["2024-01-15T07:00:00Z", "Hütte", num("-3.0"), "87"]]
    end = "\r\n" if crlf else "\n"
    data = CONTAINERS[box]((end.join(sep.join(r) for r in rows) + end).encode(enc))
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "x.csv"
        f.write_bytes(data)
        recording = open_recording(f)
        out = Decoder().decode_table(next(recording.chunks()), default_station=recording.station)
    assert recording.format == "csv"
    assert [(out.batch.station[i], out.batch.observation(i).values) for i in range(len(out.batch))] == [
        ("Hütte", {"temp_c": -3.2, "humidity_pct": 88.0}), ("Hütte", {"temp_c": -3.0, "humidity_pct": 87.0})]


@settings(max_examples=300, deadline=None)
@given(st.floats(-1e12, 1e12, allow_nan=False))
def test_property_tidy_only_takes_off_conversion_noise(value):
    """Converted values are rounded to 12 significant digits: never further from the exact value than
    one part in 1e11, and a value with few digits comes back exactly."""
    out = float(tidy(np.array([value]))[0])
    assert abs(out - value) <= 1e-11 * abs(value) + 1e-300
    if abs(value) < 1e9:  # up to 11 significant digits
        short = round(value, 2)
        assert float(tidy(np.array([short]))[0]) == short


def test_cases_readme_lists_every_vendored_file():
    """Each case file is in its README and named by a test (here, or in the files named below)."""
    text = Path(__file__).read_text() + "".join(
        (Path(__file__).parent / name).read_text() for name in ("test_torn_and_full.py", "test_ui.py"))
    for folder in (INPUTS, RELIABILITY):
        names = sorted(p.name for p in folder.iterdir() if p.name != "README.md")
        readme = (folder / "README.md").read_text()
        for name in names:
            assert f"`{name}`" in readme, name
            assert name in text, f"{name} has no test naming it"
    assert os.path.isdir(CASES)
