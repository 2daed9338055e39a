"""PostgreSQL/TimescaleDB as a sink that follows the JSONL store.

The sink never blocks ingestion: `write()` only wakes its thread. The thread
reads what the JSONL sink has written since its high-water mark (the
stream, anomalies, alerts and aggregates files, rotated ones in order),
loads it in batches (COPY into a temporary staging table, then INSERT ...
ON CONFLICT on each table's key; see `mass_tui.pg_schema`) and moves the
high-water mark in the same transaction (table `mass_position`: file,
inode, byte offset per stream). So:

- PostgreSQL has a row exactly once: a batch and its position commit
  together, and a re-sent line (a crash between the two, a replay, a new
  store) meets its key and is skipped (aggregates: replaced).
- A database that is down costs nothing but lag: the backlog is the store
  itself, which is durable and bounded by `store.retention_days`; the thread
  holds at most `chunk_bytes` of it in memory, retries with exponential
  backoff (1 s doubling to 30 s, with jitter) and, once the database answers,
  catches up from its high-water mark. Its state (up, catching up with the
  bytes behind, down with the error and next retry) goes to `on_status` (the
  UI's status bar), the log, and Prometheus (`mass_sink_up`,
  `mass_sink_lag_bytes`, `mass_sink_rows_total`).
- PostgreSQL is not on the commit path (`durable = False`): the transport
  position waits for the fsynced JSONL store only, because the store is what
  the sink replays from; a slow or absent database must not stop ingestion.

psycopg 3: https://www.psycopg.org/psycopg3/docs/basic/copy.html;
ON CONFLICT: https://www.postgresql.org/docs/current/sql-insert.html.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from mass_tui import pg_schema
from mass_tui.aggregates import expand
from mass_tui.config import mask_url
from mass_tui.sinks.aggregates import AGGREGATES
from mass_tui.sinks.follow import Position, lag_bytes, read_chunk
from mass_tui.store import ALERTS, ANOMALIES, STREAM, JsonlStore
from sources.schema import iso_utc, parse_time
from sources.variables import REGISTRY

if TYPE_CHECKING:
    from mass_tui.scored import BatchResult

log = logging.getLogger(__name__)

# Stored stream -> the table its lines go to (aggregates: "window" lines; "daily" lines go to daily_summary).
STREAMS = {STREAM: "observations", ANOMALIES: "anomalies", ALERTS: "alerts", AGGREGATES: "aggregates"}

_TIMES = {"ts", "end", "min_ts", "max_ts", "gust_max_ts", "temp_min_ts", "temp_max_ts", "anomaly_ts",
          "episode_start"}
_JSON = {"tags", "anomaly_score", "episode"}
_INTS = {"count", "late", "readings", "observations"}
_BOOLS = {"final"}
_NUMBERS = {*REGISTRY, "lat", "lon", "value", "score", "mean", "min", "max", "sum", "gust_max", "wind_max",
            "temp_min", "temp_max", "temp_mean", "precip_total", "pressure_min", "pressure_max", "pressure_range"}


def split_url(url: str) -> tuple[str, str | None]:
    """(libpq URL, schema): a `schema=` query parameter is ours, not libpq's, and is taken out."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), schema or None


def _value(column: str, value: Any) -> Any:
    """A stored field as its column takes it; anything else is NULL, so one odd value cannot stop a batch."""
    if value is None:
        return None
    if column in _TIMES:
        try:
            seconds = parse_time(value)
        except (ValueError, TypeError):
            return None
        return value if isinstance(value, str) else iso_utc(seconds)  # a time we wrote is kept as it is
    if column in _JSON:
        return orjson.dumps(value).decode() if isinstance(value, dict | list) else None
    if column in _BOOLS:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if column in _INTS:
        return int(value) if isinstance(value, int | float) and float(value).is_integer() else None
    if column in _NUMBERS:
        return float(value) if isinstance(value, int | float) and value == value else None
    return value if isinstance(value, str) else str(value)


