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
        _check_mute(matchers, start, until)
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


class SharedAlertState:
    """`AlertState` over the alert store the headless service and `mass silence`/`mass ack` use
    (`mass_tui.alerts.state`, SQLite under the data dir), with the UI's preferences kept in a
    `StateFile`. An acknowledgement or a mute set here stops the notifications too, in this
    process or in a service running beside it, and survives restarts.

    UI mutes are equality matchers (`station`, `variable`, `episode`); silences made with
    `mass silence add` may use any operator and show here as `name=~value`-style text.
    """

    def __init__(self, store: Any, prefs: StateFile) -> None:
        self.store = store
        self._prefs = prefs
        self._own = 0  # bumped on this process's writes, which PRAGMA data_version does not see
        self._seen = -1
        self._acks: set[str] = set()
        self._silences: list[Any] = []
        self._refresh()

    @property
    def prefs(self) -> dict[str, Any]:
        return self._prefs.prefs

    @property
    def error(self) -> str:
        return self._prefs.error

    def set_pref(self, key: str, value: Any) -> None:
        self._prefs.set_pref(key, value)

    @property
    def version(self) -> int:
        if self.store.changed():
            self._own += 1
        if self._own != self._seen:
            self._refresh()
        return self._own

    def _refresh(self) -> None:
        self._acks = set(self.store.acks())
        self._silences = self.store.silences()
        self._seen = self._own

    def _wrote(self) -> None:
        self._own += 1
        self._refresh()

    def ack(self, episode_id: str) -> None:
        self.store.ack(episode_id, "ui", exact=True)
        self._wrote()

    def unack(self, episode_id: str) -> None:
        self.store.unack(episode_id)
        self._wrote()

    def is_acked(self, episode_id: str) -> bool:
        return episode_id in self._acks

    def mute(self, matchers: Mapping[str, str], until: float, *, start: float, comment: str = "") -> Silence:
        from mass_tui.alerts.matchers import Matcher

        _check_mute(matchers, start, until)
        made = self.store.add_silence([Matcher.make(k, "=", v) for k, v in matchers.items()], start, until,
                                      created_by="ui", comment=comment)
        self._wrote()
        return _ui_silence(made)

    def unmute(self, silence_id: str) -> None:
        self.store.expire_silence(silence_id)
        self._wrote()

    def is_muted(self, labels: Mapping[str, str], at: float) -> Silence | None:
        best = None
        for sil in self._silences:
            if sil.mutes(dict(labels), at) and (best is None or sil.ends_at > best.ends_at):
                best = sil
        return _ui_silence(best) if best is not None else None

    def silences(self) -> list[Silence]:
        return sorted((_ui_silence(s) for s in self._silences), key=lambda s: s.ends)


def _ui_silence(s: Any) -> Silence:
    # The UI shows `name=value`; another operator is kept visible in the value ("station=~b1-.*" shows
    # as "station=~b1-.*" with the "=" of the display and the "~" of the operator).
    matchers = {m.name: m.value if m.op == "=" else f"{m.op[1:]}{m.value}" if m.op == "=~" else f"{m.op}{m.value}"
                for m in s.matchers}
    return Silence(s.id, matchers, s.starts_at, s.ends_at, s.comment, s.created_at)


def _check_mute(matchers: Mapping[str, str], start: float, until: float) -> None:
    """Raises ValueError for a mute no silence can express: no matcher, or a span that ends first."""
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    if until <= start:
        raise ValueError(f"a silence must end after it starts ({until} <= {start})")
