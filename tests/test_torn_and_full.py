"""A torn last line, a full disk and a read-only store: nothing glued, nothing lost, one clear line.

Disk full is a real ENOSPC: a small tmpfs the test mounts over the store
directory (and always unmounts). Read-only is the same tmpfs remounted
read-only (root ignores file permissions, not a read-only mount).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.store import JsonlStore, StoreWriteError, read_jsonl
from sources.file_transport import FileAppender, FileTail, repair_torn_tail

from .conftest import ROOT
from .conftest import wait_for as _wait

# --- torn last line -------------------------------------------------------------------------------

def test_case_torn_tail_glue_stores_every_reading_once_and_parseable(shared, tmp_path):
    """tests/data/cases/reliability/torn-tail-glue.sh: 90 then 100 readings stored, the last stored
    record cut in half and the position rewound, as kill -9 inside a write leaves it; a restart
    must store all 100 distinct readings, every stored line parseable (before: 99, one glued)."""
    script = shared / "cases" / "reliability" / "torn-tail-glue.sh"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "MASS": f"{sys.executable} -m mass_tui"}
    out = subprocess.run(["bash", str(script), str(tmp_path / "w")], env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    m = re.search(r"parseable (\d+) unparseable (\d+) distinct ts (\d+) of 100 produced", out.stdout)
    assert m, out.stdout
    assert (int(m[2]), int(m[3])) == (0, 100), out.stdout


def test_store_cuts_a_torn_tail_before_appending(tmp_path):
    path = tmp_path / "consumer_stream.jsonl"
    path.write_bytes(b'{"ts": 1}\n{"ts": 2}\n{"ts": 3, "tem')
    with JsonlStore(tmp_path) as store:
        store.append("consumer_stream.jsonl", [{"ts": 3}, {"ts": 4}])
        store.sync()
    assert [r["ts"] for r in read_jsonl(path)] == [1, 2, 3, 4]
    assert path.read_bytes().endswith(b"\n")


def test_file_transport_cuts_a_torn_tail_before_appending(tmp_path):
    path = tmp_path / "observations.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2, "b"')
    appender = FileAppender(path)
    appender.append([b'{"a": 3}'])
    appender.close()
    assert FileTail(path).read() == [b'{"a": 1}', b'{"a": 3}']


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=8),
       st.binary(max_size=60).filter(lambda b: b"\n" not in b),
       st.lists(st.integers(0, 10**9), min_size=1, max_size=5))
def test_property_appending_after_any_torn_tail_keeps_every_line_whole(tmp_path_factory, whole, torn, values):
    """Whatever complete lines and torn fragment a crash left, after the repair every complete line
    is kept byte for byte, the fragment is gone, and each new record is a line of its own."""
    db = tmp_path_factory.mktemp("db")
    path = db / "s.jsonl"
    before = b"".join(line + b"\n" for line in whole)
    path.write_bytes(before + torn)
    with JsonlStore(db) as store:
        store.append("s.jsonl", [{"v": v} for v in values])
        store.sync()
    data = path.read_bytes()
    assert data.startswith(before)
    tail = data[len(before):].split(b"\n")
    assert tail[-1] == b"" and [orjson.loads(x) for x in tail[:-1]] == [{"v": v} for v in values]


def test_repair_reads_back_across_chunks_and_empties_a_file_without_newline(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 200_000)
    assert repair_torn_tail(path) == 200_000 and path.read_bytes() == b""
    path.write_bytes(b"ok\n" + b"y" * 150_000)
    assert repair_torn_tail(path) == 150_000 and path.read_bytes() == b"ok\n"
    assert repair_torn_tail(path) == 0 and repair_torn_tail(tmp_path / "missing") == 0


# --- over-long line on the file transport -------------------------------------------------------

def test_case_smuggle_over_1mb_line_is_one_rejection_and_nothing_stored(shared, tmp_path):
    """tests/data/cases/reliability/smuggle-over-1mb-line.py: a line of 1,048,577 'x' and then a valid
    observation of SMUGGLED, one newline. The file transport hands it on once, whole-line rejected
    with its first 4 KB; nothing is stored for SMUGGLED (before: the tail was stored)."""
    from mass_tui.config import load_config
    from mass_tui.service import run_consumer, transport_path

    cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs")},
                      dotenv_file=None)
    line = subprocess.run([sys.executable, str(shared / "cases" / "reliability" / "smuggle-over-1mb-line.py")],
                          capture_output=True, check=True, timeout=30).stdout
    good = b'{"ts":"2024-01-01T00:01:00Z","station":"fine","temp_c":2.0}\n'
    path = transport_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_bytes(good + line + good.replace(b"01:00", b"02:00"))
    summary = run_consumer(cfg, max_seconds=3, idle_wait=0.05)
    stored = [json.loads(x) for x in (cfg.db_dir / "consumer_stream.jsonl").read_text().splitlines()]
    rejected = [json.loads(x) for x in (cfg.db_dir / "rejected.jsonl").read_text().splitlines()]
    assert [r["station"] for r in stored] == ["fine", "fine"]
    assert summary["rejected"] == 1 and len(rejected) == 1
    assert len(rejected[0]["raw"]) <= 4096 and rejected[0]["raw"].startswith("xxxx")
    assert json.loads(path.with_suffix(".position").read_text())["offset"] == path.stat().st_size


def test_an_over_long_line_still_being_written_waits_for_its_newline(tmp_path):
    """The over-long line's end is found without holding it, and no position inside it is ever
    taken: a restart mid-line must not read its tail as a message of its own."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"y" * 3000)
    tail = FileTail(path, max_line_bytes=1000)
    assert tail.read() == []
    tail.commit()
    with path.open("ab") as fh:
        fh.write(b'{"station":"SMUGGLED"}' + b"z" * 5000)
    assert tail.read() == []
    again = FileTail(path, max_line_bytes=1000)
    assert again.read() == []
    with path.open("ab") as fh:
        fh.write(b'\n{"ok": 1}\n')
    got = again.read()
    assert len(got) == 2 and got[0] == b"y" * 1001 and got[1] == b'{"ok": 1}'
    assert tail.read()[1] == b'{"ok": 1}'