def rows_of(name: str, data: bytes, windows: Collection[str] | None = None) -> tuple[dict[str, list[tuple]], int]:
    """Lines of stored stream `name` -> rows per table (columns as `pg_schema.TABLES`), and lines skipped
    (not JSON, or without a key field). `windows`: the aggregate window sizes to keep (None: all)."""
    out: dict[str, list[tuple]] = {}
    skipped = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            skipped += 1
            continue
        if not isinstance(record, dict):
            skipped += 1
            continue
        if windows is not None and record.get("kind") == "windows" and record.get("window") not in windows:
            continue  # a window size not sent to the database (store.postgres_windows)
        for item in expand(record) if name == AGGREGATES else (record,):
            table = STREAMS[name]
            if table == "aggregates" and item.get("kind") == "daily":
                table = "daily_summary"
            index, key = _LAYOUT[table]
            row: list[Any] = [None] * len(index)
            for field, value in item.items():  # only the fields a line has: most variables are absent
                i = index.get(field)
                if i is not None and value is not None:
                    row[i] = _value(field, value)
            if any(row[i] is None for i in key):
                skipped += 1
                continue
            out.setdefault(table, []).append(tuple(row))
    return out, skipped


# table -> (column -> position, positions of the key columns)
_LAYOUT = {table: ({c: i for i, c in enumerate(columns)}, [columns.index(k) for k in key])
           for table, (columns, key, _) in pg_schema.TABLES.items()}


