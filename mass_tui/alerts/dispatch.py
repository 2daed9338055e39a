"""Delivery off the pipeline: one bounded queue and one worker thread per channel, retries with backoff.

A channel that hangs (an SMTP server that never answers) holds up only its
own queue: the other channels go on. `submit()` never blocks and never
raises. Every delivery ends in exactly one outcome, reported to
`on_outcome` and counted in the channel's status:

- `sent`;
- `failed`: given up after `max_attempts` (exponential backoff with jitter);
- `dropped`: refused because the channel's queue was full;
- `abandoned`: still queued, waiting for a retry or in flight when `close()`
  ran out of time (the process is stopping).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mass_tui.alerts.channels import Channel
from mass_tui.alerts.model import AlertEvent, Notification, as_notification

log = logging.getLogger(__name__)

OUTCOMES = ("sent", "failed", "dropped", "abandoned")
Outcome = Callable[[str, Notification, str, int, str], None]  # channel, notification, outcome, attempts, error


@dataclass
class ChannelStatus:
    sent: int = 0
    failed: int = 0  # deliveries given up
    retries: int = 0
    dropped: int = 0  # refused: the queue was full
    abandoned: int = 0  # still queued (or in flight) when the process stopped
    last_error: str = ""
    ok: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"sent": self.sent, "failed": self.failed, "retries": self.retries, "dropped": self.dropped,
                "abandoned": self.abandoned, "ok": self.ok, "last_error": self.last_error}


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    notification: Notification = field(compare=False)
    attempt: int = field(default=1, compare=False)


class ChannelWorker:
    """The queue and thread of one channel."""

    def __init__(self, channel: Channel, *, max_pending: int, max_attempts: int, retry_seconds: float,
                 max_retry_seconds: float, on_outcome: Outcome | None) -> None:
        self.channel = channel
        self.status = ChannelStatus()
        self.max_pending, self.max_attempts = max_pending, max_attempts
        self.retry_seconds, self.max_retry_seconds = retry_seconds, max_retry_seconds
        self.on_outcome = on_outcome
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._finished = False  # close() gave up: late results are not counted twice
        self._inflight: _Job | None = None
        self._thread = threading.Thread(target=self._run, name=f"alert-{channel.name}", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + (self._inflight is not None)

    def submit(self, notification: Notification) -> bool:
        with self._cond:
            if self._closing or len(self._heap) >= self.max_pending:
                self.status.dropped += 1
                why = "stopping" if self._closing else f"queue full ({self.max_pending})"
                log.error("alert %s: %s delivery of %d item(s) dropped", why, self.channel.name,
                          _size(notification))
                drop = True
            else:
                heapq.heappush(self._heap, _Job(time.monotonic(), next(self._seq), notification))
                self._cond.notify()
                drop = False
        if drop:
            self._report(notification, "dropped", 0, "queue full")
        return not drop

    def _report(self, notification: Notification, outcome: str, attempts: int, error: str) -> None:
        if self.on_outcome is not None:
            try:
                self.on_outcome(self.channel.name, notification, outcome, attempts, error)
            except Exception:  # noqa: BLE001 - a failing journal must not stop deliveries
                log.exception("recording the %s outcome of a delivery via %s", outcome, self.channel.name)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._finished:
                        return
                    if not self._heap:
                        if self._closing:
                            return
                        self._cond.wait()
                        continue
                    wait = self._heap[0].due - time.monotonic()
                    if wait <= 0 or self._closing:
                        job = heapq.heappop(self._heap)
                        self._inflight = job
                        break
                    self._cond.wait(wait)
            try:
                self._attempt(job)
            finally:
                with self._cond:
                    self._inflight = None
                    self._cond.notify_all()

    def _attempt(self, job: _Job) -> None:
        status = self.status
        try:
            self.channel.send(job.notification)
        except Exception as exc:  # noqa: BLE001 - any channel failure is reported, never raised into the pipeline
            with self._cond:
                if self._finished:
                    return  # counted as abandoned already
                status.ok = False
                status.last_error = f"{type(exc).__name__}: {exc}"[:300]
                give_up = job.attempt >= self.max_attempts or self._closing
                if not give_up:
                    status.retries += 1
                    delay = min(self.max_retry_seconds, self.retry_seconds * 2 ** (job.attempt - 1))
                    delay *= random.uniform(0.8, 1.2)
                    heapq.heappush(self._heap, _Job(time.monotonic() + delay, next(self._seq), job.notification,
                                                    job.attempt + 1))
                else:
                    status.failed += 1
            if give_up:
                log.error("alert via %s given up after %d attempts: %s", self.channel.name, job.attempt,
                          status.last_error)
                self._report(job.notification, "failed", job.attempt, status.last_error)
            else:
                log.warning("alert via %s failed (%s); retry %d in %.1f s", self.channel.name, status.last_error,
                            job.attempt, delay)
            return
        with self._cond:
            if self._finished:
                return
            status.sent += 1
            status.ok = True
        log.info("alert notification (%d item(s)) sent via %s", _size(job.notification), self.channel.name)
        self._report(job.notification, "sent", job.attempt, "")

    def finish(self, deadline: float) -> int:
        """Deliver what comes due before `deadline` (monotonic); then a retry due later gets one last
        try; what is still queued or in flight at the deadline is abandoned. Returns that count."""
        with self._cond:
            while (self._heap or self._inflight is not None) and time.monotonic() < deadline:
                if self._inflight is None and self._heap[0].due > deadline:
                    break
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            self._closing = True
            self._cond.notify_all()
            while (self._heap or self._inflight is not None) and time.monotonic() < deadline:
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            left = list(self._heap) + ([self._inflight] if self._inflight is not None else [])
            self._heap.clear()
            self._finished = True
            self.status.abandoned += len(left)
            self._cond.notify_all()
        for job in left:
            log.error("alert via %s abandoned at exit (%d item(s), %d attempt(s) made)", self.channel.name,
                      _size(job.notification), job.attempt - 1)
            self._report(job.notification, "abandoned", job.attempt - 1, self.status.last_error)
        return len(left)


def _size(item: object) -> int:
    notices = getattr(item, "notices", None)
    return len(notices) if notices is not None else len(item) if isinstance(item, list) else 1


class Dispatcher:
    """The workers of every channel. `submit()` hands a notification to each (or to the named ones)."""

    def __init__(self, channels: Iterable[Channel], *, max_pending: int = 1000, max_attempts: int = 5,
                 retry_seconds: float = 2.0, max_retry_seconds: float = 300.0, on_outcome: Outcome | None = None,
                 dedup: Callable[[Notification, str], Notification | None] | None = None) -> None:
        self.channels = list(channels)
        self.dedup = dedup
        self.workers = {ch.name: ChannelWorker(ch, max_pending=max_pending, max_attempts=max_attempts,
                                               retry_seconds=retry_seconds, max_retry_seconds=max_retry_seconds,
                                               on_outcome=on_outcome) for ch in self.channels}
        self.closed = False

    @property
    def status(self) -> dict[str, ChannelStatus]:
        return {name: w.status for name, w in self.workers.items()}

    @property
    def dropped(self) -> int:
        return sum(w.status.dropped for w in self.workers.values())

    @property
    def pending(self) -> int:
        return sum(w.pending for w in self.workers.values())

    def submit(self, item: Notification | AlertEvent) -> None:
        notification = as_notification(item)
        for name, worker in self.workers.items():
            n = self.dedup(notification, name) if self.dedup is not None else notification
            if n is not None:
                worker.submit(n)

    def close(self, timeout: float = 10.0) -> dict[str, int]:
        """Deliver what can be within `timeout` (all channels at once; a retry due later gets one last
        try), then stop; returns the deliveries abandoned per channel."""
        deadline = time.monotonic() + timeout
        self.closed = True
        return {name: w.finish(deadline) for name, w in self.workers.items()}