# --- a full disk and a read-only store ------------------------------------------------------------

@contextlib.contextmanager
def _tmpfs(where: Path, size: str = "2m"):
    """A small tmpfs mounted at `where`, unmounted whatever happens."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(where)], capture_output=True).returncode == 0:
                break
            time.sleep(0.25)  # a process of the test may still hold a file there
        else:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs mounted at tmp_path/data/db (the store)."""
    with _tmpfs(tmp_path / "data" / "db") as db:
        yield db


def _fill(db: Path, leave: int) -> Path:
    """Fill the tmpfs up to `leave` bytes free."""
    filler = db / "filler"
    free = shutil.disk_usage(db).free
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


def _lines(n: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"ts": 1_700_000_000 + 60 * i, "station": f"s{i % 3}", "temp_c": 10 + (i % 24) * 0.3,
                        "pressure_hpa": 1010 - (i % 50) * 0.01}).encode() for i in range(start, start + n)]


def _service(tmp_path: Path) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
           "MASS_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.Popen([sys.executable, "-m", "mass_tui", "run", "--headless", "-q"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _stored(db: Path) -> list[dict]:
    out = []
    for p in sorted(db.glob("consumer_stream*.jsonl")):
        out += [json.loads(x) for x in p.read_bytes().splitlines() if x.strip()]  # raises on a torn line
    return out


def _offset(tmp_path: Path) -> int:
    path = tmp_path / "data" / "transport" / "observations.position"
    return json.loads(path.read_text())["offset"] if path.exists() else 0


def test_disk_full_says_so_once_keeps_the_position_and_recovers(tmp_path, small_disk):
    """ENOSPC in the store: one line on stderr and in logs/mass.log naming the file, the reason and
    the kept position; no traceback; the service stays up, retries with backoff, and once space is
    back stores every message exactly once."""
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    appender = FileAppender(transport)
    appender.append(_lines(200))
    proc = _service(tmp_path)
    try:
        assert _wait(lambda: len(_stored(small_disk)) == 200 and _offset(tmp_path) > 0)
        committed = _offset(tmp_path)
        filler = _fill(small_disk, leave=4096)
        appender.append(_lines(3000, start=200))  # far more than the 4 KB left
        log = tmp_path / "logs" / "mass.log"
        assert _wait(lambda: log.exists() and "No space left on device" in log.read_text())
        time.sleep(1.5)  # a retry or two while still full
        assert proc.poll() is None, "the service died on a full disk"
        assert _offset(tmp_path) == committed  # the position stayed behind the data not stored
        filler.unlink()
        assert _wait(lambda: len(_stored(small_disk)) >= 3200, 60)
        assert _wait(lambda: _offset(tmp_path) == transport.stat().st_size)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        appender.close()
    assert proc.returncode == 0, err
    stamps = [(r["station"], r["ts"]) for r in _stored(small_disk)]
    assert len(stamps) == len(set(stamps)) == 3200  # each once, every line parseable
    said = [line for line in err.splitlines() if "No space left on device" in line]
    assert said and "Traceback" not in err
    assert re.search(r"cannot write .*/consumer_stream\.jsonl: No space left on device; position kept at "
                     r"observations\.jsonl byte \d+", said[0])
    assert "storing again" in err
    text = log.read_text()
    assert "position kept at observations.jsonl byte" in text and "Traceback" not in text


