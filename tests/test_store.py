from __future__ import annotations

import json
import os

import orjson

from mass_tui.store import JsonlStore, last_records, read_jsonl, read_recent


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


DAY = 86400.0


def test_rotates_by_size_and_by_day_and_applies_retention(tmp_path):
    clock = Clock(1_700_000_000.0)
    store = JsonlStore(tmp_path, max_bytes=2000, retention_days=2, clock=clock)
    for i in range(100):
        store.append("anomalies.jsonl", [{"ts": clock.t + i, "i": i, "pad": "x" * 40}])
    store.flush()
    rotated = store.rotated("anomalies.jsonl")
    assert len(rotated) >= 2 and all(p.stat().st_size <= 2000 for p in store.files("anomalies.jsonl"))
    # Nothing lost, order kept across rotated files.
    seen = [r["i"] for p in store.files("anomalies.jsonl") for r in read_jsonl(p)]
    assert seen == list(range(100))
    clock.t += DAY  # a new UTC day starts a new file
    store.append("anomalies.jsonl", [{"ts": clock.t, "i": 100}])
    assert len(store.rotated("anomalies.jsonl")) == len(rotated) + 1
    clock.t += 2 * DAY  # past retention for the first day only: it is removed at the next rotation
    store.append("anomalies.jsonl", [{"ts": clock.t, "i": 101}])
    store.close()
    remaining = [r["i"] for p in store.files("anomalies.jsonl") for r in read_jsonl(p)]
    assert remaining == [100, 101]


def test_torn_last_line_is_tolerated_and_counted(tmp_path):
    path = tmp_path / "consumer_stream.jsonl"
    path.write_bytes(b'{"ts": 1, "a": 1}\n{"ts": 2, "a": 2}\n{"ts": 3, "a"')
    stats: dict[str, int] = {}
    assert [r["a"] for r in read_jsonl(path, stats)] == [1, 2]
    assert stats == {"torn": 1}
    path.write_bytes(b'{"ts": 1}\ngarbage\n{"ts": 2}\n')
    stats = {}
    assert len(list(read_jsonl(path, stats))) == 2 and stats == {"corrupt": 1}


def test_read_recent_walks_back_through_rotated_files(tmp_path):
    store = JsonlStore(tmp_path, max_bytes=300)
    for i in range(50):
        store.append("consumer_stream.jsonl", [{"ts": 1000.0 + i * 60, "i": i}])
    store.close()
    recent = read_recent(store, "consumer_stream.jsonl", since_ts=1000.0 + 40 * 60)
    assert [r["i"] for r in recent] == list(range(40, 50))
    os.remove(store.path("consumer_stream.jsonl"))
    assert json.dumps(read_recent(store, "consumer_stream.jsonl", 0))  # still readable without the live file


