"""A store whose appends are written by a thread of their own: the writer process builds the next
batch's lines while the last batch's bytes go to the kernel.

In the store's writer process (`mass_tui.sinks.offload`) the `write` system calls were a quarter
of its busy time (0.26 of ~1.05 s on a 200 k-line replay: the page cache takes each byte at a
few hundred MB/s on the VM this was built on), and the writer was the slower side of the
pipeline, the engine waiting on it. The thread runs while the writer's main thread serializes;
the GIL is released during the system call.

Same bytes, same order: one thread writes, in the order the appends were made, through the
store's own `append_data` (which holds data a full disk refused and tries it again). A failure
the store raises (more held than it may hold) is raised in the caller at the next append,
`sync` or `close`. `sync` returns once every append made before it is written and fsynced. The
queue is bounded, so memory stays bounded whatever the gap between the two threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from typing import Any

from mass_tui.store import JsonlStore

log = logging.getLogger(__name__)

QUEUED = 4  # appends waiting at most: a batch's stream lines and its aggregates, and the next batch's


class BackgroundWrites:
    """`store` (a JsonlStore) with `append`, `append_lines`, `append_data` and `append_group` written by a thread;
    anything else is the store's own. Use from one thread; `close()` ends the thread."""

    def __init__(self, store: JsonlStore, hold: frozenset[str] = frozenset()) -> None:
        """`hold`: file names whose appends wait in memory until `release()` (or `sync`, `close`),
        so that what is written after them reaches the disk first (the writer process holds a
        group's stream lines until the aggregates of that group are queued: a writer killed
        between the two leaves the aggregates ahead of the stream, never behind it)."""
        self.store = store
        self.hold = hold
        self._held: list[list[tuple[str, bytes]]] = []
        self._queue: queue.Queue[list[tuple[str, bytes]] | None] = queue.Queue(QUEUED)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mass-store-writes", daemon=True)
        self._thread.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def append(self, name: str, records: Iterable[dict[str, Any]]) -> int:
        lines = self.store.encoded(records)  # made here: the records may change after the call
        self.append_lines(name, lines)
        return len(lines)

    def append_lines(self, name: str, lines: list[bytes]) -> None:
        if lines:
            self.append_data(name, b"\n".join([*lines, b""]))

    def append_data(self, name: str, data: bytes) -> None:
        if data:
            self.append_group([(name, data)])

    def append_group(self, parts: list[tuple[str, bytes]]) -> None:
        """The store's `append_group` (all parts on disk or none), made by the thread."""
        self._raise()
        parts = [(name, data) for name, data in parts if data]
        if any(name in self.hold for name, _ in parts):
            self._held.append(parts)
        elif parts:
            self._queue.put(parts)

    def release(self) -> None:
        """Queue the held appends, in the order they were made."""
        held, self._held = self._held, []
        for item in held:
            self._queue.put(item)

    def flush(self) -> None:
        """Nothing to do here: the thread writes (and the store retries held data) as data comes."""

    def sync(self) -> None:
        self.release()
        self._queue.join()
        self._raise()
        self.store.sync()

    def close(self) -> None:
        """Write what is queued, end the thread, close the store. Like the store's own close, this
        does not raise: what could not be written is logged (`sync` is where a failure is raised)."""
        if self._thread.is_alive():
            self.release()
            self._queue.put(None)
            self._thread.join()
        self.store.close()
        if self._error is not None:
            log.error("%s", self._error)
            self._error = None

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    self.store.append_group(item)
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                self._error = exc
            finally:
                self._queue.task_done()
