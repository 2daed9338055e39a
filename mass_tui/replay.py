"""Replay a recording (JSONL or CSV) through the engine, as fast as possible or paced.

JSONL: one wire message per line (the seed device's recordings included).
CSV: a header of registry names (or their aliases), `ts` and `station`;
empty cells are missing readings. A file without a station column takes
`--station` (default: the file's name).
"""

from __future__ import annotations

import csv
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from mass_tui.engine import BatchResult, Engine
from sources.schema import Rejection, parse_time

BATCH = 16384
# Flat out, a JSONL replay reads this many bytes per batch: big batches spread the
# detectors' per-call cost thinly, and a byte budget bounds memory whatever the line length.
# Headless replay takes 4 MB (1 MB costs a third more time); the UI, where memory
# matters more than the last third of speed, 1 MB (330 MiB instead of 540 MiB over 1 M messages).
FLAT_OUT_BYTES = 4 << 20
UI_FLAT_OUT_BYTES = 1 << 20


# A quoted cell may hold newlines; a record is given up to this many lines to close its quote.
CSV_RECORD_LINES = 64


def _csv_records(lines: Iterable[str], max_lines: int = CSV_RECORD_LINES) -> Iterator[tuple[str, str]]:
    """(record text, "") per CSV record, or (first line, why) for a quote that never closes.

    RFC 4180 doubles a quote inside a quoted cell, so a record is complete when
    its quotes are balanced. A stray quote costs its own line: the lines after
    it are read again as records of their own.
    """
    source = iter(lines)
    again: deque[str] = deque()  # lines to read again after a stray quote
    pending: list[str] = []
    quotes = 0
    while True:
        line = again.popleft() if again else next(source, None)
        if line is None:
            break
        pending.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            yield "".join(pending), ""
        elif len(pending) > max_lines:
            yield pending[0], f"CSV quote not closed within {max_lines} lines"
            again.extendleft(reversed(pending[1:]))
        else:
            continue
        pending, quotes = [], 0
    if pending:
        yield pending[0], "CSV quote not closed at the end of the file"
        yield from _csv_records(pending[1:], max_lines)


def _csv_rows(path: Path) -> Iterator[tuple[dict[str, Any] | None, bytes, str]]:
    """(row object, raw record, "") or (None, raw record, why it is malformed)."""
    with path.open("r", encoding="utf-8", newline="") as fh:
        header_line = fh.readline()
        header = next(csv.reader([header_line]))
        for record, problem in _csv_records(fh):
            if not record.strip():
                continue
            raw = record.rstrip("\r\n").encode("utf-8")
            if problem:
                yield None, raw, problem
                continue
            cells = next(csv.reader([record]))
            if len(cells) != len(header):
                yield None, raw, f"CSV row has {len(cells)} cells for {len(header)} columns"
                continue
            obj: dict[str, Any] = {}
            for key, cell in zip(header, cells, strict=True):
                cell = cell.strip()
                if cell == "":
                    obj[key] = None
                    continue
                try:
                    obj[key] = float(cell)
                except ValueError:
                    obj[key] = cell
            yield obj, raw, ""


def _jsonl_chunks(path: Path, size: int) -> Iterator[list[bytes]]:
    """The message lines of a JSONL file, about `size` bytes at a time (blank lines dropped)."""
    with path.open("rb") as fh:
        while chunk := fh.readlines(size):
            yield [raw for line in chunk if (raw := line.rstrip(b"\r\n")).strip()]


def _jsonl_lines(path: Path) -> Iterator[bytes]:
    for chunk in _jsonl_chunks(path, 1 << 16):
        yield from chunk


def _json_ts(raw: bytes) -> float | None:
    """The message time of a raw line, for pacing only (None if unreadable)."""
    try:
        obj = orjson.loads(raw)
        for key in ("ts", "ts_iso", "timestamp", "time_utc", "time"):
            if isinstance(obj, dict) and obj.get(key) is not None:
                return parse_time(obj[key])
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    return None