def test_read_only_store_is_retried_until_writable(tmp_path, small_disk):
    """A store directory made read-only (the tmpfs remounted ro): EROFS said once, the service waits
    with its position kept, and stores everything once the directory is writable again."""
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    appender = FileAppender(transport)
    appender.append(_lines(300))
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    proc = _service(tmp_path)
    try:
        log = tmp_path / "logs" / "mass.log"
        assert _wait(lambda: log.exists() and "Read-only file system" in log.read_text())
        assert proc.poll() is None and _offset(tmp_path) == 0
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        assert _wait(lambda: len(_stored(small_disk)) >= 300, 60)
        assert _wait(lambda: _offset(tmp_path) == transport.stat().st_size)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], capture_output=True)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        appender.close()
    assert proc.returncode == 0, err
    assert len({r["ts"] for r in _stored(small_disk)}) == 300 == len(_stored(small_disk))
    assert re.search(r"cannot write .*consumer_stream\.jsonl: Read-only file system; position kept at "
                     r"observations\.jsonl byte 0", err)
    assert "Traceback" not in err


def test_stopped_while_full_exits_1_with_one_line_and_reads_it_again_later(tmp_path, small_disk):
    """SIGTERM while the store cannot be written: nothing committed, exit status 1 with the reason;
    the next start stores what was held."""
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    appender = FileAppender(transport)
    appender.append(_lines(500))
    filler = _fill(small_disk, leave=1024)
    proc = _service(tmp_path)
    log = tmp_path / "logs" / "mass.log"
    try:
        assert _wait(lambda: log.exists() and "No space left on device" in log.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "Traceback" not in err
    assert "No space left on device" in err.splitlines()[-1]
    assert json.loads(out.strip().splitlines()[-1])["store_error"].startswith("cannot write")
    assert _offset(tmp_path) == 0
    filler.unlink()
    proc = _service(tmp_path)
    try:
        assert _wait(lambda: len(_stored(small_disk)) >= 500, 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        appender.close()
    assert len({r["ts"] for r in _stored(small_disk)}) == 500


def test_store_holds_what_the_disk_refuses_and_sync_raises_until_written(tmp_path, small_disk):
    store = JsonlStore(small_disk)
    store.append("a.jsonl", [{"i": 0}])
    store.sync()
    filler = _fill(small_disk, leave=0)
    store.append("a.jsonl", [{"i": i, "pad": "p" * 500} for i in range(1, 50)])
    store.append("a.jsonl", [{"i": 50}])
    with pytest.raises(StoreWriteError, match=r"cannot write .*a\.jsonl: No space left on device"):
        store.sync()
    assert store.held_bytes() > 0
    assert [r["i"] for r in read_jsonl(small_disk / "a.jsonl")] == [0]  # the failed write was cut back out
    filler.unlink()
    store.sync()
    store.close()
    assert [r["i"] for r in read_jsonl(small_disk / "a.jsonl")] == list(range(51))


def test_file_transport_producer_holds_its_messages_while_the_disk_is_full(tmp_path, small_disk):
    """The producer side: a batch the transport file cannot take is cut back out and the caller keeps
    it; `run_producer` retries it with backoff until written, none lost or doubled."""
    import threading

    from mass_tui.pipeline import run_producer
    from sources.base import Poll, SourceState

    class Counter:
        name = "counter"

        def __init__(self) -> None:
            self.state = SourceState(self.name)
            self.i = 0

        def poll(self) -> Poll:
            out = Poll()
            for line in _lines(100, start=self.i):
                out.add(line, "s")
            self.i += 100
            return out

        def next_delay(self) -> float:
            return 0.0

    path = small_disk / "observations.jsonl"
    appender = FileAppender(path)
    filler = _fill(small_disk, leave=20_000)
    stop = threading.Event()
    thread = threading.Thread(target=run_producer, args=(Counter(), appender, stop), kwargs={"max_messages": 1000})
    thread.start()
    try:
        assert _wait(lambda: path.stat().st_size > 0)
        time.sleep(1.0)
        assert thread.is_alive()  # waiting with its batch, not dead
        filler.unlink()
        thread.join(30)
    finally:
        stop.set()
        thread.join(10)
        appender.close()
    got = [json.loads(x)["ts"] for x in path.read_bytes().splitlines()]
    assert got == [1_700_000_000 + 60 * i for i in range(1000)]


def test_a_position_file_that_cannot_be_written_is_retried_not_fatal(tmp_path):
    """The transport's directory full (the store is fine): the commit of the position fails, the
    service says so and retries instead of dying, and commits once there is room."""
    with _tmpfs(tmp_path / "data" / "transport", size="1m") as transport_dir:
        transport = transport_dir / "observations.jsonl"
        appender = FileAppender(transport)
        appender.append(_lines(300))
        appender.close()
        filler = _fill(transport_dir, leave=0)
        proc = _service(tmp_path)
        log = tmp_path / "logs" / "mass.log"
        try:
            assert _wait(lambda: log.exists() and "observations.position" in log.read_text()
                         and "No space left on device" in log.read_text())
            assert proc.poll() is None and len(_stored(tmp_path / "data" / "db")) == 300
            filler.unlink()
            assert _wait(lambda: _offset(tmp_path) == transport.stat().st_size, 60)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "storing again" in err


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=40), st.binary(min_size=41, max_size=160))
                .filter(lambda b: b"\n" not in b and b.strip() == b), max_size=12),
       st.integers(1, 7))
