"""Replay a recording through the engine, as fast as possible or paced, in time order.

The file is read natively whatever its format (`sources.formats`: JSONL, CSV,
NDBC standard meteorological, IEM ASOS; detected from the content, `format`
overrides) and decoded a chunk at a time.

Time order: a recording is replayed in time order even when the file is not
(NDBC realtime files list the newest reading first; a merged export may
interleave). A file of up to `inputs.replay_sort_mb` (64 MiB) is decoded whole
(the decoded columns take about a tenth of the text), put in time order with a
stable sort, then scored; the readings that came after a newer one of their
station are counted under `out_of_order`. A bigger file is sorted a chunk at a
time; a reading older than one already scored from an earlier chunk then follows
the live lateness policy (stored, not scored, counted under `late`), and the log
says the file is out of order beyond what replay sorts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from mass_tui.engine import BatchResult, Engine
from mass_tui.quarantine_ledger import QuarantineLedger
from sources.batch import ObservationBatch, concat, rows_by_station
from sources.formats import Recording, open_recording
from sources.formats.csv_table import CSV_RECORD_LINES, csv_records  # noqa: F401 - re-exported for tests
from sources.formats.opener import uncompressed_size
from sources.schema import Rejection, iso_utc

log = logging.getLogger(__name__)

BATCH = 16384
# Flat out, a replay reads this many bytes per chunk: big batches spread the detectors'
# per-call cost thinly, and a byte budget bounds memory whatever the line length.
# Headless replay takes 4 MB (1 MB costs a third more time); the UI, where memory
# matters more than the last third of speed, 1 MB (330 MiB instead of 540 MiB over 1 M messages).
FLAT_OUT_BYTES = 4 << 20
UI_FLAT_OUT_BYTES = 1 << 20
# Paced, the longest wall-clock wait for the next reading: a longer gap in the data is skipped
# (and logged). A minute covers hourly data at 60x and minute data in real time.
MAX_WAIT = 60.0


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

    def shift(self, seconds: float) -> None:
        """Move the origin later (after a pause), so the replay does not rush to catch up."""
        if self._origin is not None:
            self._origin = (self._origin[0], self._origin[1] + seconds)

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)


def out_of_order(batch: ObservationBatch) -> int:
    """How many rows come after a later row of the same station."""
    if len(batch) < 2 or bool(np.all(np.diff(batch.ts) >= 0)):
        return 0
    count = 0
    for rows in rows_by_station(batch.station).values():
        t = batch.ts[rows]
        if t.size > 1:
            count += int(np.count_nonzero(t[1:] < np.maximum.accumulate(t)[:-1]))
    return count


def _behind(batch: ObservationBatch, newest: dict[str, float]) -> np.ndarray:
    """Which rows are older than their station's newest reading in `newest` (the chunks before);
    then `newest` takes this batch's readings in."""
    behind = np.zeros(len(batch), dtype=bool)
    for station, rows in rows_by_station(batch.station).items():
        t = batch.ts[rows]
        before = newest.get(station)
        if before is not None:
            behind[rows] = t < before
        newest[station] = float(t.max()) if before is None else max(before, float(t.max()))
    return behind


def in_time_order(batch: ObservationBatch) -> tuple[ObservationBatch, int]:
    """The batch stably sorted by time, and how many rows were out of order in their station
    (`out_of_order`). A file laid out station after station, each in order, is sorted too though
    no row counts: played paced, it would otherwise play one station at a time."""
    if len(batch) < 2 or bool(np.all(np.diff(batch.ts) >= 0)):
        return batch, 0
    return batch.select(np.argsort(batch.ts, kind="stable")), out_of_order(batch)


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
    format: str = "auto",
    sort_bytes: int | None = None,
) -> bool:
    """Feed a recording through the engine in time order (speed=None: as fast as possible).

    Stops between batches when `stop` is set, so what was read is scored and stored
    whole; returns False when stopped early. `since`/`until` keep the readings timed in
    [since, until) (for a fast lead-in, then paced); a replay with `since` leaves the
    quarantine to the one with `until` that read the same file before it. Quarantine
    records name the file, and those an earlier replay of it stored are not stored again
    (`mass_tui.quarantine_ledger`).
    """
    stop = stop or threading.Event()
    recording = open_recording(path, format, station=station, chunk_bytes=chunk_bytes)
    # the file itself, not a link's name: a rerun through another link is the same replay (quarantine ledger)
    defaults = {"default_station": recording.station, "default_source": f"replay:{path.resolve().name}"}
    limit = int(engine.config.get("inputs.replay_sort_mb") * 2**20) if sort_bytes is None else sort_bytes
    quarantine = since is None
    before = engine.ledger
    if engine.store is not None:  # a pass with `since` quarantines too: conflicts, series past the cap
        engine.ledger = QuarantineLedger.load(engine.store, path)
    try:
        return _replay(engine, path, recording, defaults, limit, quarantine, speed, on_batch, stop, paused,
                       since, until, chunk_bytes)
    finally:
        engine.ledger = before


