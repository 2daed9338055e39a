"""The `mass` entry point (mass_tui.entry): a headless replay ends without the interpreter's teardown,
and loses nothing by it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mass(tmp_path: Path, *args: str, sinks: str = "auto") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MASS_SINKS": sinks}
    return subprocess.run([sys.executable, "-m", "mass_tui", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_fast_exit_waits_for_a_running_non_daemon_thread():
    """A normal exit would join that thread: the fast exit must not cut it short, so it returns."""
    from mass_tui.entry import _exit_now

    release = threading.Event()
    worker = threading.Thread(target=release.wait, args=(60,))
    worker.start()
    try:
        _exit_now(3)  # would end this test process if it did not see the thread
    finally:
        release.set()
        worker.join(60)
    assert not worker.is_alive()


@pytest.mark.parametrize("sinks", ["inline", "process"])
def test_a_headless_replay_that_exits_fast_has_stored_and_said_everything(tmp_path, sinks):
    recording = tmp_path / "rec.jsonl"
    rows = 30_000
    with recording.open("w") as fh:
        for i in range(rows):
            fh.write(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": f"s{i % 3}", "temp_c": i % 17}) + "\n")
    done = _mass(tmp_path, "replay", str(recording), "--headless", "--max", "-q", "--data-dir", str(tmp_path / "d"),
                 sinks=sinks)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["observations"] == rows and summary["store_sinks"] == sinks
    db = tmp_path / "d" / "db"
    stream = (db / "consumer_stream.jsonl").read_bytes()
    assert stream.endswith(b"\n") and stream.count(b"\n") == rows
    aggregates = (db / "aggregates.jsonl").read_bytes()
    assert aggregates.endswith(b"\n") and b'"final":false' in aggregates  # the windows open at the end, too


def test_a_failing_headless_replay_keeps_its_exit_status_and_message(tmp_path):
    done = _mass(tmp_path, "replay", str(tmp_path / "missing.jsonl"), "--headless", "--max", "-q",
                 "--data-dir", str(tmp_path / "d"))
    assert done.returncode == 2
    assert "missing.jsonl does not exist" in done.stderr


def test_under_a_profiler_the_replay_exits_normally_so_the_profile_is_written(tmp_path):
    recording = tmp_path / "rec.jsonl"
    recording.write_text("".join(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "s", "temp_c": i % 7}) + "\n"
                                 for i in range(200)))
    profile = tmp_path / "replay.prof"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "mass_tui", "replay",
                           str(recording), "--headless", "--max", "-q", "--data-dir", str(tmp_path / "d")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert profile.stat().st_size > 0


@pytest.mark.parametrize("closed", [1, 2])
def test_a_headless_replay_with_stdout_or_stderr_closed_stores_everything_and_exits_0(tmp_path, closed):
    """Started with descriptor 1 or 2 closed (`>&-`, `2>&-`: sys.stdout or sys.stderr is None), the
    fast exit flushes what exists and carries on."""
    recording = tmp_path / "rec.jsonl"
    recording.write_text("".join(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "s", "temp_c": i % 7}) + "\n"
                                 for i in range(2_000)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(recording), "--headless", "--max", "-q",
                           "--data-dir", str(tmp_path / "d")], cwd=tmp_path, env=env, timeout=300,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.close(closed))
    assert done.returncode == 0
    assert (tmp_path / "d" / "db" / "consumer_stream.jsonl").read_bytes().count(b"\n") == 2_000


def test_a_replay_whose_stdout_reader_goes_away_stores_everything_quietly(tmp_path):
    """`mass replay ... | head -c 200`: once the pipe's reader is gone the events stop (stdout points
    at /dev/null) without a traceback per record; the replay stores everything and exits 0."""
    recording = tmp_path / "rec.jsonl"
    with recording.open("w") as fh:
        for i in range(30_000):
            spike = 15.0 if i % 500 == 499 else 0.0  # anomalies: events printed on stdout all along
            reading = {"ts": 1_700_000_000 + 60 * i, "station": "s", "temp_c": 10 + i % 7 / 10 + spike}
            fh.write(json.dumps(reading) + "\n")
    code, err = _replay_to_a_reader_that_leaves(tmp_path, recording, 200)
    assert code == 0, err
    assert "Traceback" not in err and "Logging error" not in err, err[:2000]
    stored = sum(p.read_bytes().count(b"\n") for p in (tmp_path / "d" / "db").glob("consumer_stream*.jsonl"))
    assert stored == 30_000


def test_a_summary_nobody_reads_any_more_does_not_fail_the_run(tmp_path):
    """-q: the summary is the only line; its reader is gone before it comes: exit 0, nothing on stderr."""
    recording = tmp_path / "rec.jsonl"
    recording.write_text("".join(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "s", "temp_c": i % 7}) + "\n"
                                 for i in range(2_000)))
    code, err = _replay_to_a_reader_that_leaves(tmp_path, recording, 0, "-q")
    assert code == 0 and err == "", err


def _replay_to_a_reader_that_leaves(tmp_path: Path, recording: Path, read: int, *flags: str) -> tuple[int, str]:
    """Replay with stdout a pipe whose reader takes `read` bytes, then closes it (as `| head -c` does):
    (exit status, stderr). The process is killed by its PID if it outlives the wait."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "replay", str(recording), "--headless", "--max",
                             *flags, "--data-dir", str(tmp_path / "d")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if read:
            assert proc.stdout.read(read)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.returncode, err


def test_numpy_under_mass_runs_openblas_on_one_thread_unless_told_otherwise(tmp_path):
    """`mass` sets OPENBLAS_NUM_THREADS=1 before numpy loads (no spinning BLAS thread beside the
    writer); a value the user gave is kept."""
    probe = ("import os, sys; from mass_tui.entry import one_blas_thread; one_blas_thread(); import numpy; "
             "print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir('/proc/self/task')))")
    for given, expected in ((None, "1"), ("2", "2")):
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"} | {"PYTHONPATH": str(ROOT)}
        if given is not None:
            env["OPENBLAS_NUM_THREADS"] = given
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        value, threads = out.stdout.split()
        assert value == expected, out.stderr
        if given is None:
            assert threads == "1"  # numpy loaded without an OpenBLAS thread beside the main one
