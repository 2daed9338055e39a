"""The second half of a replay's decoding, in a forked copy of the engine's process.

A replay flat out decodes the whole file before it scores (it puts the file in time order
first, `mass_tui.replay`). Decoding takes both CPUs only in part: the main thread checks one
chunk while polars reads the next in a thread, and the store's writer process idles until the
first batch is scored. On a plain JSONL file (`Recording.split_point`) the engine's process
forks before it decodes anything: the child decodes the chunks from the middle on with its copy
of the engine's decoder (as it is then: nothing decoded yet) while the parent decodes the chunks
before the middle, then hands them over through a pipe (`Half`), pickled. Measured on 2 CPUs,
200 k lines of the Open-Meteo-like layout: decoding 1.14-1.26 s in one process, 0.79-0.85 s in two
(README, Performance).

The result is the one a single process gets: the same chunks, decoded by the same code from the
same state, quarantined and counted in file order. Where a chunk's decoding depends on the ones
before it (naive local times resolved across a repeated hour, `sources.times.LocalTimes`), the
child's half is dropped and the parent decodes it after its own, in order; so it does when the
child fails or is killed (said in the log). Only where `mass_tui.forking.can_fork` holds.
"""

from __future__ import annotations

import gc
import logging
import pickle
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mass_tui.engine import Engine
    from sources.decode import Decoded
    from sources.formats import Recording

log = logging.getLogger(__name__)


@dataclass
class Half:
    """What the child decoded: each chunk's `Decoded` in file order, the ignored-field counts it
    added, its log records as (level, logger name, message), and whether its decoding carried state
    from chunk to chunk (`stateful`: then it is not used)."""

    parts: list[Decoded]
    ignored: dict[str, int] = field(default_factory=dict)
    records: list[tuple[int, str, str]] = field(default_factory=list)
    stateful: bool = False


def carries_state(engine: Engine) -> bool:
    """Whether the engine's decoder has state that a later chunk's decoding depends on: naive local
    times resolved under a zone (the last reading per station decides a repeated hour)."""
    local = engine.decoder.local
    return bool(local.last or local.repeated or local.skipped)


class ForkedHalf:
    """`recording.chunks(start=start)` decoded by a forked copy of `engine` (`defaults`: the
    keyword arguments of `Engine.decode`). Fork only where `can_fork()` holds, before this process
    decodes anything. `take()` once, or `cancel()`."""

    def __init__(self, engine: Engine, recording: Recording, start: int, defaults: dict[str, Any]) -> None:
        import multiprocessing

        self.start = start
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_decode_half, name="mass-decode", daemon=True,
                                   args=(engine, recording, start, defaults, child, self._conn))
        self.process.start()
        child.close()  # only the child writes: its end, when it is gone, reads as EOF here

    def take(self) -> Half | None:
        """The child's half once it is done, or None (logged) when it failed or was killed."""
        try:
            data = self._conn.recv_bytes()
        except (EOFError, OSError):
            data = None
        finally:
            self._conn.close()
        self.process.join(60.0)
        if self.process.is_alive():
            self.cancel()
        if data is None or self.process.exitcode != 0:
            log.warning("the decoding process (PID %s) ended with exit code %s before handing over its half; "
                        "decoding it here", self.process.pid, self.process.exitcode)
            return None
        return pickle.loads(data)  # noqa: S301 - our own child's bytes, through our own pipe

    def cancel(self) -> None:
        """Stop the child by its PID (a replay stopped or failed while it decoded)."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10.0)
        self._conn.close()


class _Kept(logging.Handler):
    def __init__(self, into: list[tuple[int, str, str]]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append((record.levelno, record.name, record.getMessage()))


def _decode_half(engine: Engine, recording: Recording, start: int, defaults: dict[str, Any], conn: Connection,
                 parent_end: Connection) -> None:
    """The child: decode, send the `Half`, exit (multiprocessing ends a forked child with os._exit)."""
    parent_end.close()
    gc.freeze()  # the inherited objects: walking them would copy their pages into this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine's process decides when to stop, and kills this one
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    records: list[tuple[int, str, str]] = []
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                      if isinstance(v, logging.Logger))]
    for logger in loggers:
        logger.handlers.clear()  # the engine's process writes them, after its own half's
    logging.getLogger().addHandler(_Kept(records))
    engine.counters.ignored_fields = {}
    parts = list(_decoded(engine, recording.chunks(start=start), defaults))
    half = Half(parts, engine.counters.ignored_fields, records, carries_state(engine))
    try:
        conn.send_bytes(pickle.dumps(half, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:  # the engine's process is gone (killed): nobody to hand it to
        return
    finally:
        conn.close()


def _decoded(engine: Engine, chunks: Iterator[Any], defaults: dict[str, Any]) -> Iterator[Decoded]:
    for chunk in chunks:
        yield engine.decode(chunk, **defaults)
