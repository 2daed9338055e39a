"""What every source shares: its state for the UI and logs, and what one poll returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sources.schema import Rejection


@dataclass
class SourceState:
    name: str
    up: bool | None = None  # None until the first fetch
    stopped: bool = False  # given up for good (bad API key)
    down_since: float | None = None
    next_retry: float | None = None  # wall time of the next attempt while down
    last_error: str = ""
    last_ok: float | None = None
    fetches: int = 0
    failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


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
