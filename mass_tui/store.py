"""Append-only JSONL files under DATA_DIR/db, flushed once per batch.

Each file rotates when it would pass `max_bytes` or when the UTC day
changes; rotated files are named `NAME.YYYY-MM-DD.N.jsonl` and deleted after
`retention_days`. Readers tolerate a torn last line (a crash mid-write).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

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
    def __init__(
        self,
        db_dir: Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        retention_days: float = 14.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db_dir = Path(db_dir)
        self.db_dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.retention_days = float(retention_days)
        self._clock = clock
        self._files: dict[str, IO[bytes]] = {}
        self._days: dict[str, str] = {}  # file -> UTC day its current file was started

    def path(self, name: str) -> Path:
        return self.db_dir / name

    def _file(self, name: str, incoming: int) -> IO[bytes]:
        today = _day(self._clock())
        fh = self._files.get(name)
        if fh is None:
            path = self.path(name)
            if path.exists():
                self._days[name] = _day(path.stat().st_mtime)
            fh = self._files[name] = open(path, "ab")  # noqa: SIM115 - kept open across batches
            self._days.setdefault(name, today)
        size = fh.tell()
        if size and (size + incoming > self.max_bytes or self._days.get(name) != today):
            fh = self._rotate(name, today)
        return fh

    def _rotate(self, name: str, today: str) -> IO[bytes]:
        self._files.pop(name).close()
        stem = name.removesuffix(".jsonl")
        day = self._days.get(name, today)
        seq = 1 + max((int(m["seq"]) for p in self.rotated(name) if (m := _ROTATED.match(p.name))
                       and m["day"] == day), default=0)
        os.replace(self.path(name), self.db_dir / f"{stem}.{day}.{seq}.jsonl")
        self._expire(name, today)
        self._days[name] = today
        fh = self._files[name] = open(self.path(name), "ab")  # noqa: SIM115
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
        lines = [orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) for r in records]
        self.append_lines(name, lines)
        return len(lines)

    def append_lines(self, name: str, lines: list[bytes]) -> None:
        if lines:
            data = b"\n".join(lines) + b"\n"
            self._file(name, len(data)).write(data)

    def flush(self) -> None:
        for fh in self._files.values():
            fh.flush()

    def sync(self) -> None:
        """Flush and fsync: what a transport offset may be committed after."""
        for fh in self._files.values():
            fh.flush()
            os.fsync(fh.fileno())

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: Path, stats: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """Records of one JSONL file. A torn last line is skipped (counted as "torn");
    a bad line in the middle is skipped and counted as "corrupt"."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            kind = "torn" if i == last else "corrupt"
            if stats is not None:
                stats[kind] = stats.get(kind, 0) + 1
            log.warning("%s line %d of %s skipped", kind, i + 1, path)
            continue
        if isinstance(record, dict):
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


def read_recent(store: JsonlStore, name: str, since_ts: float, stats: dict[str, int] | None = None) -> list[dict]:
    """Records of `name` whose `ts` is at or after since_ts, oldest first."""
    from sources.schema import parse_time

    out: list[dict] = []
    for path in reversed(store.files(name)):
        chunk = []
        oldest = None
        for record in read_jsonl(path, stats):
            try:
                ts = parse_time(record.get("ts"))
            except ValueError:
                continue
            oldest = ts if oldest is None else min(oldest, ts)
            if ts >= since_ts:
                chunk.append(record)
        out[:0] = chunk
        if oldest is not None and oldest < since_ts:
            break
    return out
