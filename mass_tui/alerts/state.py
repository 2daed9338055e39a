"""Alert state kept in SQLite under the data dir: silences, acknowledgements, open episodes, cooldowns
and the notification log.

One small database (`DATA_DIR/db/alert_state.sqlite3`, stdlib `sqlite3` in
WAL mode) is shared by the UI, the headless service and the `mass silence`
/ `mass ack` commands, each in its own process: WAL lets readers go on while
one writer commits, and `PRAGMA data_version` tells a process cheaply that
another one changed something, so a silence added from the command line
takes effect at the next batch. `synchronous = NORMAL` keeps every commit
across a `kill -9` of the process (only a power loss may take the last
ones back).

Silences cover a span of data time, as Alertmanager's cover wall time:
`starts_at <= t < ends_at`. Expiring one marks it expired (it stops
applying to any time), since its span may lie in the past of a replay.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mass_tui.alerts.matchers import Matcher, matches_all
from sources.schema import iso_utc

FILE_NAME = "alert_state.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    expired_at REAL
);
CREATE TABLE IF NOT EXISTS acks (
    episode TEXT PRIMARY KEY,
    acked_by TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    acked_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    id TEXT PRIMARY KEY,
    station TEXT NOT NULL,
    rule TEXT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cooldowns (
    station TEXT NOT NULL,
    rule TEXT NOT NULL,
    notified_at REAL NOT NULL,
    PRIMARY KEY (station, rule)
);
CREATE TABLE IF NOT EXISTS nflog (
    notice TEXT NOT NULL,
    channel TEXT NOT NULL,
    sent_at REAL NOT NULL,
    PRIMARY KEY (notice, channel)
);
"""

# The notification log only has to outlive a restart that re-reads a batch.
NFLOG_KEEP_SECONDS = 7 * 86400.0


