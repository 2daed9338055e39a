"""The store's sinks in a writer process (`mass_tui.sinks.offload`): same bytes, failures said, no orphan."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.sinks import offload
from mass_tui.sinks.offload import OffloadedSinks
from sources.batch import ObservationBatch
from tests.conftest import wait_for
from tests.test_torn_and_full import _fill, _tmpfs

ROOT = Path(__file__).resolve().parents[1]


def _recording(path: Path, n: int, seed: int = 0, bad_every: int = 0) -> Path:
    """n JSONL readings of 4 stations (tags on two), a bad line every `bad_every` lines."""
    rng = np.random.default_rng(seed)
    with path.open("w") as fh:
        for i in range(n):
            if bad_every and i % bad_every == bad_every - 1:
                fh.write(["{not json", '{"ts": 1, "station": "x"}', '{"ts": "yesterday", "station": "s0", "temp_c": 1}',
                          '[1, 2]'][i // bad_every % 4] + "\n")
                continue
            obj = {"ts": 1_700_000_000 + 300 * (i // 4), "station": f"s{i % 4}",
                   "temp_c": round(10 + 5 * np.sin(i / 300) + rng.normal(0, 0.3), 2),
                   "pressure_hpa": round(1010 + rng.normal(0, 0.2), 2),
                   "precip_mm": float(rng.random() < 0.1)}
            if i % 4 < 2:
                obj["tags"] = {"building": "b1", "floor": str(i % 2)}
            if i % 997 == 0:
                obj["temp_c"] = 60.0  # a spike: anomalies to store
            fh.write(json.dumps(obj) + "\n")
    return path


def _replay(tmp_path: Path, recording: Path, name: str, sinks: str, *extra: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
           "MASS_LOG_DIR": str(tmp_path / f"logs-{name}")}
    env["MASS_SINKS"] = sinks
    return subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(recording), "--headless", "--max", "-q",
                           "--data-dir", str(tmp_path / name), *extra],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)


def _files(db: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(db.glob("*.jsonl")):
        data = p.read_bytes()
        if p.name.startswith("rejected"):  # each record has the time it was quarantined: drop that
            data = b"".join(json.dumps({k: v for k, v in json.loads(x).items() if k != "received_at"}).encode() + b"\n"
                            for x in data.splitlines())
        out[p.name] = data
    return out


@pytest.mark.parametrize("sinks", ["process", "split"])
def test_a_replay_stores_the_same_bytes_with_the_writer_process_as_without(tmp_path, sinks):
    recording = _recording(tmp_path / "rec.jsonl", 6000, bad_every=250)
    offloaded = _replay(tmp_path, recording, "a", sinks)
    inline = _replay(tmp_path, recording, "b", "inline")
    assert offloaded.returncode == 0, offloaded.stderr
    assert inline.returncode == 0, inline.stderr
    a, b = _files(tmp_path / "a" / "db"), _files(tmp_path / "b" / "db")
    assert set(a) >= {"consumer_stream.jsonl", "aggregates.jsonl", "anomalies.jsonl", "rejected.jsonl"}
    assert a == b
    summary_a, summary_b = (json.loads(p.stdout.strip().splitlines()[-1]) for p in (offloaded, inline))
    assert (summary_a.pop("store_sinks"), summary_b.pop("store_sinks")) == (sinks, "inline")
    for s in (summary_a, summary_b):
        for key in ("seconds", "obs_per_s", "db"):
            s.pop(key)
    assert summary_a == summary_b
    assert summary_a["aggregates"]["records"] > 0 and summary_a["anomalies"] > 0 and summary_a["rejected"] == 24


def test_a_full_disk_in_the_writer_is_one_line_and_exit_1(tmp_path):
    recording = _recording(tmp_path / "rec.jsonl", 40_000)
    db = tmp_path / "full" / "db"
    with _tmpfs(db, "2m"):
        _fill(db, 200_000)
        done = _replay(tmp_path, recording, "full", "process")
    assert done.returncode == 1, done.stderr
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert any(x.startswith("mass: cannot write ") and "No space left on device" in x for x in lines), done.stderr
    assert "Traceback" not in done.stderr


def _batch(n: int, start: float = 1_700_000_000.0) -> ObservationBatch:
    ts = start + 60.0 * np.arange(n)
    return ObservationBatch(ts=ts, station=["s1"] * n, source=["test"] * n,
                            columns={"temp_c": 10 + np.sin(np.arange(n) / 10.0)})


def _config(tmp_path: Path):
    return load_config(config_file=None, overrides={"data.dir": str(tmp_path / "data")})


def test_what_crosses_to_the_writer_unpickles_without_the_engine(tmp_path):
    """The writer process starts at every bulk replay: a scored batch with its anomalies must not
    drag the engine (its detectors, alerts and decoders: ~0.1 s of a core) into it."""
    engine = Engine(_config(tmp_path))
    batch = _batch(600)
    batch.columns["temp_c"][300] = 80.0  # an anomaly, so one crosses too
    scored = engine.process_batch(batch)
    assert scored.anomalies
    import pickle

    data = pickle.dumps(("write", scored), protocol=5)
    code = ("import pickle, sys; pickle.loads(sys.stdin.buffer.read()); "
            "print(sorted(m for m in sys.modules if m.startswith(('mass_tui', 'detectors', 'sources', 'polars'))))")
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True, cwd=ROOT)
    loaded = out.stdout.decode()
    assert "mass_tui.scored" in loaded
    for heavy in ("mass_tui.engine", "polars", "mass_tui.alerts", "sources.decode", "detectors.bank"):
        assert f"'{heavy}" not in loaded, (heavy, loaded)


def test_a_writer_that_dies_is_said_at_the_next_call_with_its_exit_code(tmp_path):
    writer = OffloadedSinks(_config(tmp_path))
    engine = Engine(_config(tmp_path), store_sink=writer)
    try:
        engine.process_batch(_batch(100))
        writer.sync()
        os.kill(writer.pid, signal.SIGKILL)
        writer.process.join(30)
        with pytest.raises(RuntimeError, match=r"ended unexpectedly with exit code -9"):
            for k in range(50):  # the pipe may take a write or two before it reports the writer gone
                engine.process_batch(_batch(10, 1_800_000_000.0 + 600 * k))
                writer.sync()
    finally:
        writer.process.kill()
        writer.process.join(10)


def test_the_writer_keeps_what_it_was_sent_when_the_engine_process_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        import numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from mass_tui.config import load_config
        from mass_tui.engine import Engine
        from mass_tui.sinks.offload import OffloadedSinks
        from sources.batch import ObservationBatch
        cfg = load_config(config_file=None, overrides={{"data.dir": {str(tmp_path / "data")!r}}})
        writer = OffloadedSinks(cfg)
        engine = Engine(cfg, store_sink=writer)
        for k in range(5):
            ts = 1_700_000_000.0 + 60.0 * np.arange(k * 200, (k + 1) * 200)
            engine.process_batch(ObservationBatch(ts=ts, station=["s1"] * 200, source=["t"] * 200,
                                                  columns={{"temp_c": np.full(200, 10.0 + k)}}))
        print(writer.pid, flush=True)
        os.kill(os.getpid(), 9)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    pid = int(done.stdout.strip())
    stream = tmp_path / "data" / "db" / "consumer_stream.jsonl"
    try:
        assert wait_for(lambda: _gone(pid), 60), "the writer outlived the engine's process"
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
    lines = stream.read_bytes().splitlines()
    assert len(lines) == 1000
    assert [json.loads(x)["temp_c"] for x in lines[::200]] == [10.0, 11.0, 12.0, 13.0, 14.0]


def _gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


@settings(max_examples=5, deadline=None)
@given(sizes=st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_property_any_batches_are_stored_whole_and_in_order_by_the_writer(tmp_path_factory, sizes):
    tmp_path = tmp_path_factory.mktemp("w")
    writer = OffloadedSinks(_config(tmp_path))
    engine = Engine(_config(tmp_path), store_sink=writer)
    start = 0
    try:
        for n in sizes:
            engine.process_batch(_batch(n, 1_700_000_000.0 + 60.0 * start))
            start += n
        engine.sinks.sync()
    finally:
        engine.sinks.close()
    lines = (tmp_path / "data" / "db" / "consumer_stream.jsonl").read_bytes().splitlines()
    assert len(lines) == sum(sizes)
    times = [json.loads(x)["ts"] for x in lines]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert writer.process.exitcode == 0


def test_a_bad_mass_sinks_value_names_the_variable_and_what_was_expected(tmp_path):
    recording = _recording(tmp_path / "rec.jsonl", 10)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "MASS_SINKS": "sometimes",
           "MASS_LOG_DIR": str(tmp_path / "logs")}
    done = subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(recording), "--headless", "--max", "-q",
                           "--data-dir", str(tmp_path / "d")], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 78
    assert "MASS_SINKS='sometimes': expected auto, inline, process or split" in done.stderr


@pytest.mark.parametrize("env, cpus, size, expected", [
    (None, 2, offload.MIN_BYTES, offload.AUTO),  # the default with two CPUs: writer processes
    (None, 1, offload.MIN_BYTES, "inline"),  # one CPU: nothing runs beside the engine
    ("auto", 4, offload.MIN_BYTES - 1, "inline"),  # a small file: a writer's start costs more
    ("inline", 8, 1 << 30, "inline"),
    ("process", 1, 10, "process"),  # asked for: whatever the CPUs and the size
    ("split", 1, 10, "split"),
    (" Process ", 2, offload.MIN_BYTES, "process"),
])
def test_where_the_store_sinks_write_follows_mass_sinks_the_cpus_and_the_size(monkeypatch, env, cpus, size,
                                                                                expected):
    if env is None:
        monkeypatch.delenv(offload.ENV, raising=False)
    else:
        monkeypatch.setenv(offload.ENV, env)
    monkeypatch.setattr(offload, "usable_cpus", lambda: cpus)
    assert offload.arrangement(size) == expected


def test_usable_cpus_counts_this_process_affinity():
    assert 1 <= offload.usable_cpus() <= (os.cpu_count() or 1)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
@pytest.mark.parametrize("tunables", [None, "glibc.malloc.hugetlb=1"])
def test_a_bulk_replay_and_its_writer_run_with_the_users_malloc_tunables_and_no_others(tmp_path, tunables):
    """Huge pages for malloc are the user's choice (README): a replay and its writer start with the
    GLIBC_TUNABLES the user gave, and without one when none was given (two rounds restarted both on
    huge pages, which ran every layout slower on a VM where they cost system time)."""
    recording = _recording(tmp_path / "rec.jsonl", 150_000)
    proc = _replay_process(tmp_path, recording, "d", **({} if tunables is None else {"GLIBC_TUNABLES": tunables}))
    seen: dict[str, list[bytes]] = {}
    try:
        def look() -> bool:
            for name, pid in (("replay", proc.pid), *(("writer", p) for p in _writers(proc.pid)[:1])):
                with contextlib.suppress(OSError):  # the writer ended meanwhile
                    seen[name] = [v for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                                  if v.startswith(b"GLIBC_TUNABLES=")]
            return "writer" in seen or proc.poll() is not None
        assert wait_for(look, 60)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    expected = [] if tunables is None else [f"GLIBC_TUNABLES={tunables}".encode()]
    assert seen == {"replay": expected, "writer": expected}


def _replay_process(tmp_path: Path, recording: Path, data: str, **env: str) -> subprocess.Popen:
    """`mass replay RECORDING --headless --max -q` into tmp_path/DATA with a writer process, started
    and left running (stdout, stderr: pipes of text); `env` added to its environment."""
    return subprocess.Popen([sys.executable, "-m", "mass_tui", "replay", str(recording), "--headless", "--max",
                             "-q", "--data-dir", str(tmp_path / data)], cwd=tmp_path,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
                                 "MASS_SINKS": "process", "MASS_LOG_DIR": str(tmp_path / "logs"), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _writers(pid: int) -> list[int]:
    """PIDs of the store writer processes of the replay `pid` (multiprocessing's resource tracker left out)."""
    return [p for p, cmd in _children(pid) if "spawn_main" in cmd and "resource_tracker" not in cmd]


def _children(pid: int) -> list[tuple[int, str]]:
    """(PID, command line) of the processes whose parent is `pid` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append((int(entry.name), cmdline))
    return out


def test_a_writer_killed_during_a_replay_is_said_in_one_line_and_exit_1(tmp_path):
    recording = _recording(tmp_path / "rec.jsonl", 150_000)
    proc = _replay_process(tmp_path, recording, "d")
    killed = None
    try:
        def writer() -> int | None:
            found = _writers(proc.pid)
            return found[0] if found else None
        assert wait_for(lambda: writer() is not None or proc.poll() is not None, 60)
        killed = writer()
        assert killed is not None, "no writer process was seen"
        os.kill(killed, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"mass: the store writer process (PID {killed}) ended unexpectedly")


def test_mass_config_checks_mass_sinks(tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "MASS_SINKS": "bogus",
           "MASS_LOG_DIR": str(tmp_path / "logs")}
    done = subprocess.run([sys.executable, "-m", "mass_tui", "config"], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 78
    assert "MASS_SINKS='bogus': expected auto, inline, process or split" in done.stderr


def _aggregates_digest(data_dir: Path) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}
    # One row: the count and an order-free hash over every column a window is read by.
    done = subprocess.run([sys.executable, "-m", "mass_tui", "query", "--data-dir", str(data_dir),
                           "SELECT count(*), bit_xor(hash(kind, \"window\", scope, key, variable, ts, count, mean, "
                           "min, max, sum, late, observations, final)) FROM aggregates WHERE scope = 'station'"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> tuple[Path, Path, str]:
    """The 150,000-line recording, replayed once inline into `clean`, and its aggregates' digest: the
    reference the rerun tests compare with (the same recording and the same replay in each of them, so
    made once for the module; each test replays into a data dir of its own)."""
    base = tmp_path_factory.mktemp("offload-clean")
    recording = _recording(base / "rec.jsonl", 150_000)
    clean = _replay(base, recording, "clean", "inline")
    assert clean.returncode == 0, clean.stderr
    return recording, base / "clean", _aggregates_digest(base / "clean")


def test_a_rerun_after_the_writer_was_killed_leaves_the_aggregates_of_a_clean_run(tmp_path, clean_run):
    """The writer holds a group's stream lines until that group's aggregates are queued: killed at
    any moment, the stream is never ahead of the aggregates, so the rerun (which skips the rows the
    stream has) leaves no window unaggregated; the SQL view reads a window written twice once.
    Station scopes are compared: the restart rebuilds the windows still open a station at a time,
    so a group scope's open windows can differ in their late counts (known, README)."""
    recording, _, clean_digest = clean_run
    stream = tmp_path / "killed" / "db" / "consumer_stream.jsonl"
    proc = _replay_process(tmp_path, recording, "killed")
    try:
        assert wait_for(lambda: (stream.exists() and stream.stat().st_size > 0 and _writers(proc.pid))
                        or proc.poll() is not None, 120)
        for pid in _writers(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 1, "the writer was not killed during the replay"
    again = _replay(tmp_path, recording, "killed", "process")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["duplicates"] > 0  # the first run stored part of it
    assert _aggregates_digest(tmp_path / "killed") == clean_digest


def test_the_writer_aggregating_whenever_its_inbox_is_empty_stores_the_windows_of_an_inline_run(tmp_path,
                                                                                                clean_run):
    """The writer process aggregates what it holds back as soon as nothing waits in its inbox, so
    which batches it aggregates together depends on timing; the windows stored do not (a window's
    sum is its readings added in the order they came), and are the inline run's (two batches at a
    time): five batches of two-decimal readings, whose sums round with the order of the additions."""
    recording, _, clean_digest = clean_run
    done = _replay(tmp_path, recording, "offloaded", "process")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["store_sinks"] == "process"
    assert _aggregates_digest(tmp_path / "offloaded") == clean_digest


@pytest.mark.parametrize("sinks", ["inline", "process"])
def test_a_rerun_after_the_disk_refused_part_way_leaves_the_aggregates_of_a_clean_run(tmp_path, sinks, clean_run):
    """A file-size limit (RLIMIT_FSIZE, as `ulimit -f`) makes the disk refuse the stream part way:
    inline as in a writer process, the stream is never ahead of the aggregates, so the rerun leaves
    no window unaggregated (inline, the aggregates of two batches at a time used to be behind)."""
    import resource

    recording, clean_dir, clean_digest = clean_run
    stream_bytes = (clean_dir / "db" / "consumer_stream.jsonl").stat().st_size
    limit = stream_bytes // 3  # a third of the stream fits

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "MASS_SINKS": sinks,
           "MASS_LOG_DIR": str(tmp_path / "logs")}
    refused = subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(recording), "--headless", "--max", "-q",
                              "--data-dir", str(tmp_path / "cut")], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300, preexec_fn=small_files)
    assert refused.returncode == 1 and "File too large" in refused.stderr, refused.stderr
    stored = (tmp_path / "cut" / "db" / "consumer_stream.jsonl").stat().st_size
    assert 0 < stored < stream_bytes
    again = _replay(tmp_path, recording, "cut", sinks)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["duplicates"] > 0
    assert _aggregates_digest(tmp_path / "cut") == clean_digest