class PostgresSink:
    """The sink (see the module docstring). `url`: postgresql://USER@HOST:PORT/DB[?schema=NAME];
    `password`: PGPASSWORD from .env; `on_status(name, text)` hears state changes ("up", "catching up
    (N MB behind)", "DOWN (error) retry HH:MM:SS"); `windows`: the aggregate window sizes it loads
    (None: all); `store_id` names this store in `mass_position` (default: host and store path)."""

    name = "postgresql"
    durable = False
    wants_series = False

    def __init__(self, url: str, store: JsonlStore, *, password: str | None = None, metrics: Any = None,
                 on_status: Callable[[str, str], None] | None = None, chunk_bytes: int = 4 << 20,
                 poll_seconds: float = 1.0, max_backoff: float = 30.0, drain_seconds: float = 60.0,
                 store_id: str | None = None, windows: Collection[str] | None = None, start: bool = True) -> None:
        self.url, self.schema = split_url(url)
        self.shown_url = mask_url(url)
        self.store = store
        self.windows = None if windows is None else set(windows)
        self.password = password
        self.on_status = on_status
        self.chunk_bytes = chunk_bytes
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self.drain_seconds = drain_seconds
        self.store_id = store_id or f"{socket.gethostname()}:{Path(store.db_dir).resolve()}"
        self.positions: dict[str, Position | None] = {}
        self.rows: dict[str, int] = {}  # table -> rows inserted (or replaced)
        self.lines = 0  # stored lines sent
        self.skipped = 0
        self.up = False
        self.down_since: float | None = None
        self.last_error = ""
        self.next_retry: float | None = None
        self.lag = 0
        self.schema_info: dict[str, Any] = {}
        self._status = ""
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._metrics = _SinkMetrics(metrics) if metrics is not None else None
        self._thread = threading.Thread(target=self._run, name="postgresql-sink", daemon=True)
        if start:
            self._thread.start()

    # --- the Sink interface (engine thread) ---------------------------------
    def write(self, scored: BatchResult) -> None:
        self._wake.set()  # the JSONL sink has written the batch; the thread reads it from there

    def sync(self) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        """Send what the store holds (up to `drain_seconds` while the database answers), then stop."""
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.drain_seconds if timeout is None else timeout)
        if self._thread.is_alive():
            log.warning("PostgreSQL sink: stopped %d bytes behind; the next start catches up", self.lag)

    def summary(self) -> dict[str, Any]:
        return {"url": self.shown_url, "up": self.up, "rows": dict(sorted(self.rows.items())), "lines": self.lines,
                # down, `lag` is as of the last batch sent (0 if it never connected): what the store
                # holds beyond the sink's position is measured now instead
                "skipped": self.skipped, "lag_bytes": self.lag if self.up else self.behind(),
                **({"last_error": self.last_error}
                                                                  if self.last_error else {})}

    def behind(self) -> int:
        """Bytes of the store not yet in the database, measured now (`lag` is as of the last batch sent)."""
        return sum(lag_bytes(self.store, name, self.positions.get(name)) for name in STREAMS)

    def status_text(self) -> str:
        if not self.up:
            when = time.strftime("%H:%M:%S", time.localtime(self.next_retry)) if self.next_retry else "?"
            return f"DOWN ({self.last_error[:40]}) retry {when}" if self.last_error else "connecting"
        if self.lag > self.chunk_bytes:
            return f"catching up ({self.lag / 1e6:.1f} MB behind)"
        return "up"

    # --- the thread -----------------------------------------------------------
    def _run(self) -> None:
        delay = 1.0
        conn = None
        while True:
            closing = self._closing.is_set()  # once closing, a failed try is the last one
            try:
                if conn is None:
                    conn = self._connect()
                    delay = 1.0
                moved = self._pump(conn)
                self._publish()
                if moved:
                    continue
                if closing:
                    break
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect with backoff, never stop ingestion
                conn = self._disconnect(conn)
                self._down(exc, delay)
                if closing:
                    break  # the next start catches up from the high-water mark
                self._closing.wait(delay * random.uniform(0.8, 1.2))  # close() cuts the wait short
                delay = min(delay * 2.0, self.max_backoff)
        self._disconnect(conn)

    def _connect(self) -> Any:
        import psycopg

        kwargs: dict[str, Any] = {"connect_timeout": 5, "application_name": "mass"}
        if self.password:
            kwargs["password"] = self.password
        conn = psycopg.connect(self.url, **kwargs)
        try:
            if self.schema:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {pg_schema.quote(self.schema)}")
                conn.execute(f"SET search_path TO {pg_schema.quote(self.schema)}")
                conn.commit()
            self.schema_info = pg_schema.migrate(conn, self.schema)
            for table in pg_schema.TABLES:
                conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} (LIKE {table}, _line bigint) "
                             "ON COMMIT DELETE ROWS")
            conn.commit()
            self.positions = {name: None for name in STREAMS}
            for stream, file, inode, offset in conn.execute(
                    'SELECT stream, file, inode, "offset" FROM mass_position WHERE store = %s', (self.store_id,)):
                if stream in self.positions:
                    self.positions[stream] = Position(file, inode, offset)
            conn.commit()
        except BaseException:
            conn.close()
            raise
        was_down = self.down_since is not None
        self.up, self.down_since, self.last_error, self.next_retry = True, None, "", None
        log.info("PostgreSQL sink %s: connected%s (schema version %s%s)", self.shown_url,
                 " again, catching up from the store" if was_down else "", self.schema_info.get("to"),
                 ", TimescaleDB hypertables" if self.schema_info.get("timescaledb") else "")
        return conn

    def _disconnect(self, conn: Any) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):  # it is going away anyway
                conn.close()
        return None

    def _down(self, exc: BaseException, delay: float) -> None:
        error = " ".join(str(exc).split()) or type(exc).__name__
        first = self.down_since is None or error != self.last_error
        self.up = False
        self.down_since = self.down_since or time.time()
        self.last_error = error
        self.next_retry = time.time() + delay
        (log.warning if first else log.debug)("PostgreSQL sink %s down: %s; retrying in %.0f s", self.shown_url,
                                              error, delay)
        self._publish()

    def _pump(self, conn: Any) -> int:
        """Send one chunk of each stream that has new lines; returns the bytes sent."""
        moved = 0
        for name in STREAMS:
            pos = self.positions.get(name)
            data, new = read_chunk(self.store, name, pos, self.chunk_bytes)
            if new is None or (not data and new == pos):
                continue
            tables, skipped = rows_of(name, data, self.windows)
            with conn.transaction():
                inserted = {table: self._load(conn, table, rows) for table, rows in tables.items()}
                conn.execute(
                    'INSERT INTO mass_position (store, stream, file, inode, "offset", updated) '
                    "VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT (store, stream) DO UPDATE SET "
                    'file = EXCLUDED.file, inode = EXCLUDED.inode, "offset" = EXCLUDED."offset", updated = now()',
                    (self.store_id, name, new.file, new.inode, new.offset))
            self.positions[name] = new
            self.lines += sum(len(rows) for rows in tables.values())
            self.skipped += skipped
            for table, n in inserted.items():
                self.rows[table] = self.rows.get(table, 0) + n
                if self._metrics is not None:
                    self._metrics.rows.labels(self.name, table).inc(n)
            moved += len(data)
        self.lag = self.behind()
        return moved

    def _load(self, conn: Any, table: str, rows: list[tuple]) -> int:
        """COPY rows into the staging table, then insert what the table lacks; returns rows inserted."""
        columns, key, on_conflict = pg_schema.TABLES[table]
        if on_conflict == "merge":
            rows = merged_rows(rows, columns, key)
        cols = ", ".join(pg_schema.quote(c) for c in columns)
        with conn.cursor() as cur:
            with cur.copy(f"COPY stage_{table} ({cols}, _line) FROM STDIN") as copy:
                for i, row in enumerate(rows):
                    copy.write_row((*row, i))
            keys = ", ".join(pg_schema.quote(c) for c in key)
            action = _conflict_action(table, columns, key, on_conflict)
            # DISTINCT ON: the last of a key within one batch, so no row is affected twice by one INSERT.
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM (SELECT DISTINCT ON ({keys}) * "
                        f"FROM stage_{table} ORDER BY {keys}, _line DESC) AS s ON CONFLICT ({keys}) {action}")
            return max(cur.rowcount, 0)

    def _publish(self) -> None:
        text = self.status_text()
        if self._metrics is not None:
            self._metrics.up.labels(self.name).set(1 if self.up else 0)
            self._metrics.lag.labels(self.name).set(self.lag)
        if text != self._status:
            self._status = text
            if self.on_status is not None:
                self.on_status(self.name, text)


