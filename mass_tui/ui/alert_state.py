"""Acknowledgements and silences the UI sets, behind a small interface.

`AlertState` is what the UI needs: `ack(episode_id)`, `mute(matchers,
until)`, `is_muted(labels, at)`. A silence is a set of equality matchers
over labels (`{"station": "MSP"}`, `{"station": "MSP", "variable":
"gust_mps"}`, `{"episode": id}`) and a span of data time, as
Alertmanager's silences are (`notify/mute.go`: every matcher must match,
starts ≤ t < ends). `StateFile` keeps them in a JSON file under the data
dir (`ui/state.json`, written atomically); the alert-state store of
`mass_tui.alerts` can take its place behind the same methods.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Silence:
    """Labels matching every matcher are muted from `starts` to `ends` (data time, epoch seconds)."""

    id: str
    matchers: dict[str, str]
    starts: float
    ends: float
    comment: str = ""
    created: float = field(default_factory=time.time)  # wall time

    def matches(self, labels: Mapping[str, str], at: float) -> bool:
        return self.starts <= at < self.ends and all(labels.get(k) == v for k, v in self.matchers.items())


class AlertState(Protocol):
    """What the UI asks of an acknowledgement and silence store."""

    version: int  # changes with every change, so the UI knows when to redraw

    def ack(self, episode_id: str) -> None: ...

    def unack(self, episode_id: str) -> None: ...

    def is_acked(self, episode_id: str) -> bool: ...

    def mute(self, matchers: Mapping[str, str], until: float, *, start: float, comment: str = "") -> Silence: ...

    def unmute(self, silence_id: str) -> None: ...

    def is_muted(self, labels: Mapping[str, str], at: float) -> Silence | None: ...

    def silences(self) -> list[Silence]: ...


class StateFile:
    """`AlertState` in a JSON file, plus the UI's preferences (units, sort order).

    A file that cannot be read is set aside as `state.json.bad` (and logged);
    a directory that cannot be written keeps the state in memory for this
    run and says so in `error`.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.version = 0
        self.error = ""
        self._lock = threading.Lock()
        self._acks: dict[str, float] = {}
        self._silences: dict[str, Silence] = {}
        self.prefs: dict[str, Any] = {}
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self._acks = {str(k): float(v) for k, v in data.get("acks", {}).items()}
            for s in data.get("silences", []):
                sil = Silence(str(s["id"]), {str(k): str(v) for k, v in s["matchers"].items()}, float(s["starts"]),
                              float(s["ends"]), str(s.get("comment", "")), float(s.get("created", 0.0)))
                self._silences[sil.id] = sil
            prefs = data.get("prefs", {})
            self.prefs = dict(prefs) if isinstance(prefs, dict) else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            bad = path.with_name(path.name + ".bad")
            log.warning("UI state %s unreadable (%s); set aside as %s", path, exc, bad.name)
            self.error = f"{path} unreadable ({exc}); set aside as {bad.name}"
            with contextlib.suppress(OSError):
                path.replace(bad)

    def _save(self) -> None:
        self.version += 1
        if self.path is None:
            return
        data = {"acks": self._acks, "silences": [asdict(s) for s in self._silences.values()], "prefs": self.prefs}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state.", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1)
            os.replace(tmp, self.path)
            self.error = ""
        except OSError as exc:
            self.error = f"cannot save {self.path}: {exc.strerror or exc}; kept for this session only"
            log.warning("%s", self.error)

    # --- AlertState ------------------------------------------------------
    def ack(self, episode_id: str) -> None:
        with self._lock:
            self._acks[episode_id] = time.time()
            self._save()

    def unack(self, episode_id: str) -> None:
        with self._lock:
            if self._acks.pop(episode_id, None) is not None:
                self._save()

    def is_acked(self, episode_id: str) -> bool:
        return episode_id in self._acks

    def mute(self, matchers: Mapping[str, str], until: float, *, start: float, comment: str = "") -> Silence:
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if until <= start:
            raise ValueError(f"a silence must end after it starts ({until} <= {start})")
        sil = Silence(uuid.uuid4().hex[:12], dict(matchers), start, until, comment)
        with self._lock:
            self._silences[sil.id] = sil
            self._save()
        return sil

    def unmute(self, silence_id: str) -> None:
        with self._lock:
            if self._silences.pop(silence_id, None) is not None:
                self._save()

    def is_muted(self, labels: Mapping[str, str], at: float) -> Silence | None:
        """The silence that mutes `labels` at data time `at` (the one ending last), or None."""
        best = None
        for sil in self._silences.values():
            if sil.matches(labels, at) and (best is None or sil.ends > best.ends):
                best = sil
        return best

    def silences(self) -> list[Silence]:
        return sorted(self._silences.values(), key=lambda s: s.ends)

    # --- preferences -------------------------------------------------------
    def set_pref(self, key: str, value: Any) -> None:
        if self.prefs.get(key) != value:
            with self._lock:
                self.prefs[key] = value
                self._save()