def test_shared_strings_keeps_every_value_and_pickles_each_name_once():
    import pickle

    n = 300
    batch = ObservationBatch(ts=1_700_000_000.0 + np.arange(n), station=[f"s{i % 3}"[:] + "" for i in range(n)],
                             source=["".join(["src", str(i % 2)]) for i in range(n)],
                             columns={"temp_c": np.arange(n, dtype=float)}, tags=[{}] * n)
    assert batch.station[0] is not batch.station[3]  # a string object per row, as decoded
    shared = offload.shared_strings(batch)
    assert shared.station == batch.station and shared.source == batch.source
    assert shared.station[0] is shared.station[3] and shared.source[0] is shared.source[2]
    assert shared.ts is batch.ts and shared.columns is batch.columns and shared.tags is batch.tags
    assert batch.station[0] is not batch.station[3]  # the batch given is left as it was
    names = lambda b: pickle.dumps((b.station, b.source), 5)  # noqa: E731
    assert len(names(shared)) < len(names(batch)) // 2  # a name once, then a reference to it
    empty = ObservationBatch(np.zeros(0), [], [], {})
    assert offload.shared_strings(empty) is empty


@settings(max_examples=30, deadline=None)
@given(names=st.lists(st.sampled_from(["a", "b", "é", "", "x" * 40]), max_size=50))
def test_property_shared_strings_equal_the_batch(names):
    batch = ObservationBatch(ts=np.arange(len(names), dtype=float), station=[n + "" for n in names],
                             source=[n[::-1] for n in names], columns={})
    shared = offload.shared_strings(batch)
    assert shared.station == batch.station and shared.source == batch.source
    assert len({id(s) for s in shared.station}) == len(set(names))


