from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from mass_tui.config import load_config
from mass_tui.service import run_consumer, transport_path
from sources.file_transport import FileAppender, FileTail

from .conftest import ROOT, complete_lines, free_port, sigkill_when, sigterm_when


def _lines(n: int, start: int = 0, station: str = "s1") -> list[bytes]:
    return [json.dumps({"ts": 1_700_000_000 + 60 * i, "station": station, "temp_c": 10 + (i % 24) * 0.3,
                        "pressure_hpa": 1010 - (i % 50) * 0.01}).encode() for i in range(start, start + n)]


def test_the_consumer_makes_the_folder_it_says_it_reads_so_a_line_can_be_appended_at_once(tmp_path):
    """`mass run` says "consuming DATA_DIR/transport/observations.jsonl": appending there (a new-user check
    did `echo >> ...`) failed until the producer had made the folder."""
    path = tmp_path / "transport" / "observations.jsonl"
    tail = FileTail(path)
    assert tail.read() == []
    with path.open("ab") as fh:
        fh.write(b'{"a": 1}\n')
    assert tail.read() == [b'{"a": 1}']


def test_tail_waits_for_partial_lines_and_survives_truncation_and_rotation(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2')
    tail = FileTail(path)
    assert tail.read() == [b'{"a": 1}']
    with path.open("ab") as fh:
        fh.write(b'}\n')
    assert tail.read() == [b'{"a": 2}']
    tail.commit()
    # A restart resumes after the committed position.
    again = FileTail(path)
    assert again.read() == []
    path.write_bytes(b'{"b": 1}\n')  # truncated and rewritten
    assert again.read() == [b'{"b": 1}']
    os.rename(path, tmp_path / "t.jsonl.1")  # rotated away, a new file takes the name
    path.write_bytes(b'{"c": 1}\n')
    assert again.read() == [b'{"c": 1}']
    again.close()
    tail.close()


def _config(tmp_path: Path, **env: str):
    return load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs"),
                                  **env}, dotenv_file=None)


def _stored(tmp_path: Path) -> list[dict]:
    db = tmp_path / "data" / "db"
    out = []
    for p in sorted(db.glob("consumer_stream*.jsonl")):
        out += [json.loads(x) for x in complete_lines(p)]  # read while the consumer writes
    return out


def test_consumer_stores_what_the_producer_appends_and_serves_metrics(tmp_path):
    cfg = _config(tmp_path)
    appender = FileAppender(transport_path(cfg))
    appender.append(_lines(500))
    appender.append([b"not json", b'{"ts": 1, "station": "s1", "temp_c": 900}'])
    port = free_port()
    stop = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.update(run_consumer(cfg, metrics_port=port, stop=stop,
                                                                        idle_wait=0.05)))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(_stored(tmp_path)) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        appender.append(_lines(100, start=500))
        while len(_stored(tmp_path)) < 600 and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        stop.set()
        thread.join(20)
        appender.close()
    assert len(_stored(tmp_path)) == 600
    assert result["observations"] == 600 and result["rejected"] == 2
    assert "mass_observations_total 600.0" in metrics
    assert "mass_rejected_total 2.0" in metrics
    assert "mass_processing_seconds_bucket" in metrics and "mass_consumer_lag_bytes" in metrics


def _run(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
           "MASS_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.Popen([sys.executable, "-m", "mass_tui", "run", "--headless", "-q", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _offset(position: Path) -> int:
    """The committed offset in a position file (0 while it is absent or being replaced)."""
    try:
        return json.loads(position.read_text())["offset"]
    except (OSError, ValueError, KeyError):
        return 0


def test_sigkill_mid_stream_loses_nothing_and_restart_is_warm(tmp_path):
    cfg = _config(tmp_path)
    n = 60_000
    appender = FileAppender(transport_path(cfg))
    appender.append(_lines(n))
    appender.close()
    position = transport_path(cfg).with_suffix(".position")
    proc = _run(tmp_path, "--max-seconds", "60")
    sigkill_when(proc, lambda: position.exists() and json.loads(position.read_text())["offset"] > 0)
    before = len(_stored(tmp_path))
    assert 0 < before < n, "killed mid-stream"
    proc = _run(tmp_path, "--max-seconds", "15")
    # --max-seconds 15 is only the window: a clean stop (SIGTERM) once the position has reached the end of
    # the transport (everything read was stored first) ends the run as the window would.
    _, out, err = sigterm_when(proc, lambda: _offset(position) == transport_path(cfg).stat().st_size, 30)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    stored = _stored(tmp_path)
    stamps = [r["ts"] for r in stored]
    assert len(set(stamps)) == n == len(stamps)  # every message stored, once (a re-read batch is duplicates)
    assert summary["warmed"] > 0  # the detectors started from stored history, not cold


def test_sigterm_stops_cleanly_with_everything_read_stored(tmp_path):
    cfg = _config(tmp_path)
    appender = FileAppender(transport_path(cfg))
    appender.append(_lines(2000))
    proc = _run(tmp_path)
    deadline = time.monotonic() + 30
    while len(_stored(tmp_path)) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    appender.close()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["observations"] == 2000 == len(_stored(tmp_path))
    offset = json.loads(transport_path(cfg).with_suffix(".position").read_text())["offset"]
    assert offset == transport_path(cfg).stat().st_size
    assert (tmp_path / "logs" / "mass.log").read_text().count("consumer started") == 1


def test_tail_drains_sealed_files_in_order_across_restarts_and_deletes_them(tmp_path):
    """The producer seals the file at a size; a consumer that was down reads every sealed file,
    in order, resumes inside one after a restart, and removes each once committed past it."""
    path = tmp_path / "observations.jsonl"
    appender = FileAppender(path, max_bytes=400)
    sent = _lines(60)
    for i in range(0, 60, 3):
        appender.append(sent[i : i + 3])
    sealed = sorted(p.name for p in tmp_path.glob("observations.jsonl.*"))
    assert len(sealed) >= 5
    tail = FileTail(path)
    got = tail.read(max_lines=7)
    tail.commit()
    tail.close()
    again = FileTail(path)  # a restart inside the first sealed file
    while len(got) < 60:
        batch = again.read(max_lines=5)
        assert batch, f"stalled after {len(got)} lines"
        got += batch
        again.commit()
    assert got == sent
    assert again.read() == []  # drained: the tail moves on to the live file
    again.commit()
    assert not list(tmp_path.glob("observations.jsonl.*"))  # all sealed files consumed and deleted
    appender.append(_lines(2, start=60))  # the live file goes on
    assert again.read() == _lines(2, start=60) and again.lag_bytes() == 0
    again.close()
    appender.close()


def test_consumer_waits_for_an_absent_kafka_broker_without_crashing(tmp_path):
    cfg = _config(tmp_path, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    summary = run_consumer(cfg, transport="kafka", max_seconds=2.0, idle_wait=0.05)
    assert summary["observations"] == 0
    assert "does not answer" in summary["transport_error"]
    log = (tmp_path / "logs" / "mass.log").read_text() if (tmp_path / "logs" / "mass.log").exists() else ""
    assert "Traceback" not in log
