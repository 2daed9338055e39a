"""Each observation is stored once, whatever re-delivers it: a re-read after kill -9 or after a stop on a
full disk, a deleted position file, a recording replayed twice, any mix of re-deliveries and restarts.

A reading already stored with the same values is counted under `duplicates` (summary, metrics, log) and
not stored again. The stored stream is what decides, not what one run has seen: the checks below count
rows against distinct (station, ts) in the store itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.lateness import OrderCheck
from mass_tui.store import JsonlStore
from sources.batch import ObservationBatch
from sources.file_transport import FileAppender

from .conftest import ROOT, sigterm_when
from .test_torn_and_full import _tmpfs

STATIONS = [f"b{b}-f{f}-office" for b in range(1, 4) for f in range(1, 5)]  # 12, as the simulated building


def _lines(n: int, start: int = 0) -> list[bytes]:
    """n messages of 12 stations every 5 min (a transport read of 4,096 spans 28 h of data time)."""
    out = []
    for i in range(start, start + n):
        station, step = STATIONS[i % len(STATIONS)], i // len(STATIONS)
        out.append(json.dumps({"ts": 1_736_150_400 + 300 * step, "station": station,
                               "temp_c": round(20 + (step % 96) * 0.01, 2), "co2_ppm": 400 + step % 300}).encode())
    return out


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
            "MASS_LOG_DIR": str(tmp_path / "logs")}


def _mass(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mass_tui", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(tmp_path))


def _finish_when_read(proc: subprocess.Popen, tmp_path: Path, seconds: float = 60) -> dict:
    """Stop a run cleanly (SIGTERM) once its committed position is the end of the transport (everything
    read, stored first), and its summary: its `--max-seconds` was only a window long enough to read it all."""
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    _, out, err = sigterm_when(proc, lambda: _position(tmp_path) == transport.stat().st_size, seconds)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _finish(proc: subprocess.Popen, timeout: float = 120) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _rows(db: Path, torn_ok: bool = False) -> list[tuple[str, str]]:
    """(station, ts) of every stored line; a torn last line (a kill inside a write) only if `torn_ok`."""
    out = []
    for p in sorted(db.glob("consumer_stream*.jsonl")):
        data = p.read_bytes()
        lines = data.split(b"\n")
        if torn_ok and not data.endswith(b"\n"):
            lines = lines[:-1]
        for line in lines:
            if line.strip():
                r = json.loads(line)
                out.append((r["station"], r["ts"]))
    return out


def _query_counts(tmp_path: Path) -> tuple[int, int]:
    """count(*) and count(distinct (station, ts)) of `mass query`, as the user asks it."""
    done = subprocess.run([sys.executable, "-m", "mass_tui", "query", "--format", "json", "--data-dir",
                           str(tmp_path / "data"),
                           "select count(*) as n, count(distinct (station, ts)) as d from observations"],
                          cwd=tmp_path, capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)[0]
    return row["n"], row["d"]


def _position(tmp_path: Path) -> int:
    path = tmp_path / "data" / "transport" / "observations.position"
    try:
        return json.loads(path.read_text())["offset"]
    except (OSError, ValueError):
        return 0


def _messages_before(transport: Path, offset: int) -> int:
    with transport.open("rb") as fh:
        return fh.read(offset).count(b"\n")


def test_kill_9_between_storing_and_committing_stores_the_re_read_batch_once(tmp_path):
    """`mass run` killed by SIGKILL after a batch is stored and before its position is committed (the
    stored stream ahead of the position): the restart re-reads that batch, more than warm_hours of data
    time, and counts it as duplicates instead of storing it again."""
    n = 40_000
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    appender = FileAppender(transport)
    appender.append(_lines(n))
    appender.close()
    stream = tmp_path / "data" / "db" / "consumer_stream.jsonl"
    caught = False
    for _ in range(5):  # the window is a few ms a batch: a round that misses it is tried again
        proc = _mass(tmp_path, "run", "--headless", "-q", "--max-seconds", "60")
        try:
            deadline = time.monotonic() + 60
            offset, size = _position(tmp_path), stream.stat().st_size if stream.exists() else 0
            while time.monotonic() < deadline and proc.poll() is None:
                now_offset, now_size = _position(tmp_path), stream.stat().st_size if stream.exists() else 0
                if now_offset != offset:
                    offset, size = now_offset, now_size
                elif now_size > size and now_offset > 0:
                    break  # stored past the committed position: kill now
                time.sleep(0.001)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(10)
            proc.communicate()
        stored = len(_rows(stream.parent, torn_ok=True))
        committed = _messages_before(transport, _position(tmp_path))
        if committed < stored < n:
            caught = True
            break
    assert caught, "never killed between storing and committing"
    summary = _finish_when_read(_mass(tmp_path, "run", "--headless", "-q", "--max-seconds", "12"), tmp_path)
    rows = _rows(stream.parent)
    assert len(rows) == len(set(rows)) == n  # every message, each once
    assert summary["duplicates"] == stored - committed > 0
    assert summary["observations"] == n - stored and summary["late"] == 0
    assert _query_counts(tmp_path) == (n, n)


def test_stopped_on_a_full_disk_after_storing_then_restarted_stores_each_once(tmp_path):
    """The position file cannot be written (ENOSPC on the transport's disk): the batch is stored but its
    position is not committed; stopped (exit 1) and restarted with space again, the batch is re-read
    and counted as duplicates."""
    n = 3000
    with _tmpfs(tmp_path / "data" / "transport", size="1m") as transport_dir:
        transport = transport_dir / "observations.jsonl"
        appender = FileAppender(transport)
        appender.append(_lines(n))
        appender.close()
        filler = transport_dir / "filler"
        # No room left for the position file (full before the last byte: the point).
        with filler.open("wb") as fh, contextlib.suppress(OSError):
            fh.write(b"\0" * shutil.disk_usage(transport_dir).free)
        proc = _mass(tmp_path, "run", "--headless", "-q")
        log = tmp_path / "logs" / "mass.log"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (log.exists() and "No space left" in log.read_text()):
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
        assert proc.returncode == 1
        stored = len(_rows(tmp_path / "data" / "db"))
        assert stored == n and _position(tmp_path) == 0  # all stored, nothing committed
        filler.unlink()
        summary = _finish_when_read(_mass(tmp_path, "run", "--headless", "-q", "--max-seconds", "6"), tmp_path)
        assert _position(tmp_path) == transport.stat().st_size
    rows = _rows(tmp_path / "data" / "db")
    assert len(rows) == len(set(rows)) == n
    assert summary["duplicates"] == n and summary["observations"] == 0


def test_deleting_the_position_file_re_reads_everything_as_duplicates(tmp_path):
    """Troubleshooting's "delete observations.position to re-read from the start": the whole
    transport again, none of it stored twice, all of it counted, in the summary, the log and
    the metrics."""
    n = 5000
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    appender = FileAppender(transport)
    appender.append(_lines(n))
    appender.close()
    first = _finish_when_read(_mass(tmp_path, "run", "--headless", "-q", "--max-seconds", "6"), tmp_path)
    assert first["observations"] == n and first["duplicates"] == 0
    transport.with_suffix(".position").unlink()
    more = FileAppender(transport)
    more.append(_lines(100, start=n))  # and something new behind it
    more.close()
    from .conftest import free_port

    port = free_port()
    proc = _mass(tmp_path, "run", "--headless", "-q", "--max-seconds", "8", "--metrics-port", str(port))
    import httpx

    metrics = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "mass_observations_total 100.0" not in metrics:
        time.sleep(0.2)
        try:
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            continue
    summary = _finish_when_read(proc, tmp_path)
    rows = _rows(tmp_path / "data" / "db")
    assert len(rows) == len(set(rows)) == n + 100
    assert summary["duplicates"] == n and summary["observations"] == 100 and summary["late"] == 0
    assert f"mass_duplicates_total {float(n)}" in metrics
    assert "already stored with the same values dropped as duplicates" in (tmp_path / "logs" / "mass.log").read_text()
    assert _query_counts(tmp_path) == (n + 100, n + 100)


def test_replaying_a_file_twice_into_one_data_dir_stores_it_once(tmp_path):
    """`mass replay FILE --headless` twice: the second finds every reading stored and says so
    under `duplicates`; a changed value is a conflict, quarantined, not a second row."""
    recording = tmp_path / "rec.jsonl"
    lines = _lines(762)
    recording.write_bytes(b"\n".join(lines) + b"\n")
    first = _finish(_mass(tmp_path, "replay", str(recording), "--headless", "-q"))
    second = _finish(_mass(tmp_path, "replay", str(recording), "--headless", "-q"))
    assert first["observations"] == 762 and first["duplicates"] == 0
    assert second["observations"] == 0 and second["duplicates"] == 762
    changed = json.loads(lines[10])
    changed["temp_c"] += 1.0
    recording.write_bytes(json.dumps(changed).encode() + b"\n")
    third = _finish(_mass(tmp_path, "replay", str(recording), "--headless", "-q"))
    assert third["conflicts"] == 1 and third["observations"] == 0
    rows = _rows(tmp_path / "data" / "db")
    assert len(rows) == len(set(rows)) == 762
    assert _query_counts(tmp_path) == (762, 762)


# --- the rule behind them: any re-delivery, any restart -------------------------------------------

def _batch(keys: list[tuple[int, int]]) -> ObservationBatch:
    """(station, minute) keys as readings whose values follow from the key (a re-delivery is identical)."""
    t = np.array([1.7e9 + 60.0 * m for _, m in keys])
    return ObservationBatch(t, [f"s{s}" for s, _ in keys], ["prop"] * len(keys),
                            {"temp_c": np.array([float((s * 7 + m) % 40) for s, m in keys])})


_keys = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200)), min_size=1, max_size=60, unique=True)
_steps = st.lists(st.one_of(st.tuples(st.just("deliver"), st.integers(0, 60), st.integers(0, 60)),
                            st.just(("restart",))), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=_keys, steps=_steps, capacity=st.integers(1, 24), sort=st.booleans())
def test_property_any_re_delivery_and_restart_stores_each_key_exactly_once(keys, steps, capacity, sort):
    """A stream (in time order or not) delivered as arbitrary slices: prefixes, suffixes, middles, again
    and again, with restarts between, and a memory from 1 instant up (so the store is asked): each
    (station, ts) is stored exactly once, and every other delivery is counted as a duplicate."""
    if sort:
        keys = sorted(keys, key=lambda k: k[1])
    cfg = load_config(None, env={}, dotenv_file=None)
    delivered: set[tuple[int, int]] = set()
    total = duplicates = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = JsonlStore(Path(tmp))
        engine = Engine(cfg, store)
        engine.order = OrderCheck(capacity=capacity, store=store)
        for step in steps:
            if step[0] == "restart":
                duplicates += engine.counters.duplicates
                store.close()
                store = JsonlStore(Path(tmp))
                engine = Engine(cfg, store)
                engine.order = OrderCheck(capacity=capacity, store=store)
                engine.warm()
                continue
            a, b = sorted(step[1:])
            part = keys[a:b]
            if not part:
                continue
            engine.process_batch(_batch(part))
            engine.sync()
            total += len(part)
            delivered.update(part)
        duplicates += engine.counters.duplicates
        store.close()
        rows = _rows(Path(tmp))
    assert len(rows) == len(set(rows)) == len(delivered)
    assert duplicates == total - len(delivered)


_VARS = ("temp_c", "pressure_hpa", "precip_mm")


def _partial_batch(readings: list[tuple[int, int, tuple[bool, ...]]]) -> ObservationBatch:
    """(station, minute, which of _VARS it has) as readings; a value follows from its key, so a
    repeat is the same value and never a conflict."""
    t = np.array([1.7e9 + 60.0 * m for _, m, _ in readings])
    cols = {name: np.array([float((s * 7 + m + 3 * k) % 40) if has[k] else np.nan for s, m, has in readings])
            for k, name in enumerate(_VARS)}
    return ObservationBatch(t, [f"s{s}" for s, _, _ in readings], ["prop"] * len(readings), cols)


def _stored_values(db: Path) -> list[tuple[str, str, str]]:
    """(station, ts, variable) of every value in the stored stream, one per stored value."""
    out = []
    for p in sorted(db.glob("consumer_stream*.jsonl")):
        for line in p.read_bytes().splitlines():
            r = json.loads(line)
            out += [(r["station"], r["ts"], name) for name in _VARS if name in r]
    return out


def test_a_reading_that_adds_a_value_to_a_stored_instant_stores_only_the_new_value(tmp_path):
    """An ASOS special report at the time of a routine one, with the rain the routine one lacked: the
    rain is stored, the repeated temperature and pressure are not stored (or aggregated) again."""
    cfg = load_config(None, env={}, dotenv_file=None)
    store = JsonlStore(tmp_path)
    engine = Engine(cfg, store)
    readings = [(0, 5, (True, True, False)), (0, 5, (True, True, True)), (0, 5, (True, True, False)),
                (0, 65, (True, True, False))]
    engine.process_batch(_partial_batch(readings))
    engine.sync()
    store.close()
    lines = [json.loads(line) for line in (tmp_path / "consumer_stream.jsonl").read_bytes().splitlines()]
    assert [sorted(k for k in _VARS if k in r) for r in lines] == [
        ["pressure_hpa", "temp_c"], ["precip_mm"], ["pressure_hpa", "temp_c"]]
    assert engine.counters.duplicates == 1  # the third reading, dropped whole


_partial = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30),
                              st.tuples(st.booleans(), st.booleans(), st.booleans()).filter(any)),
                    min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=_partial, cuts=st.lists(st.integers(0, 40), max_size=4), restart=st.booleans())
def test_property_each_value_of_an_instant_is_stored_exactly_once(readings, cuts, restart):
    """Readings of an instant may repeat it whole or in part and bring values it lacked, in any order
    and batches, with a restart between: each (station, ts, variable) delivered is stored exactly once."""
    cfg = load_config(None, env={}, dotenv_file=None)
    bounds = sorted({0, len(readings), *[min(c, len(readings)) for c in cuts]})
    with tempfile.TemporaryDirectory() as tmp:
        store = JsonlStore(Path(tmp))
        engine = Engine(cfg, store)
        for k, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
            if restart and k == 1:
                store.close()
                store = JsonlStore(Path(tmp))
                engine = Engine(cfg, store)
                engine.warm()
            engine.process_batch(_partial_batch(readings[a:b]))
            engine.sync()
        store.close()
        stored = _stored_values(Path(tmp))
    delivered = {(f"s{s}", m, _VARS[k]) for s, m, has in readings for k in range(3) if has[k]}
    assert len(stored) == len(set(stored)) == len(delivered)


@pytest.mark.parametrize("capacity", [1, 50])
def test_a_re_delivery_larger_than_the_memory_is_looked_up_in_the_store(tmp_path, capacity):
    """The bound exceeded: 2,000 instants re-delivered to a check that remembers `capacity`. Each is
    found in the store (a pass per `capacity` instants at most), none stored twice, memory bounded."""
    cfg = load_config(None, env={}, dotenv_file=None)
    keys = [(s, m) for m in range(500) for s in range(4)]
    with JsonlStore(tmp_path) as store:
        engine = Engine(cfg, store)
        engine.order = OrderCheck(capacity=capacity, store=store)
        engine.process_batch(_batch(keys))
        engine.sync()
        for start in range(0, len(keys), 400):
            engine.process_batch(_batch(keys[start:start + 400]))
            assert engine.order.remembered() <= capacity
        assert engine.counters.duplicates == len(keys) and engine.counters.late == 0
        assert 1 <= engine.order.recalls <= len(keys) // capacity + 5
    rows = _rows(tmp_path)
    assert len(rows) == len(set(rows)) == len(keys)


class _SettledEachBatch(OrderCheck):
    """The check with its memory built at once after each batch (no deferral): the reference."""

    def check(self, batch, warming=False):
        out = super().check(batch, warming)
        self._settle()
        return out


def _memory(check: OrderCheck) -> tuple:
    check._settle()
    return ({s: dict(seen) for s, seen in check._seen.items() if seen}, list(check._order), dict(check._floor),
            dict(check._last_station), dict(check._last))


@settings(max_examples=80, deadline=None)
@given(keys=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 120)), min_size=1, max_size=80),
       cuts=st.lists(st.integers(1, 30), min_size=1, max_size=5), capacity=st.integers(1, 24),
       forget=st.one_of(st.none(), st.integers(0, 3)))
def test_property_deferred_memory_answers_as_one_built_at_each_batch(keys, cuts, capacity, forget):
    """New rows are remembered lazily (the memory is built only when a row repeats or goes back): any
    slicing into batches, mostly in time order with repeats and late rows, a station forgotten midway:
    the same verdicts for every batch and the same memory as a check that builds it at each batch."""
    keys = sorted(keys, key=lambda k: k[1] // 20)  # roughly in time order: fresh batches, some slow rows
    lazy, eager = OrderCheck(capacity=capacity), _SettledEachBatch(capacity=capacity)
    i = k = 0
    while i < len(keys):
        part = keys[i:i + cuts[k % len(cuts)]]
        a, b = lazy.check(_batch(part)), eager.check(_batch(part))
        assert (a.duplicates, a.late, a.conflicts, len(a.batch)) == (b.duplicates, b.late, b.conflicts, len(b.batch))
        assert np.array_equal(a.batch.ts, b.batch.ts)
        for x, y in ((a.fed, b.fed), (a.composite, b.composite)):
            assert (x is None) == (y is None)
            if isinstance(x, dict):
                assert x.keys() == y.keys() and all(np.array_equal(x[n], y[n]) for n in x)
            elif x is not None:
                assert np.array_equal(x, y)
        if forget is not None and k == 1:
            lazy.forget(f"s{forget}")
            eager.forget(f"s{forget}")
        i, k = i + len(part), k + 1
    assert lazy.remembered() <= capacity
    assert _memory(lazy) == _memory(eager)
