"""Append-only JSONL files under DATA_DIR/db, written once per batch and fsynced before a commit.

Each file rotates when it would pass `max_bytes` or when the UTC day
changes; rotated files are named `NAME.YYYY-MM-DD.N.jsonl` and deleted after
`retention_days`. A torn last line (a crash mid-write) is skipped by readers
and cut off before the file is appended to again. A full or read-only disk
holds the lines in memory and raises from `sync()`, so positions stay behind;
what is appended after a refused write waits behind it, whatever its file, and
a batch's stream lines and anomalies go to disk together or not at all
(`append_group`), so a rerun after a failed run stores neither twice.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from sources.file_transport import WriteError, append_all, repair_torn_tail
from sources.schema import parse_time
from sources.text import json_bytes

MAX_ROTATED_OPEN = 8  # rotated files waiting for the next sync's fsync; past this, fsynced as they rotate
# Written and not synced past this, the files are synced ahead in a thread (`JsonlStore._sync_ahead`).
SYNC_AHEAD_BYTES = 16 << 20

# Raised by `JsonlStore.sync()` while a file cannot be written: `cannot write PATH: REASON`.
StoreWriteError = WriteError


def sync_lost(path: Path, cause: OSError, call: str = "fsync") -> StoreWriteError:
    """The error of a failed fsync (or fdatasync), for good (`lost` is True): `cannot write PATH: fsync
    failed (REASON); ...`. Linux reports a lost write-back to one fsync only and may drop the pages it
    could not write, so a later fsync succeeds over data that is not on disk (PostgreSQL's "fsyncgate",
    2018; it panics since). Nothing written before it may count as stored again in this process: a
    service ends (`Pipeline._store`) and its restart reads again from the position kept; a replay
    fails, and run again stores what is missing (the duplicate check keeps the rest once)."""
    error = StoreWriteError(path, cause)
    error.strerror = (f"{call} failed ({error.strerror}): what was written since the last good sync may not be on "
                      "disk, so nothing more counts as stored until mass starts again (a restart reads again from "
                      "the last stored position; a replay run again stores what is missing)")
    error.lost = True
    return error


STREAM = "consumer_stream.jsonl"
ANOMALIES = "anomalies.jsonl"
ALERTS = "alerts.jsonl"
REJECTED = "rejected.jsonl"
LABELS = "labels.jsonl"

log = logging.getLogger(__name__)

_ROTATED = re.compile(r"^(?P<stem>.+)\.(?P<day>\d{4}-\d{2}-\d{2})\.(?P<seq>\d+)\.jsonl$")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class JsonlStore:
    """The files under DATA_DIR/db, appended to by whole lines.

    Each `append` is written at once (one unbuffered write per call). A write
    that fails (disk full, read-only, I/O error) is cut back out of the file
    and its lines are held in memory, in order with what follows in any file
    (a file never gets ahead of what was appended to another before it); `flush()`
    tries them again and `sync()` raises `StoreWriteError` until they are on
    disk and fsynced, so the caller keeps its transport position behind. After
    a failed fsync, every `sync()` raises (`sync_lost`): only a restart, which
    reads again from the last stored position, stores again for sure.
    When a file is opened for appending, a torn last line left by a crash is
    cut off first. Safe to use from the producer and consumer threads at once.
    """

    # Held lines past this raise from `append`, so a writer that never syncs (a replay) stops.
    MAX_HELD_BYTES = 64 * 1024 * 1024

    def __init__(
        self,
        db_dir: Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        retention_days: float = 14.0,
        clock: Callable[[], float] = time.time,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.db_dir = Path(db_dir)
        self.db_dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.retention_days = float(retention_days)
        self._clock = clock
        self._redact = redact
        self._lock = threading.RLock()
        self._files: dict[str, IO[bytes]] = {}
        # Files rotated away since the last sync, kept open so that sync fsyncs them too (closing one
        # unsynced would leave its last lines to the kernel's writeback while sync says they are safe);
        # and whether the directory changed (a rename, a new file) since then.
        self._rotated_open: list[tuple[Path, IO[bytes]]] = []
        self._dir_changed = False
        self._sizes: dict[str, int] = {}  # file -> bytes known to be written whole
        self._days: dict[str, str] = {}  # file -> UTC day its current file was started
        # Appends not written yet (a write failed), in the order they were made: groups of (file, data).
        self._held: list[list[tuple[str, bytes]]] = []
        self.error: StoreWriteError | None = None  # the last write failure, until a write succeeds
        self._unsynced = 0  # bytes written since the last sync or sync ahead
        self._ahead: threading.Thread | None = None  # the sync ahead running, if any
        self._ahead_error: StoreWriteError | None = None  # what it failed with: raised by the next sync
        self.lost: StoreWriteError | None = None  # a failed fsync (`sync_lost`): every later sync raises it

    def path(self, name: str) -> Path:
        return self.db_dir / name

    def _file(self, name: str, incoming: int) -> IO[bytes]:
        today = _day(self._clock())
        fh = self._files.get(name)
        if fh is None:
            path = self.path(name)
            if path.exists():
                self._days[name] = _day(path.stat().st_mtime)
                repair_torn_tail(path)
            fh = self._files[name] = open(path, "ab", buffering=0)  # noqa: SIM115 - kept open across batches
            self._sizes[name] = fh.seek(0, 2)
            self._days.setdefault(name, today)
        size = self._sizes[name]
        if size and (size + incoming > self.max_bytes or self._days.get(name) != today):
            fh = self._rotate(name, today)
        return fh

    def _rotate(self, name: str, today: str) -> IO[bytes]:
        old = self._files.pop(name)
        stem = name.removesuffix(".jsonl")
        day = self._days.get(name, today)
        seq = 1 + max((int(m["seq"]) for p in self.rotated(name) if (m := _ROTATED.match(p.name))
                       and m["day"] == day), default=0)
        target = self.db_dir / f"{stem}.{day}.{seq}.jsonl"
        os.replace(self.path(name), target)
        self._rotated_open.append((target, old))  # fsynced by the next sync, not waited for here
        self._dir_changed = True
        if len(self._rotated_open) > MAX_ROTATED_OPEN:  # a store rotating faster than it syncs: sync them now
            self._sync_rotated()
        self._expire(name, today)
        self._days[name] = today
        fh = self._files[name] = open(self.path(name), "ab", buffering=0)  # noqa: SIM115
        self._sizes[name] = 0
        return fh

    def _expire(self, name: str, today: str) -> None:
        cutoff = (datetime.strptime(today, "%Y-%m-%d") - timedelta(days=self.retention_days)).strftime("%Y-%m-%d")
        for path in self.rotated(name):
            m = _ROTATED.match(path.name)
            if m and m["day"] < cutoff:
                path.unlink(missing_ok=True)
                log.info("retention: removed %s", path.name)

    def rotated(self, name: str) -> list[Path]:
        """Rotated files of `name`, oldest first."""
        stem = name.removesuffix(".jsonl")
        found = []
        for path in self.db_dir.glob(f"{stem}.*.jsonl"):
            m = _ROTATED.match(path.name)
            if m and m["stem"] == stem:
                found.append((m["day"], int(m["seq"]), path))
        return [p for _, _, p in sorted(found)]

    def files(self, name: str) -> list[Path]:
        """Every file of `name`, oldest first, the live one last."""
        live = self.path(name)
        return self.rotated(name) + ([live] if live.exists() else [])

    def append(self, name: str, records: Iterable[dict[str, Any]]) -> int:
        lines = self.encoded(records)
        self.append_lines(name, lines)
        return len(lines)

    def redacted(self, value: Any) -> Any:
        """`value` (a record, a string) as `append` writes it: every configured secret masked."""
        redact = self._redact or _default_redact
        return _redacted(value, redact) if redact else value

    def encoded(self, records: Iterable[dict[str, Any]]) -> list[bytes]:
        """The stored lines of `records` (without newlines), redacted as `append` writes them."""
        redact = self._redact or _default_redact
        if redact:  # quarantined bodies and delivery errors may echo a secret (the stream: numbers, names)
            records = (_redacted(r, redact) for r in records)
        records = list(records)
        try:
            return [orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) for r in records]
        except TypeError:  # a lone surrogate in some text: written escaped (`\ud800`), the batch not lost
            return [json_bytes(r, orjson.OPT_SERIALIZE_NUMPY) for r in records]

    def append_lines(self, name: str, lines: list[bytes]) -> None:
        """Append whole lines now; if the disk refuses them they are held and tried again later
        (raises `StoreWriteError` only once more than MAX_HELD_BYTES are held)."""
        if lines:
            self.append_data(name, b"\n".join([*lines, b""]))

    def append_data(self, name: str, data: bytes) -> None:
        """`append_lines` for lines already joined: `data` is whole lines, each ending in a newline
        (a batch's lines made as one bytes are written without copying them again)."""
        if data:
            self.append_group([(name, data)])

    def append_group(self, parts: list[tuple[str, bytes]]) -> None:
        """Append several files' data (whole lines, each ending in a newline) as one: all of it
        reaches the disk, or none of it (a part the disk refuses cuts the parts before it back out,
        and the whole group is held and tried again as one). A batch's stream lines and its
        anomalies are one group: a rerun, which skips the rows the stream has, then stores each
        anomaly once. Raises `StoreWriteError` only once more than MAX_HELD_BYTES are held."""
        parts = [(name, data) for name, data in parts if data]
        if not parts:
            return
        with self._lock:
            if self._held or not self._write_group(parts):  # behind a failed write: keep the order
                self._held.append(parts)
            elif self._unsynced >= SYNC_AHEAD_BYTES:
                self._sync_ahead()
            if self.held_bytes() > self.MAX_HELD_BYTES:
                raise self.error or StoreWriteError(self.path(parts[0][0]),
                                                    OSError(errno.EIO, "held data over the limit"))

    def _write_group(self, parts: list[tuple[str, bytes]]) -> bool:
        """Write every part, or (False, `self.error` set) cut those written back out. A part that
        cannot be cut back stays written and leaves the group, so it is never written twice."""
        done: list[tuple[int, str, int]] = []  # (index in parts, file, its size before the part)
        for k, (name, data) in enumerate(parts):
            start = self._write(name, data)
            if start is None:
                for j, written, size in reversed(done):
                    try:
                        os.ftruncate(self._files[written].fileno(), size)
                        self._sizes[written] = size
                    except OSError as exc:
                        log.error("cannot cut %s back to %d bytes after a refused write (%s): its part of "
                                  "the group stays written", self.path(written), size, exc)
                        del parts[j]
                return False
            done.append((k, name, start))
        return True

    def _write(self, name: str, data: bytes) -> int | None:
        """Write `data` whole at the end of `name`: the file's size before it, or None (and
        `self.error` set) if it could not be written."""
        try:
            fh = self._file(name, len(data))
            start = self._sizes[name]
            append_all(fh.fileno(), data, start)
        except OSError as exc:
            self.error = exc if isinstance(exc, StoreWriteError) else StoreWriteError(self.path(name), exc)
            return None
        self._sizes[name] = start + len(data)
        self._unsynced += len(data)
        return start

    def _sync_ahead(self) -> None:
        """fdatasync what is written so far in a thread while the caller writes on, so that the next
        `sync` has only what came since to wait for (called with the lock held).

        Writes reach the page cache at once; a virtual machine's disk takes them for good only at
        an fsync, ~1.7 ms a MB on the VM this was measured on: the end of a bulk replay waited
        0.17-0.24 s on its one sync of ~100 MB. The thread syncs duplicates of the files'
        descriptors, so a file rotated and closed meanwhile is still the one synced. A failure is
        kept and raised by the next `sync` and every one after (`sync_lost`: Linux reports a lost
        write-back to one fsync only, so it must not be dropped here). Nothing counts as stored
        because of it: `sync` still fsyncs every file itself."""
        if self._ahead is not None and self._ahead.is_alive():
            return  # one at a time: the next write past the mark starts the next
        self._unsynced = 0  # tried again past the next SYNC_AHEAD_BYTES, whatever becomes of this one
        fds: list[tuple[int, Path]] = []
        try:
            for path, fh in [*((self.path(n), fh) for n, fh in self._files.items()), *self._rotated_open]:
                fds.append((os.dup(fh.fileno()), path))
            thread = threading.Thread(target=self._datasync, args=(fds,), name="mass-store-sync-ahead", daemon=True)
            thread.start()
        except (OSError, RuntimeError) as exc:  # no descriptor or thread to be had: the next sync does it all
            log.debug("no sync ahead: %s", exc)
            for fd, _ in fds:
                os.close(fd)
            return
        self._ahead = thread

    def _datasync(self, fds: list[tuple[int, Path]]) -> None:
        for fd, path in fds:
            try:
                os.fdatasync(fd)
            except OSError as exc:
                if self._ahead_error is None:
                    self._ahead_error = sync_lost(path, exc, "fdatasync")
            finally:
                try:
                    os.close(fd)  # every duplicate closed, whatever another one's close says
                except OSError as exc:  # a close may report a lost write-back too (NFS)
                    if self._ahead_error is None:
                        self._ahead_error = sync_lost(path, exc, "close after fdatasync")

    def _join_ahead(self) -> StoreWriteError | None:
        """Wait for the sync ahead running, if any (on descriptors of its own: not cut short); what
        one failed with since the last call, if anything."""
        if self._ahead is not None:
            self._ahead.join()
            self._ahead = None
        error, self._ahead_error = self._ahead_error, None
        return error

    def held_bytes(self) -> int:
        """Bytes written by callers that are not on disk yet."""
        with self._lock:
            return sum(len(data) for group in self._held for _, data in group)

    def flush(self) -> None:
        """Try again to write what an earlier write could not: everything held as one group (each
        file's data joined, in order). Does not raise: `sync()` does."""
        with self._lock:
            if self._held:
                joined: dict[str, list[bytes]] = {}
                for group in self._held:
                    for name, data in group:
                        joined.setdefault(name, []).append(data)
                group = [(name, b"".join(pieces)) for name, pieces in joined.items()]
                written = self._write_group(group)
                self._held = [] if written else [group]  # the group less any part left written
                if not written:
                    return
            self.error = None

    def sync(self) -> None:
        """Write everything held and fsync: what a transport offset may be committed after.
        Raises `StoreWriteError` (`cannot write PATH: REASON`) while that is not possible, and for
        good once an fsync failed (`sync_lost`)."""
        with self._lock:
            self.flush()
            if (error := self._join_ahead()) is not None:
                self.lost = error
            if self.lost is not None:
                raise self.lost
            if self.error is not None:
                raise self.error
            self._unsynced = 0
            self._sync_rotated()
            for name, fh in self._files.items():
                self._fsync(fh.fileno(), self.path(name))
            if self._dir_changed:  # the rotations' renames and new files (POSIX asks for the directory's fsync)
                fd = os.open(self.db_dir, os.O_RDONLY)
                try:
                    self._fsync(fd, self.db_dir)
                finally:
                    os.close(fd)
                self._dir_changed = False

    def _sync_rotated(self) -> None:
        """fsync and close the files rotated away since the last sync; raises StoreWriteError."""
        while self._rotated_open:
            path, fh = self._rotated_open[0]
            self._fsync(fh.fileno(), path)
            fh.close()
            del self._rotated_open[0]

    def _fsync(self, fd: int, path: Path) -> None:
        """fsync `fd` (`path`'s); a failure is kept for good as `self.lost` (`sync_lost`) and raised."""
        try:
            os.fsync(fd)
        except OSError as exc:
            self.lost = sync_lost(path, exc)
            raise self.lost from None

    def close(self) -> None:
        """Flush and close; lines that still cannot be written are logged as dropped (their
        transport position was not committed, so they are read again after a restart)."""
        with self._lock:
            self.flush()
            if self._held:
                log.error("%s; %d bytes not stored (read again from the transport at the next start)",
                          self.error, self.held_bytes())
                self._held.clear()
            if (error := self._join_ahead()) is not None:
                log.error("%s (syncing ahead of the close)", error)
            self._unsynced = 0
            for fh in self._files.values():
                fh.close()
            self._files.clear()
            for _, fh in self._rotated_open:
                fh.close()
            self._rotated_open.clear()

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    """`value` with every string in it redacted, nested tables and lists included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, redact) for v in value]
    return value


_default_redact: Callable[[str], str] | None = None


def redact_by_default(redact: Callable[[str], str] | None) -> None:
    """The redaction every store without its own applies to the records given to `append` (rejected
    bodies, anomalies, alert notices and delivery errors): set once per process from the secrets."""
    global _default_redact
    _default_redact = redact


def read_jsonl(path: Path, stats: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """Records of one JSONL file. A torn last line is skipped (counted as "torn");
    a bad line in the middle is skipped and counted as "corrupt"."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        record = _whole(line, i == last, i, stats, path)
        if record is not None:
            yield record


def last_records(path: Path, tail_bytes: int = 1 << 16) -> Iterator[dict[str, Any]]:
    """The complete records at the end of a JSONL file, newest first, reading only its tail
    (twice as much each time until a complete line turns up)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        span = tail_bytes
        while True:
            start = max(0, size - span)
            fh.seek(start)
            lines = fh.read(size - start).split(b"\n")
            if start > 0:
                lines = lines[1:]  # the first piece may be the end of a line cut in two
            records = []
            for line in reversed(lines):
                try:
                    record = orjson.loads(line) if line.strip() else None
                except orjson.JSONDecodeError:
                    continue  # torn (the last line after a crash) or corrupt
                if isinstance(record, dict):
                    records.append(record)
            if records or start == 0:
                yield from records
                return
            span *= 2


def newest_ts(store: JsonlStore, name: str = STREAM) -> float | None:
    """The `ts` (epoch seconds) of the last complete record of `name` with a readable time; only the
    files' tails are read. None for an empty store."""
    for path in reversed(store.files(name)):
        for record in last_records(path):
            try:
                return parse_time(record.get("ts"))
            except ValueError:
                continue
    return None


def store_key(line: bytes) -> tuple[str, bytes] | None:
    """(station, ts text) of a line as the store writes it, `{"ts":"…","station":"…",…`, cut out of
    the bytes without parsing the rest; None for any other line (or a name with an escape). The
    time is the bytes as written: one with an escape (never written by the store) reads as none."""
    if not line.startswith(b'{"ts":"'):
        return None
    end = line.find(b'"', 7)
    if end < 0 or not line.startswith(b',"station":"', end + 1):
        return None
    start = end + 13
    stop = line.find(b'"', start)
    name = line[start:stop]
    if stop < 0 or b"\\" in name:
        return None  # an escaped character: leave it to the parser
    try:
        return name.decode(), line[7:end]
    except UnicodeDecodeError:
        return None


def cached_time(raw: Any, times: dict[Any, float]) -> float:
    """`sources.schema.parse_time` of a stored `ts` (the text's bytes as `store_key` cuts them, a
    str, a number); a text or number already met is read from `times` (one instant is many
    stations' time), which is emptied past 65,536 entries. Raises ValueError (bytes that are no
    UTF-8 included) for what is no time."""
    cacheable = type(raw) in (bytes, str, int, float)
    ts = times.get(raw) if cacheable else None
    if ts is None:
        ts = parse_time(raw.decode() if type(raw) is bytes else raw)
        if cacheable:
            if len(times) > 65536:
                times.clear()
            times[raw] = ts
    return ts


def _timed_records(path: Path, stats: dict[str, int] | None, times: dict[Any, float]
                   ) -> Iterator[tuple[float, Any, bytes | dict[str, Any]]]:
    """(ts, station, record) of each record of a JSONL file with a usable `ts`, as `read_jsonl` reads
    them, except that a whole line in the store's own layout (`store_key`) is given as its bytes,
    parsed only if the caller keeps it (`_parsed`): most of a restart's reading is of lines too
    old to keep, and parsing them was half its cost. `times`: `cached_time`'s cache."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        key = store_key(line) if i < last else None  # a last line without its newline is parsed (torn?)
        for _ in range(2):  # a second time parsed whole when the time read by key is none
            if key is not None:
                station, raw = key
            else:
                record = _whole(line, i == last, i, stats, path)
                if record is None:
                    break
                raw, station = record.get("ts"), record.get("station")
            try:
                ts = cached_time(raw, times)
            except ValueError:
                if key is not None:  # an escape, or bytes that are no text: as the parser reads it
                    key = None
                    continue
                break
            yield ts, station, (line if key is not None else record)
            break


def _whole(line: bytes, last: bool, i: int, stats: dict[str, int] | None, path: Path) -> dict[str, Any] | None:
    """The record of one line as `read_jsonl` reads it (None: blank, not JSON, counted, or not an object)."""
    if not line.strip():
        return None
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        _skipped(stats, "torn" if last else "corrupt", i, path)
        return None
    return record if isinstance(record, dict) else None


def _skipped(stats: dict[str, int] | None, kind: str, i: int | None, path: Path) -> None:
    """Count and log a line skipped (`i`: its index in the file, when known)."""
    if stats is not None:
        stats[kind] = stats.get(kind, 0) + 1
    if i is None:
        log.warning("a %s line of %s skipped", kind, path)
    else:
        log.warning("%s line %d of %s skipped", kind, i + 1, path)


def _parsed(items: Iterable[bytes | dict[str, Any]], stats: dict[str, int] | None, path: Path) -> list[dict]:
    """The records of `_timed_records`' items, the lines given as bytes parsed now (a line that is
    not JSON after all is counted corrupt and skipped)."""
    out = []
    for item in items:
        if isinstance(item, bytes):
            try:
                item = orjson.loads(item)
            except orjson.JSONDecodeError:
                _skipped(stats, "corrupt", None, path)
                continue
        out.append(item)
    return out


def read_recent(store: JsonlStore, name: str, since_ts: float, stats: dict[str, int] | None = None,
                since_of: Callable[[float], float] | None = None) -> list[dict]:
    """Records of `name` whose `ts` is at or after since_ts, oldest first.

    With `since_of`, a record of a station is kept from `since_of(newest)` on, `newest` being that
    station's newest `ts` in the files read, so a station that lags the others (it stopped earlier,
    or a file laid out station after station was cut short) keeps its own recent span; `since_ts`
    (`since_of` of the newest time of all) still decides how far back the files are read: whole
    files, newest first, down to the first holding a time before it. A station whose last record
    is in an older file than that is not read. Lines in the store's own layout are parsed whole
    only when kept (`_timed_records`): such a line that is not JSON past its time and station
    (the store writes whole lines: a hand edit), or names a second station later, counts towards
    the newest and oldest times as its time and first station say."""
    out: list[dict] = []
    newest: dict[str, float] = {}
    times: dict[Any, float] = {}
    for path in reversed(store.files(name)):
        timed: list[tuple[float, Any, bytes | dict[str, Any]]] = []
        oldest = None
        for ts, station, record in _timed_records(path, stats, times):
            oldest = ts if oldest is None else min(oldest, ts)
            if since_of is None:
                if ts >= since_ts:
                    timed.append((ts, station, record))
                continue
            timed.append((ts, station, record))
            if isinstance(station, str) and not ts <= newest.get(station, -math.inf):
                newest[station] = ts
        if since_of is None:
            chunk = [record for _ts, _station, record in timed]
        else:
            since = {station: since_of(ts) for station, ts in newest.items()}
            chunk = [record for ts, station, record in timed
                     if ts >= (since.get(station, since_ts) if isinstance(station, str) else since_ts)]
        out[:0] = _parsed(chunk, stats, path)
        if oldest is not None and oldest < since_ts:
            break
    return out


def open_store(config: Any) -> JsonlStore:
    """The store of a configuration (`mass_tui.config.Config`): its data dir, rotation size and
    retention, with every configured secret redacted from what is written (the alert journal's too)."""
    from sources.text import Redactor

    redact_by_default(Redactor(config.secret_values()))
    return JsonlStore(
        config.db_dir,
        max_bytes=int(config.get("store.max_mb") * 1024 * 1024),
        retention_days=config.get("store.retention_days"),
        redact=Redactor(config.secret_values()),
    )
