"""A new user's mistakes at the command line: each ends in one line that says what was wrong (the flag,
the value, what is expected), never a traceback, and nothing is lost or silently overwritten."""

from __future__ import annotations

import csv
import json
import math
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, SANDY, wait_for
from .test_cli import mass
from .test_torn_and_full import _tmpfs


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The error of a failed command: no traceback, a single line (argparse's usage lines aside)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _nab(path: Path, n: int = 600, extra: dict[int, str] | None = None) -> list[str]:
    """A NAB CSV of a smooth 5-minute series with a spike to 40 at row 500; `extra` inserts raw rows
    before the given row numbers. Returns the data lines as written."""
    lines = []
    for i in range(n):
        if extra and i in extra:
            lines.append(extra[i])
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1577836800 + 300 * i))
        lines.append(f"{ts},{40.0 if i == 500 else 10 + math.sin(i / 10):.4f}")
    path.write_text("timestamp,value\n" + "\n".join(lines) + "\n")
    return lines


def _scores(path: Path) -> dict[str, str]:
    return {r["timestamp"]: r["anomaly_score"] for r in csv.DictReader(path.open())}


# --- mass score: bad rows are quarantined, the rest scored as without them ------------------------------
@pytest.mark.parametrize("bad,code", [("not-a-date,5", "bad_ts"), (",3", "missing_ts"),
                                      ("1800-01-01,3", "ts_out_of_range"),
                                      ("2020-01-01 12:00:00,1e308", "out_of_range"),
                                      ("2020-01-01 12:00:00,inf", "out_of_range"),
                                      ("2020-01-01 12:00:00,abc", "not_a_number")])