def _seconds(value: Any) -> float:
    """A stored time as a float: NaN for NULL or anything not a number (a hand-edited or damaged row)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class StateError(ValueError):
    """An id that matches no (or more than one) silence or episode."""


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float  # data time, epoch seconds
    ends_at: float
    created_by: str = ""
    comment: str = ""
    created_at: float = 0.0  # wall time
    expired_at: float | None = None  # wall time it was expired, None while it applies

    def covers(self, ts: float) -> bool:
        return self.expired_at is None and self.starts_at <= ts < self.ends_at

    def mutes(self, labels: dict[str, str], ts: float) -> bool:
        return self.covers(ts) and matches_all(self.matchers, labels)

    def status(self, now: float) -> str:
        """expired (by hand), active (covers `now`), pending (starts later) or elapsed (its span is past:
        it still applies to a replay of that span)."""
        if self.expired_at is not None:
            return "expired"
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "elapsed"

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        return {"id": self.id, "matchers": [str(m) for m in self.matchers], "starts_at": iso_utc(self.starts_at),
                "ends_at": iso_utc(self.ends_at), "created_by": self.created_by, "comment": self.comment,
                "created_at": iso_utc(self.created_at),
                "expired_at": iso_utc(self.expired_at) if self.expired_at is not None else None,
                "status": self.status(time.time() if now is None else now)}


@dataclass(frozen=True)
class Ack:
    episode: str
    by: str
    comment: str
    at: float  # wall time


@dataclass
class StoredEpisode:
    id: str
    station: str
    rule: str
    state: str
    body: dict[str, Any] = field(default_factory=dict)
    updated_at: float = 0.0


def _read_only(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """A connection that reads the state at `path` without making a file where this user may not,
    and what it cannot read (None: everything).

    This user may write the state (its file and directory): it is opened as mass opens it, and only
    read; SQLite removes its `-wal` and `-shm` files when the last connection closes, as ever
    (a read-only connection would leave them, owned by whoever listed). Otherwise, with the
    `-shm` file there (a mass running, or killed), SQLite's read-only mode reads the write-ahead
    log through it; without one, the file is read as immutable: all of it once mass stopped, and
    a `-wal` file left with changes in it is said not read (the second value). No file, or one
    without the tables: the empty schema, in memory. Raises sqlite3.Error for what is no state
    file (a directory, a file that is not a database, one this user cannot read)."""
    from os import W_OK, access
    from urllib.parse import quote

    unread = None
    try:
        if not path.exists():
            return _empty_state(), None
        if not path.is_file():
            raise sqlite3.OperationalError("not a file")
        uri = "file:" + quote(str(path.resolve()))
        wal, shm = path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")
        if access(path, W_OK) and access(path.parent, W_OK):
            mode = "mode=rw"
        elif shm.exists():
            mode = "mode=ro"
        else:
            mode = "immutable=1"
            if wal.exists() and wal.stat().st_size > 0:
                unread = (f"its write-ahead log {wal} cannot be read here (no {shm.name} beside it, and the "
                          "directory is not writable): changes a mass still running, or not stopped cleanly, "
                          "had not checkpointed are not listed")
    except OSError as exc:  # a directory this user may not enter
        raise sqlite3.OperationalError(exc.strerror or str(exc)) from None
    db = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=10.0, isolation_level=None, check_same_thread=False)
    try:
        have = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        db.close()
        raise
    if {"silences", "acks", "episodes"} <= have:
        return db, unread
    db.close()
    return _empty_state(), unread


def _empty_state() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.executescript(_SCHEMA)
    return db


class AlertState:
    """The SQLite alert state. Thread-safe (one connection behind a lock); open one per process."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """`read_only`: for the commands that only list (`mass silence list`, `mass alert list`):
        no table is made and nothing cleaned, and a data dir this user cannot write (a copy kept
        for inspection, another user's) is read as it is (`_read_only`); no file reads as an
        empty state."""
        self.path = Path(path)
        self._lock = threading.RLock()
        self.unread: str | None = None  # read-only: what of the state could not be read, said by the caller
        if read_only:
            self._db, self.unread = _read_only(self.path)
            self._version = self._data_version()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("DELETE FROM nflog WHERE sent_at < ?", (time.time() - NFLOG_KEEP_SECONDS,))
        self._version = self._data_version()

    @classmethod
    def in_dir(cls, db_dir: Path, *, read_only: bool = False) -> AlertState:
        return cls(Path(db_dir) / FILE_NAME, read_only=read_only)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AlertState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- change detection ------------------------------------------------
    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def changed(self) -> bool:
        """True once after another process (or connection) committed a change."""
        with self._lock:
            version = self._data_version()
            if version == self._version:
                return False
            self._version = version
            return True

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    # --- silences ----------------------------------------------------------
    def add_silence(self, matchers: Sequence[Matcher], starts_at: float, ends_at: float, *, created_by: str = "",
                    comment: str = "") -> Silence:
        """A new silence over data time [starts_at, ends_at). Raises StateError on an empty or reversed span."""
        if not matchers:
            raise StateError("a silence needs at least one matcher (e.g. station=ndbc-44005)")
        if not ends_at > starts_at:
            raise StateError(f"the silence ends ({iso_utc(ends_at)}) before it starts ({iso_utc(starts_at)})")
        silence = Silence(str(uuid.uuid4()), tuple(matchers), float(starts_at), float(ends_at), created_by, comment,
                          time.time())
        self._write("INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (silence.id, json.dumps([m.to_dict() for m in matchers]), silence.starts_at, silence.ends_at,
                     created_by, comment, silence.created_at))
        return silence

    def silences(self, *, include_expired: bool = False) -> list[Silence]:
        sql = "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, expired_at FROM silences"
        if not include_expired:
            sql += " WHERE expired_at IS NULL"
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at").fetchall()
        return [Silence(r[0], tuple(Matcher.from_dict(m) for m in json.loads(r[1])), _seconds(r[2]), _seconds(r[3]),
                        r[4], r[5], _seconds(r[6]), None if r[7] is None else _seconds(r[7])) for r in rows]

    def _resolve_id(self, table: str, column: str, prefix: str) -> str:
        prefix = prefix.strip()
        if len(prefix) < 4:
            raise StateError(f"id {prefix!r}: give at least 4 characters of it")
        with self._lock:
            rows = self._db.execute(f"SELECT {column} FROM {table} WHERE {column} LIKE ? ESCAPE '\\'",  # noqa: S608
                                    (prefix.replace("%", "\\%").replace("_", "\\_") + "%",)).fetchall()
        if not rows:
            raise StateError(f"no {table[:-1]} with id {prefix!r}")
        if len(rows) > 1:
            raise StateError(f"id {prefix!r} is ambiguous: {', '.join(r[0] for r in rows[:5])}")
        return str(rows[0][0])

    def expire_silence(self, silence_id: str) -> Silence:
        """Expire a silence by id (or a unique prefix of 4+ characters); it stops applying at once."""
        sid = self._resolve_id("silences", "id", silence_id)
        self._write("UPDATE silences SET expired_at = ? WHERE id = ? AND expired_at IS NULL", (time.time(), sid))
        return next(s for s in self.silences(include_expired=True) if s.id == sid)

    # --- acknowledgements -------------------------------------------------
    def ack(self, episode_id: str, by: str = "", comment: str = "", *, exact: bool = False) -> Ack:
        """Acknowledge an open episode (id or unique prefix): no repeats of it until it resolves.
        Raises StateError when no open episode has that id. With `exact`, the id is stored as given:
        a detector episode (`Anomaly.episode`, what the UI acknowledges), which silences the repeats
        of every alert episode that carries it."""
        eid = episode_id if exact else self._resolve_id("episodes", "id", episode_id)
        at = time.time()
        # Acknowledged again without a comment: the earlier comment stays (the newer one replaces it).
        self._write("INSERT INTO acks (episode, acked_by, comment, acked_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(episode) DO UPDATE SET acked_by = excluded.acked_by, acked_at = excluded.acked_at, "
                    "comment = CASE WHEN excluded.comment = '' THEN acks.comment ELSE excluded.comment END",
                    (eid, by, comment, at))
        return self.acks().get(eid, Ack(eid, by, comment, at))

    def unack(self, episode_id: str) -> bool:
        """Take an acknowledgement back (the exact id); True when there was one."""
        return self._write("DELETE FROM acks WHERE episode = ?", (episode_id,)).rowcount > 0

    def acks(self) -> dict[str, Ack]:
        with self._lock:
            rows = self._db.execute("SELECT episode, acked_by, comment, acked_at FROM acks").fetchall()
        return {r[0]: Ack(*r) for r in rows}

    # --- episodes and cooldowns -----------------------------------------------
    def save(self, episodes: Iterable[StoredEpisode], closed: Iterable[str],
             cooldowns: Iterable[tuple[str, str, float]]) -> None:
        """Upsert changed episodes, delete closed ones (and their acks), record cooldowns: one transaction."""
        now = time.time()
        rows = [(e.id, e.station, e.rule, e.state, json.dumps(e.body), now) for e in episodes]
        gone = [(eid,) for eid in closed]
        cools = list(cooldowns)
        if not rows and not gone and not cools:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO episodes (id, station, rule, state, body, updated_at) "
                                     "VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._db.executemany("DELETE FROM episodes WHERE id = ?", gone)
                self._db.executemany("DELETE FROM acks WHERE episode = ?", gone)
                self._db.executemany("INSERT OR REPLACE INTO cooldowns (station, rule, notified_at) VALUES (?, ?, ?)",
                                     cools)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._version = self._data_version()  # our own commit is not news

    def episodes(self) -> list[StoredEpisode]:
        with self._lock:
            rows = self._db.execute("SELECT id, station, rule, state, body, updated_at FROM episodes "
                                    "ORDER BY updated_at").fetchall()
        return [StoredEpisode(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    def cooldowns(self) -> dict[tuple[str, str], float]:
        with self._lock:
            rows = self._db.execute("SELECT station, rule, notified_at FROM cooldowns").fetchall()
        return {(r[0], r[1]): r[2] for r in rows}

    # --- notification log -----------------------------------------------------
    def log_sent(self, notices: Iterable[str], channel: str) -> None:
        now = time.time()
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO nflog (notice, channel, sent_at) VALUES (?, ?, ?)",
                                 [(n, channel, now) for n in notices])

    def sent(self, notices: Sequence[str], channel: str) -> set[str]:
        """Which of `notices` were already delivered through `channel`."""
        found: set[str] = set()
        for i in range(0, len(notices), 500):  # SQLite's bound on parameters per statement
            chunk = notices[i: i + 500]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._db.execute(f"SELECT notice FROM nflog WHERE channel = ? AND notice IN ({marks})",  # noqa: S608
                                        (channel, *chunk)).fetchall()
            found.update(r[0] for r in rows)
        return found
