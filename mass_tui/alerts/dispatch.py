"""Delivery off the pipeline: a bounded queue, one worker thread, retries with backoff.

`submit()` never blocks and never raises: a slow or failing channel cannot
hold up observations. A full queue refuses new deliveries (counted and
logged); a delivery that keeps failing is given up after `max_attempts`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from dataclasses import dataclass, field

from mass_tui.alerts.channels import Channel
from mass_tui.alerts.manager import AlertEvent

log = logging.getLogger(__name__)


@dataclass
class ChannelStatus:
    sent: int = 0
    failed: int = 0  # deliveries given up
    retries: int = 0
    last_error: str = ""
    ok: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"sent": self.sent, "failed": self.failed, "retries": self.retries, "ok": self.ok,
                "last_error": self.last_error}


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    channel: Channel = field(compare=False)
    event: AlertEvent = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Dispatcher:
    def __init__(self, channels: list[Channel], *, max_pending: int = 1000, max_attempts: int = 5,
                 retry_seconds: float = 2.0, max_retry_seconds: float = 300.0) -> None:
        self.channels = channels
        self.status = {ch.name: ChannelStatus() for ch in channels}
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.dropped = 0
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._inflight = 0
        self._thread = threading.Thread(target=self._run, name="alert-dispatch", daemon=True)
        if channels:
            self._thread.start()

    def submit(self, event: AlertEvent) -> None:
        with self._cond:
            for ch in self.channels:
                if len(self._heap) >= self.max_pending:
                    self.dropped += 1
                    log.error("alert queue full (%d): %s delivery of %s dropped", self.max_pending, ch.name,
                              event.rule)
                    continue
                heapq.heappush(self._heap, _Job(time.monotonic(), next(self._seq), ch, event))
            self._cond.notify()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        if self._closing:
                            return
                        self._cond.wait()
                        continue
                    wait = self._heap[0].due - time.monotonic()
                    if wait <= 0 or self._closing:
                        job = heapq.heappop(self._heap)
                        self._inflight += 1
                        break
                    self._cond.wait(wait)
            try:
                self._attempt(job)
            finally:
                with self._cond:
                    self._inflight -= 1
                    self._cond.notify_all()

    def _attempt(self, job: _Job) -> None:
        status = self.status[job.channel.name]
        try:
            job.channel.send(job.event)
        except Exception as exc:  # noqa: BLE001 - any channel failure is reported, never raised into the pipeline
            status.ok = False
            status.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if job.attempt >= self.max_attempts or self._closing:
                status.failed += 1
                log.error("alert via %s given up after %d attempts: %s", job.channel.name, job.attempt,
                          status.last_error)
                return
            status.retries += 1
            delay = min(self.max_retry_seconds, self.retry_seconds * 2 ** (job.attempt - 1))
            delay *= random.uniform(0.8, 1.2)
            log.warning("alert via %s failed (%s); retry %d in %.1f s", job.channel.name, status.last_error,
                        job.attempt, delay)
            with self._cond:
                heapq.heappush(self._heap, _Job(time.monotonic() + delay, next(self._seq), job.channel,
                                                job.event, job.attempt + 1))
            return
        status.sent += 1
        status.ok = True
        log.info("alert %s %s at %s sent via %s", job.event.kind, job.event.rule, job.event.station,
                 job.channel.name)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what comes due within `timeout`, then stop; a retry due later gets one last try."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._heap or self._inflight) and time.monotonic() < deadline:
                if not self._inflight and self._heap[0].due > deadline:
                    break
                self._cond.wait(0.02)
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(max(0.1, deadline - time.monotonic()))