def test_score_quarantines_a_bad_row_and_scores_the_rest_as_without_it(tmp_path, bad, code):
    clean, dirty = tmp_path / "clean.csv", tmp_path / "dirty.csv"
    _nab(clean)
    _nab(dirty, extra={300: bad})
    assert mass("score", "-i", str(clean), "-o", str(tmp_path / "c.csv"), cwd=tmp_path).returncode == 0
    proc = mass("score", "-i", str(dirty), "-o", str(tmp_path / "d.csv"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    assert "1 of 601 rows quarantined" in proc.stderr and code in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["quarantined"] == 1 and summary["rejected_by_reason"] == {code: 1}
    rejected = [json.loads(ln) for ln in (tmp_path / "d.csv.rejected.jsonl").read_text().splitlines()]
    assert rejected == [{"line": 302, "raw": bad, "reason": rejected[0]["reason"], "code": code}]
    rows = list(csv.DictReader((tmp_path / "d.csv").open()))
    assert len(rows) == 601 and rows[300]["anomaly_score"] == ""  # kept, not scored
    # every other row scores exactly as in the file without the bad one: the spike at row 500 included
    want = _scores(tmp_path / "c.csv")
    got = {r["timestamp"]: r["anomaly_score"] for i, r in enumerate(rows) if i != 300}
    assert got == want
    assert float(want["2020-01-02 17:40:00"]) >= 0.5


def test_score_of_binary_or_a_directory_is_one_line(tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(1, 256)) * 50 + b"\xff\xfe\x00\x01")
    proc = mass("score", "-i", str(blob), "-o", str(tmp_path / "o.csv"), cwd=tmp_path)
    assert proc.returncode == 2 and len(_one_line(proc)) < 400
    (tmp_path / "adir").mkdir()
    proc = mass("score", "--input", "adir", "-o", "o.csv", cwd=tmp_path)
    assert proc.returncode == 2 and _one_line(proc) == "mass score: --input adir is a directory: expected a file"


@pytest.mark.parametrize("target,said", [("adir", "is a directory"), ("/dev/null", "is not a regular file"),
                                         ("nosuch.csv", "does not exist")])
def test_replay_says_what_the_path_is(tmp_path, target, said):
    (tmp_path / "adir").mkdir()
    proc = mass("replay", target, "--headless", cwd=tmp_path)
    assert proc.returncode == 2 and said in _one_line(proc)


# --- silences, acks and the alert state -------------------------------------------------------------------
def test_silence_duration_is_bounded_and_list_survives_any_stored_time(tmp_path):
    proc = mass("silence", "add", "station=x", "--for", "999999999d", cwd=tmp_path)
    assert proc.returncode == 2
    assert _one_line(proc) == ("mass silence: --for '999999999d': expected a duration longer than 0s and at "
                               "most 10y (e.g. 90m, 6h, 2d)")
    assert mass("silence", "add", "station=x", "--for", "2d", cwd=tmp_path).returncode == 0
    # a value written by an older mass (or by hand): far past the year 9999
    db = sqlite3.connect(tmp_path / "data" / "db" / "alert_state.sqlite3")
    db.execute("UPDATE silences SET ends_at = 8.6e16")
    db.commit()
    db.close()
    for fmt in ("table", "json"):
        proc = mass("silence", "list", "--format", fmt, cwd=tmp_path)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr and "8.6e+16 (not a time)" in proc.stdout
    sid = json.loads(mass("silence", "list", "--format", "json", cwd=tmp_path).stdout)[0]["id"]
    proc = mass("silence", "expire", sid[:8], cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"expired {sid}"


def test_read_commands_refuse_a_data_dir_that_does_not_exist(tmp_path):
    for argv in (["ack", "abcd1234"], ["silence", "list"], ["silence", "expire", "abcd"], ["alert", "list"],
                 ["query", "SELECT 1"], ["export", "-o", "x.csv", "--format", "csv"]):
        proc = mass(*argv, "--data-dir", "typo", cwd=tmp_path)
        assert proc.returncode == 1, (argv, proc.stderr)
        assert "data dir typo does not exist" in _one_line(proc)
    assert not (tmp_path / "typo").exists()


def test_ack_again_without_a_comment_keeps_the_comment(tmp_path):
    from mass_tui.alerts.state import AlertState, StoredEpisode

    with AlertState.in_dir(tmp_path / "data" / "db") as state:
        state.save([StoredEpisode("ep-0001", "s1", "gust", "firing", {"start": 1.0, "last": 2.0,
                                                                      "worst": [0, 0, 0, 0, 0, 0, 0, "gusty"]})],
                   [], [])
    assert mass("ack", "ep-0001", "--comment", "crane on the mast", "--by", "ann", cwd=tmp_path).returncode == 0
    assert mass("ack", "ep-0001", "--by", "bob", cwd=tmp_path).returncode == 0
    listed = json.loads(mass("alert", "list", "--format", "json", cwd=tmp_path).stdout)
    assert listed[0]["acked"]["by"] == "bob" and listed[0]["acked"]["comment"] == "crane on the mast"


def test_alert_state_on_a_read_only_disk_is_one_line_to_change_and_listed_as_it_is(tmp_path):
    db = tmp_path / "data" / "db"
    assert mass("silence", "add", "station=x", "--for", "1h", cwd=tmp_path).returncode == 0
    with _tmpfs(db) as disk:  # a fresh tmpfs over db/: an empty store, then read-only
        added = mass("silence", "add", "station=x", "--for", "1h", "--comment", "mast work", cwd=tmp_path)
        assert added.returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        try:
            for argv in (["silence", "add", "station=y", "--for", "1h"], ["ack", "abcd1234"]):
                proc = mass(*argv, cwd=tmp_path)
                assert proc.returncode == 1, (argv, proc.stderr)
                line = _one_line(proc)
                assert "alert_state.sqlite3" in line and "writable" in line, line
            # the commands that only list read the state as it is (a copy kept for inspection)
            proc = mass("silence", "list", "--format", "json", cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
            assert [s["comment"] for s in json.loads(proc.stdout)] == ["mast work"]
            proc = mass("alert", "list", "--format", "json", cwd=tmp_path)
            assert proc.returncode == 0 and json.loads(proc.stdout) == [], proc.stderr
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], capture_output=True)


def test_listing_the_alert_state_writes_nothing_and_reads_what_a_writer_has_not_checkpointed(tmp_path):
    """`silence list` and `alert list` open the state read-only: no state file is made where there
    is none, and a silence a running process added (still in SQLite's write-ahead log) is listed."""
    from mass_tui.alerts.matchers import parse_matchers
    from mass_tui.alerts.state import AlertState

    db = tmp_path / "data" / "db"
    db.mkdir(parents=True)
    for argv in (["silence", "list"], ["alert", "list"]):
        proc = mass(*argv, "--format", "json", cwd=tmp_path)
        assert proc.returncode == 0 and json.loads(proc.stdout) == [], proc.stderr
    assert not (db / "alert_state.sqlite3").exists()
    with AlertState.in_dir(db) as writer:  # open, as a running mass holds it
        writer.add_silence(parse_matchers(["station=x"]), 0.0, 3600.0, comment="held open")
        proc = mass("silence", "list", "--format", "json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert [s["comment"] for s in json.loads(proc.stdout)] == ["held open"]
    # mass stopped: a listing leaves no SQLite side file behind (a read-only connection would)
    assert mass("silence", "list", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in db.iterdir()) == ["alert_state.sqlite3"]


def test_a_write_ahead_log_that_cannot_be_read_is_said_and_what_is_not_a_state_is_one_line(tmp_path):
    """A copy of the state and its log without the -shm file, on a read-only disk: the checkpointed
    part is listed and a note says the log was not read. A directory or another file where the
    state should be: one line saying it cannot be read, not an empty list."""
    from mass_tui.alerts.matchers import parse_matchers
    from mass_tui.alerts.state import AlertState

    held = tmp_path / "held"
    with AlertState.in_dir(held) as writer:
        writer.add_silence(parse_matchers(["station=x"]), 0.0, 3600.0, comment="checkpointed")
        writer._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        writer.add_silence(parse_matchers(["station=y"]), 0.0, 3600.0, comment="in the log")
        copies = {name: (held / name).read_bytes() for name in ("alert_state.sqlite3", "alert_state.sqlite3-wal")}
    with _tmpfs(tmp_path / "data" / "db") as disk:
        for name, data in copies.items():
            (disk / name).write_bytes(data)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        try:
            proc = mass("silence", "list", "--format", "json", cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
            assert [s["comment"] for s in json.loads(proc.stdout)] == ["checkpointed"]
            assert "write-ahead log" in _one_line(proc) and "not listed" in _one_line(proc)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], capture_output=True)
    for make, said in ((lambda p: p.mkdir(), "not a file"), (lambda p: p.write_text("notes\n"), "not a database")):
        other = tmp_path / said.replace(" ", "-")
        (other / "data" / "db").mkdir(parents=True)
        make(other / "data" / "db" / "alert_state.sqlite3")
        for argv in (["silence", "list"], ["alert", "list"]):
            proc = mass(*argv, cwd=other)
            assert proc.returncode == 1, proc.stdout
            line = _one_line(proc)
            assert "cannot read the alert state" in line and said in line and "writable" not in line, line


# --- query and export -------------------------------------------------------------------------------------
@pytest.fixture
def stored(tmp_path):
    proc = mass("replay", str(SANDY), "--headless", "--max", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path


def test_query_and_export_mistakes_are_one_line_and_nothing_is_overwritten(stored):
    proc = mass("query", "", cwd=stored)
    assert proc.returncode == 2 and "empty SQL" in _one_line(proc)
    (stored / "adir").mkdir()
    proc = mass("export", "--format", "csv", "-o", "adir", cwd=stored)
    assert proc.returncode == 2 and "adir is a directory" in _one_line(proc)
    mine = stored / "observations.csv"
    mine.write_text("my own work\n")
    proc = mass("export", "--format", "csv", cwd=stored)
    assert proc.returncode == 2 and "--force" in _one_line(proc)
    assert mine.read_text() == "my own work\n"
    proc = mass("export", "--format", "csv", "-o", "-", cwd=stored)
    assert proc.returncode == 0 and proc.stdout.startswith("ts,station")
    rows = json.loads(proc.stderr.strip().splitlines()[-1])["rows"]
    assert rows == len(proc.stdout.splitlines()) - 1 > 100
    assert mass("export", "--format", "csv", "--force", cwd=stored).returncode == 0
    assert mine.read_text().startswith("ts,station")


# --- flags ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,said", [
    (["replay", str(SANDY), "--headless", "--speed", "nan"], "argument --speed: 'nan': expected a number from 0.01"),
    (["replay", str(SANDY), "--headless", "--speed", "1e-300"], "argument --speed: '1e-300'"),
    (["replay", str(SANDY), "--headless", "--from", "banana"], "argument --from: 'banana'"),
    (["run", "--headless", "--max-seconds", "nan"], "argument --max-seconds: 'nan': expected a number above 0"),
    (["run", "--headless", "--max-seconds", "-5"], "argument --max-seconds: '-5'"),
    (["run", "--headless", "--metrics-port", "99999"], "argument --metrics-port: '99999': expected an integer from 1"),
    (["run", "--headless", "--source", "simulator:nosuch"], "argument --source: 'simulator:nosuch': expected one of"),
    (["produce", "--max-seconds", "inf"], "argument --max-seconds: 'inf'"),
])
def test_bad_flags_are_usage_errors_naming_flag_and_value(tmp_path, argv, said):
    proc = mass(*argv, cwd=tmp_path, timeout=30)
    assert proc.returncode == 2 and said in _one_line(proc)
    assert not (tmp_path / "data").exists()  # refused before anything started


