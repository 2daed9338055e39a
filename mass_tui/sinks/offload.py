"""The store's sinks in a second process (by default on two CPUs or more; MASS_SINKS): a bulk
replay scores batch k+1 while batch k is written.

A replay flat out spends about as long writing (the stream lines, anomalies,
windowed aggregates) as it does scoring; on one core those add up. This sink
stands in for the JSONL and aggregates sinks in the engine: it pickles each
scored batch (the rows, their scores, the anomalies and what muted them) down a
pipe to a spawned process that runs the very same sinks (`JsonlSink`,
`AggregateSink`) on its own `JsonlStore` of the same data dir, so the bytes
stored are the ones an in-process run writes (a test holds them equal). The
engine's process keeps writing what is its own: `rejected.jsonl` (decoding) and
the alert journal; the two processes never append to the same file.

Flow and bounds: the writer reads batches ahead of the one it writes (a thread, up
to INBOX of them), so the engine scores on while the writer works through a burst
(the aggregates of the batches that queued up meanwhile: when its inbox is empty the writer
aggregates what it holds back at once, `OrderedStoreSinks.idle`); the pipe's buffer is small next to a
batch, so `write` blocks once the writer is that far behind: a few batches are in
flight at most, and memory stays bounded whatever the speed gap.

Durability: `sync()` returns once the writer has written and fsynced every
batch sent before it (the `Sink` contract), so a position committed after it is
safe. A failure in the writer (a full disk: `StoreWriteError`, anything else:
`RuntimeError` naming it) is raised here at the next `write`, `sync` or
`close`, as the in-process sinks would raise it. If the writer dies, the next
call raises `WriterDied` (a RuntimeError) with its exit code; if this process dies, the writer
reads end-of-file, writes what it received, and exits.

Log records of the writer (INFO and up) are sent back and logged here, under
their own logger names, so the run's log holds them in one place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mass_tui.store import StoreWriteError

if TYPE_CHECKING:
    from mass_tui.config import Config
    from mass_tui.scored import BatchResult
    from sources.batch import ObservationBatch

log = logging.getLogger(__name__)

ENV = "MASS_SINKS"  # "auto" (default), "inline", "process" or "split": where a bulk replay's store sinks write
CLOSE_TIMEOUT = 600.0  # seconds to wait for the writer to finish at close: the batches in flight
# Below this much input the writer's start (a fresh interpreter and its imports, ~0.3 s of a core)
# costs more than writing in the engine's process would: MASS_SINKS=auto keeps such input inline
# (an explicit process or split is taken as said).
MIN_BYTES = 8 << 20
# What a writer process (or an inline `mass_tui.sinks.ordered` set) writes: the stream and anomalies
# and the aggregates, or one of the two.
PARTS = ("all", "stream", "aggregates")
ARRANGEMENTS = ("inline", "process", "split")  # MASS_SINKS besides auto (`arrangement`)
AUTO = "process"  # what auto takes with two CPUs or more and a big enough input
INBOX = 2  # messages the writer reads ahead of the one it is writing (`_receiving`)
SWITCH_INTERVAL = 0.0005  # the writer process's sys.setswitchinterval (`_receiving`); Python's default is 5 ms


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def arrangement(size: int) -> str:
    """Where a bulk run over `size` bytes of input writes its store: "inline" (the sinks in the
    engine's process), "process" (all of them in one writer process) or "split" (the stream and
    anomalies in one writer process, the aggregates in another).

    MASS_SINKS chooses: "inline", "process" and "split" are taken as said; "auto" (the default)
    is AUTO from MIN_BYTES of input on when this process may use two CPUs or more, else inline.
    Raises ConfigError naming MASS_SINKS for any other value. Measured on an idle 2-core machine
    (README, Performance); on one CPU a writer only adds pickling and a second interpreter's start,
    and on a machine already busy the processes compete (inline was faster there)."""
    how = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if how not in ("auto", *ARRANGEMENTS):
        from mass_tui.config import ConfigError

        raise ConfigError(f"{ENV}={how!r}: expected auto, {', '.join(ARRANGEMENTS[:-1])} or {ARRANGEMENTS[-1]}")
    if how != "auto":
        return how
    return AUTO if size >= MIN_BYTES and usable_cpus() >= 2 else "inline"


class WriterDied(RuntimeError):
    """The writer process ended without being asked to (killed, out of memory): said in one line."""


class OffloadedSinks:
    """The JSONL store sink and the aggregates sink (when configured), run in a spawned process.

    `config` is the run's configuration (the writer opens the same data dir with it). Not
    thread-safe: one engine thread calls it. `summaries()` gives the writer's sinks' summaries
    (the aggregates' `records`, `late`, `too_late`) once `close()` returned.
    """

    name = "store-writer"
    durable = True
    wants_series = False

    def __init__(self, config: Config, part: str = "all") -> None:
        if part not in PARTS:
            raise ValueError(f"part {part!r}: expected one of {', '.join(PARTS)}")
        self.part = part
        self.name = "store-writer" if part == "all" else f"store-writer-{part}"
        ctx = multiprocessing.get_context("spawn")  # not fork: the engine's process may hold threads and locks
        self._conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_serve_and_exit, name=f"mass-{self.name}", daemon=True,
                                   args=(config, child, part))
        self.process.start()
        child.close()  # only the writer holds that end now: its death reads as EOF here
        self._error: BaseException | None = None
        self._summaries: dict[str, Any] = {}
        self._closed = False
        self._ready = False
        # Writers whose start must be over before this one is sent a batch (`split`: the aggregates'
        # writer rebuilds its open windows from the stored stream as it starts; the stream's writer
        # writing this run's first rows before that would have them counted twice).
        self.after: list[OffloadedSinks] = []

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def wait_ready(self) -> None:
        """Wait until the writer has opened the store and built its sinks (it says "ready"), keeping
        the log records it sends meanwhile; raises WriterDied if it ended instead."""
        while not self._ready:
            try:
                kind, body = self._conn.recv()
            except (EOFError, OSError):
                self._raise_pending()
                raise self._died() from None
            self._take(kind, body)
        self._raise_pending()

    def write(self, scored: BatchResult) -> None:
        if not self._ready:
            for writer in (*self.after, self):
                writer.wait_ready()
        self._raise_pending()
        from mass_tui.scored import BatchResult

        # Only what the store's sinks read: no alert events, traces or totals cross the pipe (and
        # to the aggregates alone, only the rows: they take no scores).
        batch = shared_strings(scored.batch)
        if self.part == "aggregates":
            payload = BatchResult(batch, [], scored.rejected)
        else:
            payload = BatchResult(batch, scored.anomalies, scored.rejected, scores=scored.scores, muted=scored.muted)
        self._send(("write", payload))

    def sync(self) -> None:
        self._send(("sync", None))
        self._reply()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._send(("close", None))
            self._summaries = self._reply() or {}
        finally:
            self._conn.close()
            self.process.join(CLOSE_TIMEOUT)
            if self.process.is_alive():  # stuck past the timeout: stop it by its PID
                self.process.kill()
                self.process.join(5.0)

    def summaries(self) -> dict[str, Any]:
        return dict(self._summaries)

    # --- the pipe ------------------------------------------------------------------
    def _send(self, message: tuple[str, Any]) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self._raise_pending()
            raise self._died() from None

    def _reply(self) -> Any:
        """Wait for the answer to a sync or close, logging and keeping what comes before it."""
        while True:
            try:
                kind, body = self._conn.recv()
            except (EOFError, OSError):
                self._raise_pending()
                raise self._died() from None
            if kind == "done":
                self._raise_pending()
                return body
            self._take(kind, body)

    def _raise_pending(self) -> None:
        """Read what the writer sent meanwhile (log records, a failure) without waiting; raise a failure."""
        with contextlib.suppress(EOFError, OSError):
            while self._conn.poll():
                self._take(*self._conn.recv())
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _take(self, kind: str, body: Any) -> None:
        if kind == "log":
            level, name, text = body
            logging.getLogger(name).log(level, "%s", text)
        elif kind == "error" and self._error is None:
            self._error = _rebuilt(body)
        elif kind == "ready":  # read while waiting for something else (a sync before any write)
            self._ready = True

    def _died(self) -> WriterDied:
        self.process.join(1.0)
        code = self.process.exitcode
        return WriterDied(f"the store writer process (PID {self.process.pid}) ended unexpectedly"
                            + (f" with exit code {code}" if code is not None else "")
                            + "; what it acknowledged is stored")


def shared_strings(batch: ObservationBatch) -> ObservationBatch:
    """`batch` with its station and source names one string object per distinct name (a new batch
    sharing everything else; the batch itself if it has no rows).

    A decoded batch holds a string object of its own for each row's station and source, and pickle
    writes each in full: 1.2 MB of a 32 k-row building batch, ~8 ms of the engine's time to pickle
    and ~6 ms of the writer's to unpickle (and each name hashed anew in the writer). One object
    per name is pickled once and referred to after (~1 ms to share, 1.5 ms to pickle)."""
    if not len(batch):
        return batch
    stations: dict[str, str] = {}
    sources: dict[str, str] = {}
    return dataclasses.replace(batch, station=list(map(stations.setdefault, batch.station, batch.station)),
                               source=list(map(sources.setdefault, batch.source, batch.source)))


def _described(exc: BaseException) -> tuple[str, Any]:
    """A failure as plain data (exceptions with paths and errnos do not all pickle back whole)."""
    if isinstance(exc, StoreWriteError):
        return ("write", (str(exc.path), exc.errno, exc.strerror, exc.lost))
    return ("other", f"{type(exc).__name__}: {exc}")


def _rebuilt(body: tuple[str, Any]) -> BaseException:
    kind, detail = body
    if kind == "write":
        path, code, reason, lost = detail
        error = StoreWriteError(Path(path), OSError(code, reason))
        error.lost = lost
        return error
    return RuntimeError(f"the store writer failed: {detail}")


class _ToParent(logging.Handler):
    def __init__(self, conn: Connection) -> None:
        super().__init__(logging.INFO)
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a log line must never take the writer down
            self.conn.send(("log", (record.levelno, record.name, record.getMessage())))


def _serve_and_exit(config: Config, conn: Connection, part: str = "all") -> None:
    """`serve`, then the end of this process without the interpreter's teardown (tens of ms of
    freeing objects one by one, which the engine's process waits for): everything is written and
    synced when `serve` returns. An exception is left to multiprocessing (traceback, exit code 1)."""
    serve(config, conn, part)
    from mass_tui.entry import flush_stdio

    flush_stdio()
    os._exit(0)


def _receiving(conn: Connection) -> queue.Queue[bytes | None]:
    """The messages from the engine's process as they come, read by a thread of this process into
    a queue of INBOX (None once the engine's end is closed or gone).

    The engine's `send` returns once the writer has read the message: read only between two
    batches, the engine waited on it while the writer aggregated (every other batch, a burst), a
    third of a second of a building replay; read ahead, it waits only when the writer is INBOX
    batches behind. The reading is a system call without the GIL, but taking the GIL back after
    each part read waits for the writing thread to let go of it (sys.getswitchinterval at most):
    `serve` sets SWITCH_INTERVAL, so a message of megabytes is read in a few ms."""
    inbox: queue.Queue[bytes | None] = queue.Queue(INBOX)

    def receive() -> None:  # ends at EOF: a message is never left half read for the next
        try:
            while True:
                inbox.put(conn.recv_bytes())
        except (EOFError, OSError):
            pass
        finally:
            inbox.put(None)

    threading.Thread(target=receive, name="mass-writer-receive", daemon=True).start()
    return inbox


def serve(config: Config, conn: Connection, part: str = "all") -> None:
    """The writer process: open the store, build the sinks of `part` (PARTS), write what arrives
    until close or EOF."""
    from mass_tui.malloc_tuning import keep_freed_blocks
    from mass_tui.sinks.ordered import OrderedStoreSinks
    from mass_tui.store import open_store

    # Ctrl-C reaches the whole process group: the engine's process decides when to stop, and
    # then closes this one in order, so what it sent is written whole.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_blocks()  # batches of megabytes, one after another: reuse the heap, as the engine does
    root = logging.getLogger()
    root.handlers[:] = [_ToParent(conn)]
    root.setLevel(logging.INFO)
    sinks = OrderedStoreSinks(config, open_store(config), part)  # the aggregates' open windows rebuilt here
    sys.setswitchinterval(SWITCH_INTERVAL)  # the reading thread takes the GIL back soon after each part (`_receiving`)
    inbox = _receiving(conn)
    conn.send(("ready", None))
    try:
        while True:
            data = inbox.get()
            if data is None:
                return  # the engine's process is gone: what came is written below
            kind, body = ForkingPickler.loads(data)
            try:
                if kind == "write":
                    sinks.write(body)
                    if inbox.empty():
                        sinks.idle()
                elif kind == "sync":
                    sinks.sync()
                    conn.send(("done", None))
                elif kind == "close":
                    sinks.close()  # a refusal here is said to the engine's process like any other
                    conn.send(("done", sinks.summaries()))
                    return
            except Exception as exc:  # noqa: BLE001 - said to the engine's process, which raises it
                conn.send(("error", _described(exc)))
                if kind != "write":
                    conn.send(("done", None))
    finally:
        if not sinks.closed:  # not closed in order (the engine's process is gone): keep what came
            with contextlib.suppress(OSError):
                sinks.close()