def test_the_writer_reads_messages_ahead_of_the_one_it_writes_in_order_then_eof():
    """`_receiving`: the engine's sends of big messages complete while nothing is taken from the
    inbox (up to INBOX + 1: the one the reading thread holds), and come out whole and in order."""
    import multiprocessing
    import threading

    ours, theirs = multiprocessing.Pipe(duplex=True)
    inbox = offload._receiving(theirs)
    messages = [bytes([k]) * (1 << 20) for k in range(offload.INBOX + 1)]  # bigger than a pipe's buffer
    sender = threading.Thread(target=lambda: [ours.send_bytes(m) for m in messages], daemon=True)
    sender.start()
    sender.join(60)
    assert not sender.is_alive(), "a send waited on the writer taking the message before"
    ours.close()
    got = [inbox.get(timeout=60) for _ in range(len(messages) + 1)]
    assert got[:-1] == messages and got[-1] is None
    theirs.close()


def test_a_writer_lost_at_close_is_handed_back_to_the_caller_not_only_logged(tmp_path):
    """What a writer holds at close (the windows still open) is lost if it dies then: `SinkSet.close`
    closes the other sinks and hands the failure back, so a replay does not report success."""
    from mass_tui.sinks.base import SinkSet

    class Other:
        name, durable, wants_series, closed = "other", False, False, False

        def close(self) -> None:
            self.closed = True
            raise RuntimeError("a sink that is not durable failing at close is only logged")

    writer = OffloadedSinks(_config(tmp_path))
    engine = Engine(_config(tmp_path), store_sink=writer)
    other = Other()
    try:
        engine.process_batch(_batch(100))
        writer.sync()
        os.kill(writer.pid, signal.SIGKILL)
        writer.process.join(30)
        failure = SinkSet([other, writer]).close()
    finally:
        writer.process.kill()
        writer.process.join(10)
    assert isinstance(failure, offload.WriterDied) and "exit code -9" in str(failure)
    assert other.closed
    assert SinkSet([Other()]).close() is None

