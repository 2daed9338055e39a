"""Alert rules and episodes: anomalies in, notifications out.

An episode of a (station, rule) starts with its first matching anomaly and
ends when no matching anomaly has come for `resolve_after` seconds of that
station's data time. The start notifies (unless the last notification of
that (station, rule) is younger than the cooldown), a long episode is
re-notified every `repeat` seconds, a worse severity notifies at once, and
the end sends a "resolved" notice. Everything is timed by observation
timestamps, so a replay at any speed alerts as the live system would have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.base import Anomaly
from sources.schema import iso_utc

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


class AlertConfigError(ValueError):
    pass


@dataclass(frozen=True)
class AlertRule:
    name: str
    detectors: tuple[str, ...]
    variables: tuple[str, ...] | None = None
    min_severity: str = "warning"

    def matches(self, anomaly: Anomaly) -> bool:
        if SEVERITY_RANK.get(anomaly.severity, 0) < SEVERITY_RANK[self.min_severity]:
            return False
        if self.variables is not None and anomaly.variable not in self.variables:
            return False
        det = anomaly.detector
        return any(det == d or det.startswith(d + "/") for d in self.detectors)

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> AlertRule:
        try:
            name = str(table["name"])
            detectors = tuple(str(d) for d in table["detectors"])
            variables = table.get("variables")
            severity = str(table.get("min_severity", "warning"))
        except (KeyError, TypeError) as exc:
            raise AlertConfigError(f"{where} = {dict(table)!r}: expected name, detectors ({exc})") from None
        if severity not in SEVERITY_RANK:
            raise AlertConfigError(f"{where}.min_severity = {severity!r}: expected info, warning or critical")
        if not detectors:
            raise AlertConfigError(f"{where}.detectors is empty: expected at least one detector name")
        return cls(name, detectors, tuple(variables) if variables else None, severity)


@dataclass
class Episode:
    start: float
    last: float  # data time of the latest matching anomaly
    notified_at: float | None  # data time of the latest notification
    notified_severity: str
    worst: Anomaly
    count: int = 1


@dataclass
class AlertEvent:
    kind: str  # "alert", "repeat", "escalated" or "resolved"
    ts: float  # data time of the event
    station: str
    rule: str
    anomaly: Anomaly  # the one that triggered it (for "resolved": the episode's worst)
    episode_start: float
    count: int
    unit: str = ""
    channels: dict[str, str] = field(default_factory=dict)  # filled by the dispatcher

    def to_record(self) -> dict[str, Any]:
        a = self.anomaly
        return {
            "ts": iso_utc(self.ts),
            "kind": self.kind,
            "station": self.station,
            "rule": self.rule,
            "variable": a.variable,
            "value": a.value,
            "unit": self.unit,
            "detector": a.detector,
            "severity": a.severity,
            "reason": a.reason,
            "anomaly_ts": iso_utc(a.ts),
            "episode_start": iso_utc(self.episode_start),
            "readings": self.count,
        }


class AlertManager:
    def __init__(
        self,
        rules: Iterable[AlertRule],
        *,
        cooldown_s: float,
        repeat_s: float,
        resolve_after_s: float,
        notify_resolved: bool = True,
        units: Mapping[str, str] | None = None,
    ) -> None:
        self.rules = list(rules)
        self.cooldown_s = cooldown_s
        self.repeat_s = repeat_s
        self.resolve_after_s = resolve_after_s
        self.notify_resolved = notify_resolved
        self.units = dict(units or {})
        self.active: dict[tuple[str, str], Episode] = {}
        self.last_notified: dict[tuple[str, str], float] = {}

    def restore(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Rebuild open episodes and cooldowns from alerts.jsonl after a restart."""
        from sources.schema import parse_time

        for r in records:
            try:
                key = (str(r["station"]), str(r["rule"]))
                ts = parse_time(r["ts"])
            except (KeyError, ValueError):
                continue
            if r.get("kind") == "resolved":
                self.active.pop(key, None)
                continue
            anomaly = Anomaly(parse_time(r.get("anomaly_ts", r["ts"])), key[0], str(r.get("variable", "")),
                              float(r.get("value") or 0.0), str(r.get("detector", "")),
                              str(r.get("severity", "warning")), 1.0, str(r.get("reason", "")))
            ep = self.active.get(key)
            if ep is None:
                ep = self.active[key] = Episode(parse_time(r.get("episode_start", r["ts"])), ts, ts,
                                                anomaly.severity, anomaly)
            ep.last = max(ep.last, anomaly.ts)
            ep.notified_at = ts
            ep.notified_severity = anomaly.severity
            self.last_notified[key] = ts

    def observe(self, anomalies: Iterable[Anomaly], clocks: Mapping[str, float]) -> list[AlertEvent]:
        """Events for a batch: anomalies in time order, then each station's data time at the batch end."""
        events: list[AlertEvent] = []
        for a in anomalies:
            self._resolve_due(a.station, a.ts, events)
            for rule in self.rules:
                if rule.matches(a):
                    self._on_anomaly(rule, a, events)
        for station, now in clocks.items():
            self._resolve_due(station, now, events)
        return events

    def _on_anomaly(self, rule: AlertRule, a: Anomaly, events: list[AlertEvent]) -> None:
        key = (a.station, rule.name)
        ep = self.active.get(key)
        if ep is None:
            ep = self.active[key] = Episode(a.ts, a.ts, None, "info", a)
            last = self.last_notified.get(key)
            if last is None or a.ts - last >= self.cooldown_s:
                self._notify("alert", ep, key, a, a.ts, events)
            return
        ep.last = max(ep.last, a.ts)
        ep.count += 1
        if a.score > ep.worst.score or SEVERITY_RANK[a.severity] > SEVERITY_RANK[ep.worst.severity]:
            ep.worst = a
        if ep.notified_at is None:
            return  # inside a cooled-down episode: stays quiet until it ends
        if SEVERITY_RANK[a.severity] > SEVERITY_RANK[ep.notified_severity]:
            self._notify("escalated", ep, key, a, a.ts, events)
        elif a.ts - ep.notified_at >= self.repeat_s:
            self._notify("repeat", ep, key, a, a.ts, events)

    def _notify(self, kind: str, ep: Episode, key: tuple[str, str], a: Anomaly, ts: float,
                events: list[AlertEvent]) -> None:
        ep.notified_at = ts
        ep.notified_severity = a.severity
        self.last_notified[key] = ts
        events.append(AlertEvent(kind, ts, key[0], key[1], a, ep.start, ep.count, self.units.get(a.variable, "")))

    def _resolve_due(self, station: str, now: float, events: list[AlertEvent]) -> None:
        for key in [k for k in self.active if k[0] == station]:
            ep = self.active[key]
            if now - ep.last >= self.resolve_after_s:
                del self.active[key]
                if self.notify_resolved and ep.notified_at is not None:
                    end = ep.last + self.resolve_after_s
                    events.append(AlertEvent("resolved", end, station, key[1], ep.worst, ep.start, ep.count,
                                             self.units.get(ep.worst.variable, "")))


def rules_from_config(tables: Any) -> list[AlertRule]:
    if not isinstance(tables, list):
        raise AlertConfigError(f"alerts.rules = {tables!r}: expected a list of [[alerts.rules]] tables")
    return [AlertRule.from_table(t, f"alerts.rules[{i}]") for i, t in enumerate(tables)]