def test_replay_from_applies_headless(tmp_path):
    proc = mass("replay", str(SANDY), "--headless", "--speed", "1e7", "-q", "--from", "2012-10-30T00:00:00Z",
                cwd=tmp_path)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and not summary["interrupted"]
    whole = json.loads(mass("replay", str(SANDY), "--headless", "--max", "-q", "--data-dir", "d2",
                            cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert summary["observations"] == whole["observations"]  # the lead-in and the rest: every reading once


def test_config_mistakes_are_one_line_in_the_config_style(tmp_path):
    (tmp_path / "mass.toml").mkdir()
    proc = mass("config", cwd=tmp_path)
    assert proc.returncode == 78 and "mass.toml is a directory" in _one_line(proc)
    (tmp_path / "mass.toml").rmdir()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LOCATION_LAT": "10", "SMTP_PASS": "supersecret123"}
    proc = subprocess.run([sys.executable, "-m", "mass_tui", "config"], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 78
    assert _one_line(proc) == ("mass: configuration error: LOCATION_LON is not set (environment, with LOCATION_LAT "
                               "= '10'): expected a longitude in [-180, 180]; a station from the environment "
                               "needs both")
    env["LOCATION_LON"] = "20"
    proc = subprocess.run([sys.executable, "-m", "mass_tui", "config"], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout)["secrets"]["SMTP_PASS"] == "****"
    assert "su" not in json.loads(proc.stdout)["secrets"]["SMTP_PASS"]


def test_version(tmp_path):
    proc = mass("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("mass ")


# --- signals and the lock ---------------------------------------------------------------------------------
def _popen(tmp_path: Path, *argv: str) -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.Popen([sys.executable, "-m", "mass_tui", *argv], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_stops_cleanly_on_a_signal_from_its_first_moments(tmp_path, sig):
    """The handlers come first: a signal while modules load, the config is read or the store warms still
    ends in the summary and exit 0 (the interpreter's own start, ~0.1 s, is the only window left)."""
    for delay in (0.4, 0.8, 1.5):
        proc = _popen(tmp_path, "run", "--headless", "--max-seconds", "60")
        try:
            time.sleep(delay)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, (delay, err)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err
        assert "observations" in json.loads(out.strip().splitlines()[-1])


def test_second_run_is_refused_before_it_says_what_it_consumes(tmp_path):
    first = _popen(tmp_path, "run", "--headless", "--max-seconds", "60")
    try:
        log = tmp_path / "logs" / "mass.log"
        started = wait_for(lambda: first.poll() is not None
                           or (log.exists() and b"consumer started" in log.read_bytes()))
        assert started and first.poll() is None
        second = mass("run", "--headless", "--max-seconds", "5", cwd=tmp_path)
        assert second.returncode == 1
        assert "in use by another mass" in _one_line(second) and "consuming" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)


def test_produce_stopped_while_kafka_is_down_says_so(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_LOG_DIR": str(tmp_path / "logs"),
           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}  # nothing listens on port 1
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "produce", "--source", "simulator:smoke",
                             "--transport", "kafka"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(3.0)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1
    assert "stopped before the Kafka broker at 127.0.0.1:1 answered; nothing produced" in err
    assert "Traceback" not in err


def test_produce_max_seconds_stops_it(tmp_path):
    proc = mass("produce", "--source", "simulator:smoke", "--max-seconds", "2", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["produced"] > 0


def test_logs_go_where_the_data_dir_help_says(tmp_path):
    assert "logs go to MASS_LOG_DIR (default ./logs)" in " ".join(mass("run", "--help", cwd=tmp_path).stdout.split())
    mass("replay", str(SANDY), "--headless", "--max", "-q", "--data-dir", "elsewhere", cwd=tmp_path)
    assert (tmp_path / "logs" / "mass.log").exists() and not (tmp_path / "elsewhere" / "logs").exists()


def test_alert_test_without_a_channel_names_every_kind_of_channel(tmp_path):
    """Each channel mass can send through is named, so a user reading the line finds theirs (the
    CloudEvents sink and the exec channel were missing)."""
    proc = mass("alert", "test", cwd=tmp_path)
    assert proc.returncode == 2
    line = _one_line(proc)
    for setting in ("SMTP_HOST", "ALERT_EMAIL_TO", "SMS_", "SLACK_WEBHOOK_URL", "ALERT_WEBHOOK_URL", "CLOUDEVENTS_URL",
                    "exec_command"):
        assert setting in line, (setting, line)
