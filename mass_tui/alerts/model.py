"""What flows through the notification path: a notice about one alert episode, and a notification
(the notices of one group, sent once per channel).

Labels follow Alertmanager's data model: a notice carries its station's
labels (`sources/labels.py`: station, source, kind, tags) plus `alertname`
and `rule` (the rule's name), `severity`, `variable` and `detector`. The
fingerprint identifies the alert (its station's labels, `alertname` and,
for a per-variable alert, `variable`), computed as Prometheus'
`model.LabelSet.Fingerprint()`: FNV-1a 64 over the sorted label names and
values, each followed by the byte 0xff, written as 16 hex digits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.base import Anomaly
from sources.schema import iso_utc

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1


def fingerprint(labels: Mapping[str, str]) -> str:
    """Prometheus' label-set fingerprint (common/model/signature.go, labelSetToFingerprint) in hex."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8"):
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def short_id(*parts: object) -> str:
    """A stable id from its parts (the same episode gets the same id in every process)."""
    return hashlib.sha1("\x00".join(map(repr, parts)).encode()).hexdigest()[:12]


KINDS = ("alert", "repeat", "escalated", "resolved")


@dataclass
class AlertEvent:
    """A notice about one episode of a (station, rule): it opened, is still on, got worse, or cleared.

    `ts` is data time (epoch seconds). `muted` holds why the notice was held
    back (a silence, a mute time, an inhibition), None when it goes out.
    """

    kind: str  # "alert", "repeat", "escalated" or "resolved"
    ts: float  # data time of the event
    station: str
    rule: str
    anomaly: Anomaly  # the one that triggered it (for "resolved": the episode's worst)
    episode_start: float
    count: int
    unit: str = ""
    channels: dict[str, str] = field(default_factory=dict)
    episode: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    identity: dict[str, str] = field(default_factory=dict)  # the labels the fingerprint is made of
    muted: str | None = None
    acked: bool = False

    @property
    def id(self) -> str:
        return short_id(self.episode or (self.station, self.rule), self.kind, round(self.ts, 3))

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.identity or {"station": self.station, "alertname": self.rule})

    @property
    def status(self) -> str:
        """Alertmanager's status of the alert: firing, or resolved."""
        return "resolved" if self.kind == "resolved" else "firing"

    def to_record(self) -> dict[str, Any]:
        a = self.anomaly
        record: dict[str, Any] = {
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
            "id": self.id,
            "episode": self.episode,
            "fingerprint": self.fingerprint,
            "labels": self.labels,
        }
        if self.muted:
            record["muted"] = self.muted
        if self.acked:
            record["acked"] = True
        return record


@dataclass
class Notification:
    """The notices of one group (same `group_by` label values), sent as one message per channel."""

    key: str
    group_labels: dict[str, str]
    notices: list[AlertEvent]

    @classmethod
    def of(cls, event: AlertEvent) -> Notification:
        return cls(group_key({"rule": event.rule}), {"rule": event.rule}, [event])

    @property
    def status(self) -> str:
        return "firing" if any(n.kind != "resolved" for n in self.notices) else "resolved"

    @property
    def ids(self) -> list[str]:
        return [n.id for n in self.notices]

    def common_labels(self) -> dict[str, str]:
        return common(n.labels for n in self.notices)


def common(label_sets: Any) -> dict[str, str]:
    """The labels every set has with the same value (Alertmanager's commonLabels)."""
    it = iter(label_sets)
    first = next(it, None)
    if first is None:
        return {}
    out = dict(first)
    for labels in it:
        out = {k: v for k, v in out.items() if labels.get(k) == v}
    return out


def group_key(group_labels: Mapping[str, str]) -> str:
    """Alertmanager's group key shape: `{}:{name="value", ...}`."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return "{}:{" + inner + "}"


def as_notification(item: AlertEvent | Notification) -> Notification:
    return item if isinstance(item, Notification) else Notification.of(item)


def notices_of(item: AlertEvent | Notification | Sequence[AlertEvent]) -> list[AlertEvent]:
    if isinstance(item, Notification):
        return item.notices
    if isinstance(item, AlertEvent):
        return [item]
    return list(item)