def merged_rows(rows: list[tuple], columns: list[str], key: list[str]) -> list[tuple]:
    """The rows of one batch with the same key as one row, in the place of the first: each column the
    last value given (NULL gives none), jsonb objects merged key by key. The same row as the table's
    ON CONFLICT merge makes of them one batch after another; within one INSERT a key may meet only
    one row, and the store writes a second report for an instant with its new values only (ASOS's
    GRB 06:53 with the rain), so keeping only the last line of a key would lose the first's."""
    at = [columns.index(k) for k in key]
    if len({tuple(row[i] for i in at) for row in rows}) == len(rows):
        return rows
    json_at = {i for i, c in enumerate(columns) if c in _JSON}
    index: dict[tuple, int] = {}
    out: list[list[Any]] = []
    for row in rows:
        k = tuple(row[i] for i in at)
        j = index.get(k)
        if j is None:
            index[k] = len(out)
            out.append(list(row))
            continue
        first = out[j]
        for i, v in enumerate(row):
            if v is None:
                continue
            if i in json_at and first[i] is not None:
                old, new = orjson.loads(first[i]), orjson.loads(v)
                first[i] = orjson.dumps({**old, **new}).decode() if isinstance(old, dict) and isinstance(
                    new, dict) else v
            else:
                first[i] = v
    return [tuple(r) for r in out]


def _conflict_action(table: str, columns: list[str], key: list[str], how: str) -> str:
    """The ON CONFLICT action: nothing, replace the row (update), or merge what the new row carries."""
    if how == "nothing":
        return "DO NOTHING"
    rest = [c for c in columns if c not in key]
    q = pg_schema.quote
    if how == "update":
        return f"DO UPDATE SET ({', '.join(map(q, rest))}) = ({', '.join('EXCLUDED.' + q(c) for c in rest)})"
    merged = []
    for c in rest:
        new, old = f"EXCLUDED.{q(c)}", f"{table}.{q(c)}"
        if c in _JSON:  # jsonb objects: the new keys over the old ones
            merged.append(f"CASE WHEN {new} IS NULL THEN {old} WHEN {old} IS NULL THEN {new} ELSE {old} || {new} END")
        else:
            merged.append(f"COALESCE({new}, {old})")
    olds = ", ".join(f"{table}.{q(c)}" for c in rest)
    # A re-sent row changes nothing and writes nothing.
    return (f"DO UPDATE SET ({', '.join(map(q, rest))}) = ({', '.join(merged)}) "
            f"WHERE ROW({', '.join(merged)}) IS DISTINCT FROM ROW({olds})")


class _SinkMetrics:
    """The sink's Prometheus series, registered on the service's registry."""

    def __init__(self, metrics: Any) -> None:
        from prometheus_client import Counter, Gauge

        registry = metrics.registry
        self.up = Gauge("mass_sink_up", "1 while the sink's destination answers", ["sink"], registry=registry)
        self.lag = Gauge("mass_sink_lag_bytes", "Bytes of the store not yet in the sink", ["sink"],
                         registry=registry)
        self.rows = Counter("mass_sink_rows", "Rows written by the sink", ["sink", "table"], registry=registry)
