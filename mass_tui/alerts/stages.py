"""The notification path as small stages, composed in order as Alertmanager's (`notify/notify.go`):

    inhibit -> silence (and mute times) -> wait and group -> dedup -> retry (one queue per channel)

`Muters` is the one place that decides whether an alert is muted
(Alertmanager's `notify/mute.go`: one stage type over any `Muter`); the
manager asks it for every notice as it is made, in data time order, and the
engine asks it for every anomaly, so a silenced anomaly is stored and shown
with the reason. `GroupStage` holds notices for `group_wait` and releases
one `Notification` per group. `DedupStage` drops what a channel already
delivered (the notification log survives restarts), and the per-channel
queues in `dispatch.py` retry with backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mass_tui.alerts.matchers import Matcher, MatcherError, matchers_from_config, matches_all
from mass_tui.alerts.model import AlertEvent, Notification, group_key
from mass_tui.alerts.mute_times import MuteTime
from mass_tui.alerts.state import AlertState, Silence


class Muter(Protocol):
    def mutes(self, labels: Mapping[str, str], ts: float) -> str | None:
        """Why an alert with these labels is muted at data time `ts`, or None."""


# --- inhibition -------------------------------------------------------------------
class InhibitError(ValueError):
    pass


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching `source` fires, alerts matching `target` with the same `equal` labels are muted.

    Alertmanager's inhibit_rules; as there, an alert never inhibits itself.
    """

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def from_table(cls, table: Any, where: str) -> InhibitRule:
        if not isinstance(table, Mapping):
            raise InhibitError(f"{where} = {table!r}: expected a table with source_matchers, target_matchers, equal")
        unknown = set(table) - {"source_matchers", "target_matchers", "equal"}
        if unknown:
            raise InhibitError(f"{where}.{sorted(unknown)[0]}: unknown key; expected source_matchers, "
                               "target_matchers, equal")
        equal = table.get("equal", [])
        if not isinstance(equal, list) or not all(isinstance(e, str) for e in equal):
            raise InhibitError(f"{where}.equal = {equal!r}: expected a list of label names")
        try:
            return cls(tuple(matchers_from_config(table.get("source_matchers", []), f"{where}.source_matchers")),
                       tuple(matchers_from_config(table.get("target_matchers", []), f"{where}.target_matchers")),
                       tuple(equal))
        except MatcherError as exc:
            raise InhibitError(str(exc)) from None


def inhibit_rules_from_config(tables: Any) -> list[InhibitRule]:
    if not isinstance(tables, list):
        raise InhibitError(f"alerts.inhibit_rules = {tables!r}: expected a list of [[alerts.inhibit_rules]] tables")
    return [InhibitRule.from_table(t, f"alerts.inhibit_rules[{i}]") for i, t in enumerate(tables)]


class Inhibitor:
    """Mutes targets while a source alert fires.

    `firing()` gives (version, [(episode id, labels)]) of the firing alerts;
    the ones that match a source are kept per version, so with no source
    firing (nearly always) a check costs one comparison.
    """

    def __init__(self, rules: Sequence[InhibitRule],
                 firing: Callable[[], tuple[int, Iterable[tuple[str, dict[str, str]]]]]) -> None:
        self.rules = list(rules)
        self.firing = firing
        self._version = -1
        self._sources: list[tuple[InhibitRule, str, dict[str, str]]] = []

    def sources(self) -> list[tuple[InhibitRule, str, dict[str, str]]]:
        version, firing = self.firing()
        if version != self._version:
            alerts = list(firing)
            self._sources = [(rule, ep_id, labels) for rule in self.rules for ep_id, labels in alerts
                             if matches_all(rule.source, labels)]
            self._version = version
        return self._sources

    def mutes(self, labels: Mapping[str, str], ts: float) -> str | None:
        if not self.rules:
            return None
        for rule, ep_id, src in self.sources():
            if not matches_all(rule.target, labels) or _same_alert(src, labels):
                continue
            if all(src.get(name, "") == labels.get(name, "") for name in rule.equal):
                return f"inhibited by {src.get('alertname', '?')} at {src.get('station', '?')} ({ep_id})"
        return None


