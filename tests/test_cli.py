from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys

import pytest

from .conftest import ROOT, SANDY


def mass(*args: str, cwd, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mass_tui", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def _summary(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_score_writes_one_row_per_input_row_in_order(tmp_path, shared):
    src = shared / "sensors" / "nab_machine_temperature_system_failure.csv"
    out = tmp_path / "scored.csv"
    proc = mass("score", "--input", str(src), "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows_in = list(csv.DictReader(src.open()))
    rows_out = list(csv.DictReader(out.open()))
    assert len(rows_out) == len(rows_in)
    assert [r["timestamp"] for r in rows_out] == [r["timestamp"] for r in rows_in]
    assert [r["value"] for r in rows_out] == [r["value"] for r in rows_in]
    scores = [float(r["anomaly_score"]) for r in rows_out]
    assert all(0.0 <= s < 1.0 for s in scores)
    # NAB's catastrophic failure (2014-02-08/09 window) scores at the alarm level.
    window = [
        s for r, s in zip(rows_out, scores, strict=True) if "2014-02-07 14:55" <= r["timestamp"] <= "2014-02-09 14:05"
    ]
    assert max(window) >= 0.5


def test_score_keeps_rows_with_bad_values_and_each_detector_works(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(
        "timestamp,value\n"
        + "".join(f"2020-01-01 00:{i:02d}:00,{i % 7}\n" for i in range(50))
        + "2020-01-01 00:50:00,oops\n2020-01-01 00:51:00,\n2020-01-01 00:52:00,3\n"
    )
    for det in ("ensemble", "zscore", "ewma", "cusum"):
        out = tmp_path / f"{det}.csv"
        assert mass("score", "-i", str(src), "-o", str(out), "--detector", det, cwd=tmp_path).returncode == 0
        rows = list(csv.DictReader(out.open()))
        assert len(rows) == 53
        assert rows[50]["anomaly_score"] == "" and rows[51]["anomaly_score"] == ""
        assert rows[52]["anomaly_score"] != ""


def test_score_rejects_a_file_without_the_nab_header(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("time,reading\n1,2\n")
    proc = mass("score", "-i", str(src), "-o", str(tmp_path / "o.csv"), cwd=tmp_path)
    assert proc.returncode == 2 and "timestamp" in proc.stderr


def test_score_quarantines_a_row_of_another_width_as_replay_does(tmp_path):
    """A new-user check found `2013-07-06 07:00:00,1,2` scored as 1, the extra cell dropped unsaid."""
    src = tmp_path / "in.csv"
    src.write_text("timestamp,value\n" + "".join(f"2014-01-01 {h:02d}:00:00,{h}\n" for h in range(10))
                   + "2014-01-01 10:00:00,1,2\n2014-01-01 11:00:00\n")
    proc = mass("score", "-i", str(src), "-o", str(tmp_path / "o.csv"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 12 and summary["rejected_by_reason"] == {"malformed_row": 2}
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert len(rows) == 12 and rows[10]["anomaly_score"] == "" and rows[11]["anomaly_score"] == ""
    rejected = [json.loads(x) for x in (tmp_path / "o.csv.rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejected] == [12, 13]
    assert rejected[0]["reason"] == "CSV row has 3 cells for 2 columns"


def test_score_says_so_when_the_output_has_no_folder_or_is_the_input(tmp_path):
    src = tmp_path / "in.csv"
    text = "timestamp,value\n2014-01-01 00:00:00,1.5\n2014-01-01 00:05:00,1.6\n"
    src.write_text(text)
    proc = mass("score", "-i", str(src), "-o", str(tmp_path / "missing" / "o.csv"), cwd=tmp_path)
    assert proc.returncode == 2 and "no directory" in proc.stderr and "Traceback" not in proc.stderr
    proc = mass("score", "-i", str(src), "-o", "./in.csv", cwd=tmp_path)
    assert proc.returncode == 2 and "is the input" in proc.stderr
    assert src.read_text() == text  # the readings are still there


def test_replay_jsonl_quarantines_each_malformed_line_once(tmp_path):
    good = [
        {"ts": f"2024-01-01T{h:02d}:00:00Z", "station": "s1", "temp_c": 10 + (h % 3), "pressure_hpa": 1010 - h * 0.1}
        for h in range(20)
    ]
    bad = [
        b"{broken",
        b'["list"]',
        b'{"station": "s1", "temp_c": 1}',
        b'{"ts": 5, "station": "s1", "temp_c": 900}',
        b'{"ts": 5, "station": "s1", "temp_c": "hot"}',
    ]
    lines = [json.dumps(g).encode() for g in good[:10]] + bad + [json.dumps(g).encode() for g in good[10:]]
    src = tmp_path / "rec.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n\n")
    summary = _summary(mass("replay", str(src), "--headless", "--max", "--data-dir", str(tmp_path / "d"), cwd=tmp_path))
    assert summary["observations"] == 20 and summary["rejected"] == 5
    db = tmp_path / "d" / "db"
    rejected = [json.loads(x) for x in (db / "rejected.jsonl").read_text().splitlines()]
    assert [r["raw"].encode() for r in rejected] == bad
    assert all(r["reason"] and r["received_at"] for r in rejected)
    stream = [json.loads(x) for x in (db / "consumer_stream.jsonl").read_text().splitlines()]
    assert len(stream) == 20 and all("anomaly_score" in s and "temp_c" in s["anomaly_score"] for s in stream)


def test_replay_of_the_storm_flags_pressure_fall_and_gusts(tmp_path):
    proc = mass("replay", str(SANDY), "--headless", "--max", "--station", "ndbc-44005", cwd=tmp_path)
    summary = _summary(proc)
    assert summary["observations"] == 762 and summary["rejected"] == 0
    anomalies = [json.loads(x) for x in (tmp_path / "data" / "db" / "anomalies.jsonl").read_text().splitlines()]
    assert summary["anomalies"] == len(anomalies)
    gusts = [a for a in anomalies if a["detector"] == "gust_limit"]
    assert any(a["ts"] == "2012-11-08T07:50:00Z" and a["value"] == 22.8 for a in gusts)
    falls = [a for a in anomalies if a["detector"] == "pressure_tendency"]
    athena = [a for a in falls if "2012-11-07T15" <= a["ts"] <= "2012-11-07T18"]
    assert any(a["reason"] == "pressure fell 4.5 hPa in 3 h" for a in athena), athena


def test_replay_csv_with_stations_and_seed_jsonl(tmp_path, shared):
    summary = _summary(
        mass(
            "replay",
            str(shared / "weather" / "asos_midwest_cyclone_2010-10.csv"),
            "--headless",
            "--max",
            "-q",
            cwd=tmp_path,
        )
    )
    # Three rows of the recording repeat another row exactly: stored once, counted as duplicates.
    assert summary["stations"] == 5 and summary["observations"] == 899 and summary["duplicates"] == 3
    seed = tmp_path / "seed.jsonl"
    seed.write_text(
        "\n".join(
            json.dumps(
                {
                    "ts_iso": f"2025-03-01T{h:02d}:00:00Z",
                    "provider": "open-meteo",
                    "lat": 40.7,
                    "lon": -74.0,
                    "temp_c": 5.0 + h * 0.2,
                    "pressure_hpa": 1015.0,
                    "humidity_pct": 60,
                    "wind_mps": 3.0,
                    "gust_mps": 6.0,
                }
            )
            for h in range(24)
        )
    )
    summary = _summary(mass("replay", str(seed), "--headless", "--max", "-q", "--data-dir", "seed", cwd=tmp_path))
    assert summary["observations"] == 24 and summary["rejected"] == 0


def test_config_command_masks_secrets_and_bad_config_exits_78(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mass_tui", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "SMTP_PASS": "supersecretpassword", "Z_THRESHOLD": "2"},
    )
    assert proc.returncode == 0
    assert "supersecretpassword" not in proc.stdout and json.loads(proc.stdout)["detectors"]["z"] == 2.0
    proc = subprocess.run(
        [sys.executable, "-m", "mass_tui", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "Z_THRESHOLD": "-1"},
    )
    assert proc.returncode == 78 and "detectors.z = '-1'" in proc.stderr  # EX_CONFIG


def test_core_imports_without_textual():
    code = (
        "import sys, detectors.bank, sources.schema, mass_tui.engine; "
        "bad = [m for m in ('textual', 'plotext') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_replay_without_alerts_imports_neither_the_alert_stack_nor_the_transports(tmp_path):
    """Start-up is part of a replay's time: the alert service (email, HTTP channels) and the live
    transports are imported only by the runs that use them. With alerts on, the service is there."""
    src = tmp_path / "rec.jsonl"
    src.write_text("\n".join(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "s", "temp_c": 10 + i % 5})
                             for i in range(50)))
    code = ("import sys; from mass_tui.cli import main; status = main(sys.argv[1:]); "
            "print(sorted(m for m in ('mass_tui.alerts.service', 'mass_tui.pipeline', 'sources.http_sources') "
            "if m in sys.modules))")
    for extra, expected in (([], "[]"), (["--alerts"], "['mass_tui.alerts.service']")):
        out = subprocess.run([sys.executable, "-c", code, "replay", str(src), "--headless", "--max", "-q",
                              "--data-dir", str(tmp_path / f"data{len(extra)}"), *extra],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == expected


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_paced_replay_stores_everything_read_whole_and_exits_128_plus_it(tmp_path, sig, status):
    """SIGTERM or SIGINT ends the replay between two batches: the summary says interrupted, every line
    read is stored whole, and the exit status is the shell's 128 + the signal (143, 130)."""
    import time

    src = tmp_path / "rec.jsonl"
    src.write_text("\n".join(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "s", "temp_c": 10 + i % 5})
                             for i in range(5000)))
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "replay", str(src), "--headless", "--speed", "6000",
                             "-q"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    stream = tmp_path / "data" / "db" / "consumer_stream.jsonl"
    deadline = time.monotonic() + 30
    while (not stream.exists() or stream.stat().st_size < 2000) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    summary = json.loads(out.strip().splitlines()[-1])
    stored = [json.loads(x) for x in stream.read_text().splitlines()]  # every line whole
    assert summary["interrupted"] and 0 < summary["observations"] == len(stored) < 5000
    assert [r["temp_c"] for r in stored] == [10 + i % 5 for i in range(len(stored))]


def test_replay_csv_keeps_a_quoted_newline_in_one_record_and_quarantines_a_stray_quote(tmp_path):
    src = tmp_path / "notes.csv"
    src.write_text('ts,station,temp_c,note\n'
                   '2024-01-01T00:00:00Z,a,1.5,"sensor moved\nto the roof"\n'
                   '2024-01-01T01:00:00Z,a,2.5,plain\n'
                   '2024-01-01T02:00:00Z,a,3.5,"never closed\n'
                   '2024-01-01T03:00:00Z,a,4.5,ok\n')
    summary = _summary(mass("replay", str(src), "--headless", "--max", cwd=tmp_path))
    assert summary["observations"] == 3 and summary["rejected"] == 1
    stored = [json.loads(x) for x in (tmp_path / "data" / "db" / "consumer_stream.jsonl").read_text().splitlines()]
    assert [r["temp_c"] for r in stored] == [1.5, 2.5, 4.5]
    (rejected,) = [json.loads(x) for x in (tmp_path / "data" / "db" / "rejected.jsonl").read_text().splitlines()]
    assert rejected["reason"] == "CSV quote not closed at the end of the file"
    assert rejected["raw"].startswith("2024-01-01T02:00:00Z,a,3.5,")


def test_csv_records_after_a_stray_quote_are_each_read_again():
    from mass_tui.replay import csv_records as _csv_records

    lines = ['a,"stray\n', *(f"row{i},1\n" for i in range(6)), 'q,"two\n', 'lines"\n']
    got = list(_csv_records(lines, max_lines=3))
    assert got[0] == ('a,"stray\n', "CSV quote not closed within 3 lines")
    assert got[1:7] == [(f"row{i},1\n", "") for i in range(6)]
    assert got[7:] == [('q,"two\nlines"\n', "")]
    assert list(_csv_records(['x,"open\n', "y,2\n"])) == [('x,"open\n', "CSV quote not closed at the end of the file"),
                                                        ("y,2\n", "")]
