"""Standard payloads of a notification: mass's own JSON, Alertmanager's webhook JSON, CloudEvents 1.0.

- **Alertmanager webhook, version 4** (Prometheus docs, `webhook_config`):
  `version`, `groupKey`, `truncatedAlerts`, `status`, `receiver`,
  `groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL` and
  `alerts[]` with `status`, `labels`, `annotations`, `startsAt`, `endsAt`
  (`0001-01-01T00:00:00Z` while firing, as Alertmanager sends it),
  `generatorURL` and `fingerprint`. Label and annotation values are strings.
- **CloudEvents 1.0, structured content mode** (the CloudEvents spec and its
  JSON event format): one JSON object per event with `specversion`, `id`,
  `source`, `type`, `time`, `subject`, `datacontenttype` and `data`, sent as
  `application/cloudevents+json`; several events at once use the batched
  format, a JSON array, as `application/cloudevents-batch+json`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from detectors.base import Anomaly
from mass_tui.alerts.message import body, subject
from mass_tui.alerts.model import AlertEvent, Notification, common
from sources.schema import iso_utc

FORMATS = ("mass", "alertmanager", "cloudevents")
ZERO_TIME = "0001-01-01T00:00:00Z"
CE_SOURCE = "urn:mass-monitor"
CE_ALERT = "org.mass-monitor.alert."  # + kind
CE_ANOMALY = "org.mass-monitor.anomaly"


def _rfc3339(ts: float) -> str:
    return iso_utc(ts)


def _label_name(name: str) -> str:
    """A Prometheus label name ([A-Za-z_][A-Za-z0-9_]*): tags from data may hold any character."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return out if out and not out[0].isdigit() else f"_{out}"


def _labels(labels: dict[str, str]) -> dict[str, str]:
    return {_label_name(k): str(v) for k, v in labels.items()}


def annotations(n: AlertEvent) -> dict[str, str]:
    a = n.anomaly
    out = {"summary": subject(n).removeprefix("[mass] "), "description": a.reason, "episode": n.episode,
           "kind": n.kind, "readings": str(n.count)}
    if a.value == a.value:
        out["value"] = f"{a.value:g}"
        if n.unit:
            out["unit"] = n.unit
    if n.muted:
        out["muted"] = n.muted
    return out


def alertmanager(notification: Notification, *, receiver: str = "webhook", external_url: str = "") -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for a notification."""
    alerts = []
    for n in notification.notices:
        alerts.append({
            "status": n.status,
            "labels": _labels(n.labels),
            "annotations": annotations(n),
            "startsAt": _rfc3339(n.episode_start),
            "endsAt": _rfc3339(n.ts) if n.kind == "resolved" else ZERO_TIME,
            "generatorURL": f"{external_url.rstrip('/')}/episodes/{n.episode}" if external_url else "",
            "fingerprint": n.fingerprint,
        })
    return {
        "version": "4",
        "groupKey": notification.key,
        "truncatedAlerts": 0,
        "status": notification.status,
        "receiver": receiver,
        "groupLabels": _labels(notification.group_labels),
        "commonLabels": _labels(notification.common_labels()),
        "commonAnnotations": common(a["annotations"] for a in alerts),
        "externalURL": external_url,
        "alerts": alerts,
    }


def mass_json(notification: Notification) -> dict[str, Any]:
    """mass's own body: the first notice's fields at the top (as one alert always was), every notice in
    `notices`, and the subject and text of the mail."""
    first = notification.notices[0]
    return {**first.to_record(), "subject": subject(notification), "text": body(notification),
            "status": notification.status, "group": notification.group_labels,
            "notices": [n.to_record() for n in notification.notices]}


def cloudevent_of_notice(n: AlertEvent) -> dict[str, Any]:
    return {"specversion": "1.0", "id": n.id, "source": CE_SOURCE, "type": CE_ALERT + n.kind,
            "time": _rfc3339(n.ts), "subject": n.station, "datacontenttype": "application/json",
            "data": n.to_record()}


def cloudevent_of_anomaly(a: Anomaly, *, muted: str | None = None,
                          labels: dict[str, str] | None = None) -> dict[str, Any]:
    from mass_tui.alerts.model import short_id

    data = a.to_record()
    if muted:
        data["muted"] = muted
    if labels:
        data["labels"] = labels
    return {"specversion": "1.0", "id": short_id(a.station, a.variable, a.detector, a.ts), "source": CE_SOURCE,
            "type": CE_ANOMALY, "time": _rfc3339(a.ts), "subject": a.station, "datacontenttype": "application/json",
            "data": data}


def cloudevents(events: Sequence[dict[str, Any]]) -> tuple[str, bytes]:
    """(content type, body): one structured event, or the batched format for several."""
    if len(events) == 1:
        return "application/cloudevents+json", orjson.dumps(events[0])
    return "application/cloudevents-batch+json", orjson.dumps(list(events))


def render(fmt: str, notification: Notification, *, receiver: str, external_url: str = "") -> tuple[str, bytes]:
    """(content type, body) of a notification in one of FORMATS."""
    if fmt == "alertmanager":
        return "application/json", orjson.dumps(alertmanager(notification, receiver=receiver,
                                                             external_url=external_url))
    if fmt == "cloudevents":
        return cloudevents([cloudevent_of_notice(n) for n in notification.notices])
    if fmt == "mass":
        return "application/json", orjson.dumps(mass_json(notification))
    raise ValueError(f"payload format {fmt!r}: expected one of {', '.join(FORMATS)}")