def _same_alert(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    keys = ("alertname", "station", "variable", "source")
    return all(a.get(k, "") == b.get(k, "") for k in keys)


# --- silences and mute times -------------------------------------------------------------
class Silencer:
    """Silences from the SQLite state, re-read when another process changed them."""

    def __init__(self, state: AlertState | None) -> None:
        self.state = state
        self.silences: list[Silence] = state.silences() if state is not None else []

    def reload(self) -> None:
        if self.state is not None:
            self.silences = self.state.silences()

    def mutes(self, labels: Mapping[str, str], ts: float) -> str | None:
        for s in self.silences:
            if s.covers(ts) and matches_all(s.matchers, labels):
                return f"silence {s.id}"
        return None


class TimeMuter:
    def __init__(self, mute_times: Sequence[MuteTime]) -> None:
        self.mute_times = list(mute_times)

    def mutes(self, labels: Mapping[str, str], ts: float) -> str | None:
        for m in self.mute_times:
            if m.mutes(labels, ts):
                return f"mute time {m.name}"
        return None


class Muters:
    """The stages that mute, in Alertmanager's order: inhibit, then time mutes and silences."""

    def __init__(self, inhibitor: Inhibitor, time_muter: TimeMuter, silencer: Silencer) -> None:
        self.stages: list[Any] = [inhibitor, time_muter, silencer]
        self.inhibitor, self.time_muter, self.silencer = inhibitor, time_muter, silencer

    @property
    def idle(self) -> bool:
        """Nothing could mute anything right now (the fast path for anomalies)."""
        return not self.silencer.silences and not self.time_muter.mute_times and not self.inhibitor.sources()

    def reason(self, labels: Mapping[str, str], ts: float) -> str | None:
        """The one function that decides whether an alert with these labels is muted at data time `ts`."""
        for stage in self.stages:
            why = stage.mutes(labels, ts)
            if why:
                return why
        return None

    def __call__(self, event: AlertEvent) -> str | None:
        return self.reason(event.labels, event.ts)


# --- wait and group ------------------------------------------------------------------
@dataclass
class _Group:
    labels: dict[str, str]
    opened: float  # data time of its first notice
    opened_wall: float
    notices: list[AlertEvent] = field(default_factory=list)


class GroupStage:
    """Notices whose `group_by` labels agree, arriving within `group_wait`, go out as one notification.

    Waiting is in data time (a replay groups as live would have), with the
    wall clock as a backstop: a group also leaves `group_wait` of wall time
    after it opened, so a feed that stops does not hold notices back. A
    notification lists each episode once, in its latest state.
    """

    def __init__(self, group_by: Sequence[str], group_wait_s: float) -> None:
        self.group_by = list(group_by)
        self.group_wait_s = group_wait_s
        self.groups: dict[str, _Group] = {}

    def add(self, notice: AlertEvent, wall: float) -> list[Notification]:
        """Queue a notice; returns the notifications that are due by its data time."""
        out = self.due(notice.ts, wall)
        labels = {name: notice.labels.get(name, "") for name in self.group_by}
        key = group_key(labels)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(labels, notice.ts, wall)
        group.notices.append(notice)
        if self.group_wait_s <= 0:
            out.extend(self._release([key]))
        return out

    def due(self, data_clock: float, wall: float) -> list[Notification]:
        keys = [k for k, g in self.groups.items()
                if data_clock >= g.opened + self.group_wait_s or wall >= g.opened_wall + self.group_wait_s]
        return self._release(keys)

    def flush(self) -> list[Notification]:
        return self._release(list(self.groups))

    def _release(self, keys: list[str]) -> list[Notification]:
        out = []
        for key in keys:
            group = self.groups.pop(key)
            latest: dict[str, AlertEvent] = {}
            for n in group.notices:
                latest.pop(n.episode or n.id, None)
                latest[n.episode or n.id] = n
            out.append(Notification(key, group.labels, list(latest.values())))
        return out

    @property
    def pending(self) -> int:
        return sum(len(g.notices) for g in self.groups.values())


# --- dedup ----------------------------------------------------------------------------
class DedupStage:
    """Drops notices a channel already delivered (after a restart re-reads a batch), from the state's log."""

    def __init__(self, state: AlertState | None) -> None:
        self.state = state

    def __call__(self, notification: Notification, channel: str) -> Notification | None:
        if self.state is None:
            return notification
        done = self.state.sent(notification.ids, channel)
        if not done:
            return notification
        left = [n for n in notification.notices if n.id not in done]
        return Notification(notification.key, notification.group_labels, left) if left else None
