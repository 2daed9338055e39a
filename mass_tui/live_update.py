"""What the engine sends the UI, and the outbox that coalesces it while the UI is behind.

The engine's sink (`mass_tui.sinks.live.UpdateSink`) adds every scored batch
to an `Outbox`: each series' new chart rows (`live_state.FIELDS`), the
anomalies (their episode ids ride on them), each station's place and labels,
and the running counters. A sender (`mass_tui.engine_process`) takes
everything added since its last take as one `Update`, at most every
`interval` seconds, and writes it to the UI's pipe. While the UI reads
slowly that write blocks, and the outbox goes on coalescing: rows are
appended per series, counters add up, status keys keep their newest value,
anomalies queue in order. The UI applies an update with `LiveState.apply`.

Bounds, so that a slow or stuck UI never holds the engine up for long:
rows pending per series are cut to the newest `capacity` (the UI's chart
ring would drop the older ones anyway; `Update.skipped` tells it how many);
past `max_anomalies` pending anomalies the engine waits for the sender at
most `wait_seconds`, once per stall, then sets the oldest pending ones aside
and counts them (`dropped_anomalies`; the store keeps every one).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.base import Anomaly

Key = tuple[str, str]  # (station, variable)
Place = tuple[str, float | None, float | None, dict[str, str] | None]  # (source, lat, lon, tags)

MAX_BATCH_MARKS = 512  # (time, count) entries kept per update; older ones are merged pairwise
_MISSING = object()


@dataclass
class Update:
    """Everything the engine did since the previous update, in the order the UI applies it."""

    rows: dict[Key, np.ndarray] = field(default_factory=dict)  # new chart rows per series, oldest first
    skipped: dict[Key, int] = field(default_factory=dict)  # rows cut before `rows` (the UI ring advances)
    places: dict[str, Place] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # stations whose labels changed
    anomalies: list[Anomaly] = field(default_factory=list)
    muted: dict[int, str] = field(default_factory=dict)  # index in `anomalies` -> why its alerts are held back
    # The alert service's events, oldest first: (episode id of its anomaly, state, why muted or "")
    # with the state from `episodes.alert_state` (firing, silenced, acked, resolved).
    alerts: list[tuple[str, str, str]] = field(default_factory=list)
    marks: list[tuple[float, int]] = field(default_factory=list)  # (time.monotonic() scored, observations)
    status: dict[str, Any] = field(default_factory=dict)  # keys changed since the last update
    notices: list[str] = field(default_factory=list)
    open_daily: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # station -> its days not closed
    dropped_anomalies: int = 0  # set aside because the UI fell behind (all stored)
    done: bool = False  # the engine's run ended (a replay reached its end, or it failed: `error`)
    error: str | None = None
    final: bool = False  # the engine closed its store; nothing follows

    @property
    def observations(self) -> int:
        return sum(n for _, n in self.marks)


class Outbox:
    """The engine's side of the hand-over: many writers add, one sender takes (thread-safe)."""

    def __init__(self, capacity: int = 20_000, *, max_anomalies: int = 50_000, wait_seconds: float = 1.0) -> None:
        self.capacity = capacity
        self.max_anomalies = max_anomalies
        self.wait_seconds = wait_seconds
        self._cond = threading.Condition()
        self._pending = Update()
        self._chunks: dict[Key, list[np.ndarray]] = {}
        self._sizes: dict[Key, int] = {}
        self._sent: dict[str, Any] = {}  # status as last handed over, to send only changes
        self._dirty = False
        self._closed = False
        self._stalled = False  # waited once for this stall already
        self._last_take = float("-inf")
        self.abandoned = False  # the reader is gone: adds are dropped

    # --- writers (the engine's threads) ------------------------------------------
    def add_batch(self, rows: list[tuple[Key, np.ndarray]], observations: int, anomalies: list[Anomaly],
                  places: dict[str, Place] | None = None, labels: dict[str, dict[str, str]] | None = None,
                  muted_why: dict[int, str] | None = None, alert_states: list[tuple[str, str, str]] | None = None,
                  **status: Any) -> None:
        """One scored batch: its rows per series, how many observations, its anomalies (`muted_why`: index
        in them -> why the alert service holds their notices back), its alert events as (episode id, state,
        why muted), and status."""
        now = time.monotonic()
        with self._cond:
            if self.abandoned:
                return
            if anomalies and len(self._pending.anomalies) + len(anomalies) > self.max_anomalies:
                self._make_room(len(anomalies))
            p = self._pending
            for key, block in rows:
                if block.shape[0]:
                    self._add_rows(key, block)
            if places:
                p.places.update(places)
            if labels:
                p.labels.update(labels)
            base = len(p.anomalies)
            p.anomalies.extend(anomalies)
            if muted_why:
                p.muted.update({base + i: why for i, why in muted_why.items()})
            if alert_states:
                p.alerts.extend(alert_states)
            p.marks.append((now, observations))
            if len(p.marks) > MAX_BATCH_MARKS:
                # Pairs merged under the earlier time: the latency figure errs on the slow side.
                m = p.marks
                p.marks = [(m[i][0], m[i][1] + (m[i + 1][1] if i + 1 < len(m) else 0)) for i in range(0, len(m), 2)]
            self._status(status)
            self._dirty = True
            self._cond.notify_all()

    def set_status(self, **status: Any) -> None:
        """Status the UI shows (source state, lag, transport); sent only when a value changed."""
        with self._cond:
            if self._status(status):
                self._dirty = True
                self._cond.notify_all()

    def set_open_daily(self, days: dict[str, list[dict[str, Any]]]) -> None:
        """The daily summaries of days still open, per station (the newest replace older ones)."""
        with self._cond:
            self._pending.open_daily.update(days)
            self._dirty = True
            self._cond.notify_all()

    def notice(self, text: str) -> None:
        with self._cond:
            self._pending.notices.append(text)
            self._dirty = True
            self._cond.notify_all()

    def finish(self, error: str | None = None) -> None:
        """The engine's run ended (with `error` when it failed); sent after everything before it."""
        with self._cond:
            self._pending.done, self._pending.error = True, error
            self._dirty = True
            self._cond.notify_all()

    def close(self) -> None:
        """Nothing more will be added: the next take is the final one."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _status(self, status: dict[str, Any]) -> bool:
        changed = False
        for k, v in status.items():
            if self._sent.get(k, _MISSING) != v:
                self._pending.status[k] = v
                self._sent[k] = v
                changed = True
        return changed

    def _add_rows(self, key: Key, block: np.ndarray) -> None:
        chunks = self._chunks.setdefault(key, [])
        chunks.append(block)
        size = self._sizes.get(key, 0) + block.shape[0]
        # Cut at twice the capacity, down to the capacity: one copy per `capacity` rows added.
        if size > 2 * self.capacity:
            joined = np.concatenate(chunks)
            cut = size - self.capacity
            self._pending.skipped[key] = self._pending.skipped.get(key, 0) + cut
            chunks[:] = [joined[cut:]]
            size = self.capacity
        self._sizes[key] = size

    def _make_room(self, incoming: int) -> None:
        """Hold the lock. Wait for the sender (once per stall), then drop the oldest pending anomalies."""
        if not self._stalled:
            deadline = time.monotonic() + self.wait_seconds
            while len(self._pending.anomalies) + incoming > self.max_anomalies and not self.abandoned:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        over = len(self._pending.anomalies) + incoming - self.max_anomalies
        if over > 0:
            self._stalled = True
            cut = min(over, len(self._pending.anomalies))
            del self._pending.anomalies[:cut]
            self._pending.muted = {i - cut: why for i, why in self._pending.muted.items() if i >= cut}
            self._pending.dropped_anomalies += cut

    # --- the sender ----------------------------------------------------------------------
    def take(self, interval: float = 0.05, timeout: float = 1.0) -> Update | None:
        """Everything added since the last take, no sooner than `interval` s after it; None when
        nothing came within `timeout` s. After `close()`, the final update (marked `final`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._dirty and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            while not self._closed and (left := self._last_take + interval - time.monotonic()) > 0:
                self._cond.wait(left)
            out, self._pending = self._pending, Update()
            out.rows = {key: chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
                        for key, chunks in self._chunks.items()}
            self._chunks, self._sizes = {}, {}
            out.final = self._closed
            self._dirty = False
            self._stalled = False
            self._last_take = time.monotonic()
            self._cond.notify_all()  # an engine waiting for room
            return out

    def abandon(self) -> None:
        """The reader is gone (the UI exited or died): drop what is pending and all that comes."""
        with self._cond:
            self.abandoned = True
            self._pending, self._chunks, self._sizes = Update(), {}, {}
            self._cond.notify_all()
