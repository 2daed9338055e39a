"""What every source shares: its state for the UI and logs, and what one poll returns."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from sources.schema import Rejection, iso_utc
from sources.text import safe_text

MAX_ERROR_CHARS = 300


@dataclass
class SourceState:
    """Up or down, since when, the next retry and the last error, for the status bar and the summary.

    `last_error` often quotes what a server sent: it is kept with control characters escaped
    (`sources.text.safe_text`) and cut to MAX_ERROR_CHARS, whoever sets it.
    """

    name: str
    up: bool | None = None  # None until the first fetch
    stopped: bool = False  # given up for good (bad API key)
    down_since: float | None = None
    next_retry: float | None = None  # wall time of the next attempt while down
    last_error: str = ""
    last_ok: float | None = None
    fetches: int = 0
    failures: int = 0

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "last_error":
            value = safe_text(value, MAX_ERROR_CHARS)
        object.__setattr__(self, name, value)

    def mark_down(self, error: str, retry_in: float | None, now: float | None = None) -> None:
        """One failed attempt: down (since the first failure), the error, and the next retry."""
        now = time.time() if now is None else now
        self.failures += 1
        self.last_error = error
        if self.up is not False:
            self.down_since = now
        self.up = False
        self.next_retry = None if retry_in is None else now + retry_in

    def mark_up(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.up, self.down_since, self.next_retry = True, None, None
        self.last_ok = now

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def summary(self) -> dict[str, Any]:
        """`to_dict` for a headless summary: its wall times (`down_since`, `next_retry`, `last_ok`) in
        ISO 8601 UTC, as the summary shows every other time (the UI reads `to_dict`'s numbers)."""
        out = self.to_dict()
        for key in ("down_since", "next_retry", "last_ok"):
            if out[key] is not None:
                out[key] = iso_utc(out[key])
        return out


@dataclass
class Poll:
    messages: list[bytes] = field(default_factory=list)
    stations: list[str] = field(default_factory=list)  # one per message: the transport's key
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, message: bytes, station: str) -> None:
        self.messages.append(message)
        self.stations.append(station)


class Source(Protocol):
    """One fetch per tick; the caller waits next_delay() seconds before the next."""

    name: str
    state: SourceState

    def poll(self) -> Poll: ...

    def next_delay(self) -> float: ...