def test_property_each_line_is_one_message_however_long(tmp_path_factory, lines, max_lines):
    """Whatever the lines and however they are read (any batch size, a restart after each commit),
    each non-blank line comes out exactly once, in order: whole when within the limit, as its head
    alone when over it; nothing of an over-long line's tail ever comes out as a message."""
    limit = 40
    path = tmp_path_factory.mktemp("t") / "t.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    expected = [line if len(line) <= limit else line[: limit + 1] for line in lines if line.strip()]
    got: list[bytes] = []
    for _ in range(len(lines) + 2):
        tail = FileTail(path, max_line_bytes=limit)
        got.extend(tail.read(max_lines))
        tail.commit()
        tail.close()
    assert got == expected


_FAIL_ONCE = '''
import os
_real = os.fsync
_flag = os.environ["MASS_TEST_FAIL_FLAG"]
def _fsync(fd):
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = ""
    if target.endswith("consumer_stream.jsonl") and not os.path.exists(_flag):
        open(_flag, "w").close()
        raise OSError(5, "Input/output error")
    return _real(fd)
os.fsync = _fsync
'''


def test_a_failed_fsync_ends_the_service_with_its_position_kept_and_a_restart_stores_all_once(tmp_path):
    """EIO from one fsync of the store (injected by a sitecustomize on the service's path: no disk here
    fails on demand): Linux may have dropped those pages, so no later sync can vouch for them. The
    service says so in one line and exits 1 at once (it used to retry for ever, "retry in 30 s", past
    --max-seconds), the position kept; the restart stores every message once and commits."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(_FAIL_ONCE)
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    appender = FileAppender(transport)
    appender.append(_lines(300))
    appender.close()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{inject}:{ROOT}", "MASS_DATA_DIR": str(tmp_path / "data"),
           "MASS_LOG_DIR": str(tmp_path / "logs"), "MASS_TEST_FAIL_FLAG": str(tmp_path / "failed")}
    run = [sys.executable, "-m", "mass_tui", "run", "--headless", "-q", "--max-seconds", "60"]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert (tmp_path / "failed").exists() and done.returncode == 1, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["ended"] == "store_lost"
    said = done.stderr.splitlines()[-1]
    assert re.match(r"mass run: cannot write .*consumer_stream\.jsonl: fsync failed \(Input/output error\): .*"
                    r"position kept at observations\.jsonl byte 0$", said), said
    assert "Traceback" not in done.stderr and _offset(tmp_path) == 0
    env.pop("MASS_TEST_FAIL_FLAG")
    env["PYTHONPATH"] = str(ROOT)
    again = subprocess.run([*run[:-2], "--max-seconds", "5"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    stamps = [(r["station"], r["ts"]) for r in _stored(tmp_path / "data" / "db")]
    assert len(stamps) == len(set(stamps)) == 300
    assert _offset(tmp_path) == transport.stat().st_size


def test_max_seconds_ends_a_service_waiting_for_a_full_disk(tmp_path, small_disk):
    """--max-seconds holds while the store cannot be written: the run ends near it with exit 1 and the
    one line, not after the next 30 s backoff or never."""
    transport = tmp_path / "data" / "transport" / "observations.jsonl"
    appender = FileAppender(transport)
    appender.append(_lines(3000))
    appender.close()
    _fill(small_disk, leave=4096)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
           "MASS_LOG_DIR": str(tmp_path / "logs")}
    done = subprocess.run([sys.executable, "-m", "mass_tui", "run", "--headless", "-q", "--max-seconds", "4"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["ended"] == "max_seconds"
    assert "No space left on device; position kept at" in done.stderr.splitlines()[-1]