class Pacer:
    """Waits so that data time advances `speed` times faster than wall time."""

    def __init__(self, speed: float | None, stop: threading.Event) -> None:
        self.speed = speed
        self._stop = stop
        self._origin: tuple[float, float] | None = None  # (data ts, wall time)

    def delay_for(self, ts: float | None) -> float:
        """Seconds to wait before the message timed `ts` is due (0 if due now)."""
        if self.speed is None or ts is None:
            return 0.0
        now = time.monotonic()
        if self._origin is None:
            self._origin = (ts, now)
            return 0.0
        return max(0.0, self._origin[1] + (ts - self._origin[0]) / self.speed - now)

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)


def _csv_time(obj: dict[str, Any]) -> float | None:
    ts = obj.get("ts") or obj.get("time_utc") or obj.get("timestamp")
    try:
        return parse_time(ts) if ts is not None else None
    except ValueError:
        return None  # a bad time is rejected by the engine


def replay_file(
    engine: Engine,
    path: Path,
    *,
    speed: float | None = None,
    station: str | None = None,
    on_batch: Callable[[BatchResult], None] | None = None,
    stop: threading.Event | None = None,
    paused: threading.Event | None = None,
    since: float | None = None,
    until: float | None = None,
    chunk_bytes: int = FLAT_OUT_BYTES,
) -> bool:
    """Feed a recording through the engine (speed=None: as fast as possible).

    Stops between batches when `stop` is set, so what was read is scored and
    stored whole. Returns False when stopped early. `since`/`until` keep the
    messages timed in [since, until) (for a fast lead-in, then paced). A JSONL
    file replayed flat out goes to the engine `chunk_bytes` at a time.
    """
    stop = stop or threading.Event()
    defaults = {"default_station": station or path.stem, "default_source": f"replay:{path.name}"}
    if speed is None and since is None and until is None and path.suffix.lower() != ".csv":
        return _jsonl_flat_out(engine, path, defaults, on_batch, stop, paused, chunk_bytes)
    pacer = Pacer(speed, stop)
    # Flat out, the engine gets big batches; paced, it gets what is due by
    # the time the replay would sleep, as a live source hands over what has
    # arrived (one message at a time at a slow pace). The results are the same.
    batch = BATCH
    is_csv = path.suffix.lower() == ".csv"
    items: Iterator[Any] = _csv_rows(path) if is_csv else _jsonl_lines(path)
    pending: list[Any] = []

    def flush() -> None:
        if pending:
            ingest = engine.ingest_objects if is_csv else engine.ingest
            _emit(ingest(pending, **defaults), on_batch)
            pending.clear()

    for item in items:
        while paused is not None and paused.is_set() and not stop.is_set():
            stop.wait(0.1)
        if stop.is_set():
            flush()
            return False
        timed = speed is not None or since is not None or until is not None
        if is_csv:
            obj, raw, problem = item
            if obj is None:
                engine.quarantine([Rejection(problem, raw)])
                continue
            item = (obj, raw)
            ts = _csv_time(obj) if timed else None
        else:
            ts = _json_ts(item) if timed else None
        if ts is not None and since is not None and ts < since:
            continue
        if ts is not None and until is not None and ts >= until:
            break
        delay = pacer.delay_for(ts)
        if delay > 0:
            flush()  # what is due now goes to the engine before the replay sleeps
            pacer.wait(delay)
        pending.append(item)
        if len(pending) >= batch:
            flush()
    flush()
    return not stop.is_set()


def _jsonl_flat_out(
    engine: Engine, path: Path, defaults: dict[str, str], on_batch: Callable[[BatchResult], None] | None,
    stop: threading.Event, paused: threading.Event | None, chunk_bytes: int,
) -> bool:
    """A JSONL file as fast as possible: whole chunks of lines to the engine, with no
    per-line work here (pausing and stopping are checked between chunks)."""
    for raws in _jsonl_chunks(path, chunk_bytes):
        while paused is not None and paused.is_set() and not stop.is_set():
            stop.wait(0.1)
        if stop.is_set():
            return False
        _emit(engine.ingest(raws, **defaults), on_batch)
    return True


def _emit(result: BatchResult, on_batch: Callable[[BatchResult], None] | None) -> None:
    if on_batch is not None:
        on_batch(result)