def _replay(engine: Engine, path: Path, recording: Recording, defaults: dict[str, str], limit: int,
            quarantine: bool, speed: float | None, on_batch: Callable[[BatchResult], None] | None,
            stop: threading.Event, paused: threading.Event | None, since: float | None, until: float | None,
            chunk_bytes: int) -> bool:
    pacer = Pacer(speed, stop)
    rows = max(BATCH, chunk_bytes // 128)

    def decoded() -> Iterator[ObservationBatch]:
        for chunk in recording.chunks():
            if stop.is_set():
                return
            out = engine.decode(chunk, **defaults)
            if quarantine:
                engine.quarantine(out.quarantined)
                engine.counters.missing += out.missing
            yield out.batch
        for problem in recording.problems:  # compressed data cut short: what came before it was read
            log.warning("%s", problem)
            if quarantine:
                engine.quarantine([Rejection(problem, b"", "truncated_file")])

    size = uncompressed_size(path)
    if size <= limit:
        batch = concat(list(decoded()))
        batch, moved = in_time_order(batch)
        if moved:
            engine.counters.out_of_order += moved
            log.info("%s: %d readings out of time order; replayed in time order", path.name, moved)
        batches: Iterator[ObservationBatch] = iter([batch])
    else:
        def sorted_chunks() -> Iterator[ObservationBatch]:
            newest: dict[str, float] = {}  # each station's newest reading in the chunks before
            for batch in decoded():
                behind = _behind(batch, newest)
                # a row older than one of an earlier chunk is late: the engine counts it under
                # out_of_order itself, so only the others' disorder within the chunk is counted here
                kept = out_of_order(batch.select(np.flatnonzero(~behind))) if behind.any() else None
                batch, moved = in_time_order(batch)
                engine.counters.out_of_order += moved if kept is None else kept
                yield batch
        batches = sorted_chunks()

    fed_any = False
    for batch in batches:
        if len(batch) and (since is not None or until is not None):
            keep = np.ones(len(batch), dtype=bool)
            if since is not None:
                keep &= batch.ts >= since
            if until is not None:
                keep &= batch.ts < until
            if not keep.all():
                batch = batch.select(np.flatnonzero(keep))
        for part in _paced(batch, pacer, rows, stop, paused):
            _emit(engine.process_batch(part), on_batch)
            fed_any = True
        if stop.is_set():
            return False
    if not fed_any:
        _emit(engine.process_batch(concat([])), on_batch)  # flushes the quarantine of an all-bad file
    late = engine.counters.late
    if late and size > limit:
        log.warning("%s is out of time order beyond the %d MiB that replay sorts: %d readings were late "
                    "(stored, not scored)", path.name, limit >> 20, late)
    return not stop.is_set()


def _paced(batch: ObservationBatch, pacer: Pacer, rows: int, stop: threading.Event,
           paused: threading.Event | None) -> Iterator[ObservationBatch]:
    """Slices of a time-ordered batch, each handed over when due: flat out, slices of `rows`;
    paced, what is due by the time the replay would sleep (one reading at a time at a slow pace),
    as a live source hands over what has arrived. The results are the same."""
    n = len(batch)
    pos = 0
    while pos < n:
        if paused is not None and paused.is_set():
            began = time.monotonic()
            while paused.is_set() and not stop.is_set():
                stop.wait(0.1)
            pacer.shift(time.monotonic() - began)
        if stop.is_set():
            return
        if pacer.speed is None:
            end = min(n, pos + rows)
        else:
            delay = pacer.delay_for(float(batch.ts[pos]))
            if delay > MAX_WAIT:
                # a gap in the data (an outage, a mistyped year) is skipped, not waited out: at
                # 100000x one wrong year would hold the replay for hours with nothing on screen
                log.info("replay: skipped a gap in the data before %s: %.0f s of waiting at %gx",
                         iso_utc(float(batch.ts[pos])), delay, pacer.speed)
                pacer.shift(-delay)
                delay = 0.0
            if delay > 0:
                pacer.wait(min(delay, 0.25))
                continue
            end = pos + 1
            while end < n and end - pos < BATCH and pacer.delay_for(float(batch.ts[end])) <= 0:
                end += 1
        yield batch if (pos == 0 and end == n) else batch.slice(pos, end)
        pos = end


def _emit(result: BatchResult, on_batch: Callable[[BatchResult], None] | None) -> None:
    if on_batch is not None:
        on_batch(result)