def test_last_records_reads_the_tail_and_skips_a_torn_line(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = [orjson.dumps({"ts": 1_700_000_000 + i, "n": i}) for i in range(5000)]
    path.write_bytes(b"\n".join(lines) + b'\n{"ts": 17000')  # a crash tore the last line
    newest = list(last_records(path, tail_bytes=64))  # a tail too short for one line: it widens
    assert newest[0] == {"ts": 1_700_000_000 + 4999, "n": 4999}
    assert [r["n"] for r in newest] == sorted((r["n"] for r in newest), reverse=True)
    assert len(newest) < 5000  # only the tail was read
    path.write_bytes(b'{"ts": 5}')  # one line, no newline
    assert list(last_records(path)) == [{"ts": 5}]


def test_sync_fsyncs_the_files_rotated_since_the_last_sync_and_the_directory(tmp_path, monkeypatch):
    """A file rotated away between two syncs holds lines the second sync promises are safe: it is
    fsynced by that sync (then closed), and so is the directory its rename changed. At most
    MAX_ROTATED_OPEN wait open for it; past that they are fsynced as they rotate."""
    import mass_tui.store as store_module

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the real fsync, noting what it was given
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(store_module.os, "fsync", fsync)
    store = JsonlStore(tmp_path, max_bytes=300)
    for i in range(12):
        store.append("anomalies.jsonl", [{"ts": 1000.0 + i, "i": i, "pad": "x" * 100}])
    rotated = store.rotated("anomalies.jsonl")
    assert len(rotated) >= 2 and synced == []
    store.sync()
    assert {str(p) for p in rotated} <= set(synced)
    assert str(tmp_path / "anomalies.jsonl") in synced and str(tmp_path) in synced
    assert [r["i"] for p in store.files("anomalies.jsonl") for r in read_jsonl(p)] == list(range(12))
    synced.clear()
    store.sync()  # nothing rotated since: the open file only, the directory not again
    assert synced == [str(tmp_path / "anomalies.jsonl")]
    fds = len(os.listdir("/proc/self/fd"))
    for i in range(12, 60):  # rotating without a sync: bounded open files, the oldest fsynced as they go
        store.append("anomalies.jsonl", [{"ts": 1000.0 + i, "i": i, "pad": "x" * 100}])
    assert len(os.listdir("/proc/self/fd")) <= fds + store_module.MAX_ROTATED_OPEN
    store.close()
    assert [r["i"] for p in store.files("anomalies.jsonl") for r in read_jsonl(p)] == list(range(60))


def test_writes_past_the_mark_are_synced_ahead_and_sync_still_fsyncs_every_file(tmp_path, monkeypatch):
    """Past SYNC_AHEAD_BYTES written since the last sync, the store fdatasyncs its files in a thread
    (duplicated descriptors: a file rotated and closed meanwhile is still the one synced), so the
    next sync has less to wait for; the sync still fsyncs every file itself, the lines are whole
    and in order, and no descriptor is left open."""
    import mass_tui.store as store_module

    ahead: list[str] = []
    synced: list[str] = []
    real_fdatasync, real_fsync = os.fdatasync, os.fsync

    def fdatasync(fd: int) -> None:
        ahead.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fdatasync(fd)

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(store_module, "SYNC_AHEAD_BYTES", 1000)
    monkeypatch.setattr(store_module.os, "fdatasync", fdatasync)
    monkeypatch.setattr(store_module.os, "fsync", fsync)
    fds = len(os.listdir("/proc/self/fd"))
    store = JsonlStore(tmp_path, max_bytes=3000)
    for i in range(40):
        store.append("consumer_stream.jsonl", [{"ts": 1000.0 + i, "i": i, "pad": "x" * 200}])
    store.sync()
    assert any(p.startswith(str(tmp_path / "consumer_stream")) for p in ahead)
    assert str(tmp_path / "consumer_stream.jsonl") in synced
    assert {str(p) for p in store.rotated("consumer_stream.jsonl")} <= set(synced)
    store.close()
    assert len(os.listdir("/proc/self/fd")) == fds
    lines = [r["i"] for p in store.files("consumer_stream.jsonl") for r in read_jsonl(p)]
    assert lines == list(range(40))


def test_a_failed_sync_ahead_is_raised_by_the_next_sync(tmp_path, monkeypatch):
    """Linux reports a lost write-back to one fsync only: a sync ahead that fails must not swallow
    it. The next sync raises it (StoreWriteError naming the file), so no position is committed past
    lines that may not be on disk."""
    import errno

    import pytest

    import mass_tui.store as store_module
    from mass_tui.store import StoreWriteError

    def fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store_module, "SYNC_AHEAD_BYTES", 500)
    monkeypatch.setattr(store_module.os, "fdatasync", fdatasync)
    store = JsonlStore(tmp_path)
    store.append("consumer_stream.jsonl", [{"ts": 1000.0 + i, "pad": "x" * 100} for i in range(10)])
    with pytest.raises(StoreWriteError, match="consumer_stream.jsonl.*Input/output error"):
        store.sync()
    monkeypatch.undo()  # the disk works again, and a later fsync says so: sync still raises (sync_lost)
    for _ in range(2):
        with pytest.raises(StoreWriteError, match="fdatasync failed.*until mass starts again"):
            store.sync()
    store.close()
    with JsonlStore(tmp_path) as again:  # a restart: stores again (what was lost is read again upstream)
        again.sync()
    assert len(list(read_jsonl(tmp_path / "consumer_stream.jsonl"))) == 10


def test_a_failed_fsync_is_raised_by_every_later_sync_not_once(tmp_path, monkeypatch):
    """The same for sync's own fsync: failing once (EIO), then succeeding over pages the kernel
    may have dropped, it must not let a later sync say the lines are stored."""
    import errno

    import pytest

    import mass_tui.store as store_module
    from mass_tui.store import StoreWriteError

    real_fsync = os.fsync
    failures = [OSError(errno.EIO, "Input/output error")]

    def fsync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real_fsync(fd)

    monkeypatch.setattr(store_module.os, "fsync", fsync)
    store = JsonlStore(tmp_path)
    store.append("consumer_stream.jsonl", [{"ts": 1000.0}])
    with pytest.raises(StoreWriteError, match="consumer_stream.jsonl: fsync failed \\(Input/output error\\)"):
        store.sync()
    store.append("consumer_stream.jsonl", [{"ts": 1001.0}])
    for _ in range(3):
        with pytest.raises(StoreWriteError, match="until mass starts again"):
            store.sync()
    store.close()


def test_no_thread_for_the_sync_ahead_leaves_the_store_as_without_it(tmp_path, monkeypatch):
    """A thread that cannot be started (a memory or pids limit) costs the sync ahead only: the append
    that crossed the mark does not fail (its lines are on disk), sync and close work, and no
    duplicated descriptor is left open."""
    import threading

    fds = len(os.listdir("/proc/self/fd"))
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name == "mass-store-sync-ahead":
            raise RuntimeError("can't start new thread")
        real_start(self)

    import mass_tui.store as store_module

    monkeypatch.setattr(store_module, "SYNC_AHEAD_BYTES", 500)
    monkeypatch.setattr(threading.Thread, "start", start)
    store = JsonlStore(tmp_path, max_bytes=2000)
    for i in range(30):
        store.append("consumer_stream.jsonl", [{"ts": 1000.0 + i, "i": i, "pad": "x" * 100}])
    store.sync()
    store.close()
    assert len(os.listdir("/proc/self/fd")) == fds
    assert [r["i"] for p in store.files("consumer_stream.jsonl") for r in read_jsonl(p)] == list(range(30))
