"""`alerts.jsonl`: every notice (sent or muted, with why) and every delivery's outcome per channel.

Two kinds of lines, told apart by `kind`:

- a notice: `alert`, `repeat`, `escalated` or `resolved`, with its `id`,
  `episode`, `labels`, `fingerprint`, and `muted` when it was held back;
- `delivery`: one per notification and channel, with `channel`, `outcome`
  (sent, failed, dropped, abandoned), `notices` (the ids it carried),
  `attempts`, `error`, and `at` (wall time).

Notices are written by the thread that scores; outcomes by each channel's
worker; so the journal has its own lock and its own file handle (the JSONL
store of the engine never touches this file).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mass_tui.alerts.model import AlertEvent, Notification
from mass_tui.store import ALERTS, JsonlStore
from sources.schema import iso_utc


class Journal:
    def __init__(self, db_dir: Path, *, max_bytes: int = 64 * 1024 * 1024, retention_days: float = 14.0) -> None:
        self.store = JsonlStore(db_dir, max_bytes=max_bytes, retention_days=retention_days)
        self._lock = threading.Lock()

    def notices(self, events: Iterable[AlertEvent]) -> None:
        self._write([e.to_record() for e in events])

    def delivery(self, channel: str, notification: Notification, outcome: str, attempts: int, error: str) -> None:
        self._write([{"kind": "delivery", "at": iso_utc(time.time()), "channel": channel, "outcome": outcome,
                      "notices": notification.ids, "group": notification.key, "attempts": attempts,
                      "error": error}])

    def record(self, record: dict[str, Any]) -> None:
        self._write([record])

    def _write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        with self._lock:
            self.store.append(ALERTS, records)
            self.store.flush()

    def sync(self) -> None:
        with self._lock:
            self.store.sync()

    def close(self) -> None:
        with self._lock:
            self.store.close()
