"""What an alert says: station, variable, value with unit, what fired and why, UTC and local time."""

from __future__ import annotations

from datetime import UTC, datetime

from mass_tui.alerts.manager import AlertEvent

SMS_LIMIT = 160


def _times(ts: float) -> tuple[str, str]:
    utc = datetime.fromtimestamp(ts, UTC)
    local = utc.astimezone()
    return utc.strftime("%Y-%m-%d %H:%M UTC"), local.strftime("%Y-%m-%d %H:%M %Z").strip()


def _value(event: AlertEvent) -> str:
    a = event.anomaly
    if a.value != a.value:  # composite rules have no single value
        return ""
    return f"{a.variable} {a.value:.4g} {event.unit}".rstrip()


def subject(event: AlertEvent) -> str:
    a = event.anomaly
    if event.kind == "resolved":
        return f"[mass] RESOLVED {event.rule} at {event.station}"
    label = {"alert": "", "repeat": "still ", "escalated": "escalated: "}[event.kind]
    return f"[mass] {a.severity.upper()} {label}{event.rule} at {event.station}: {_value(event)}".rstrip(": ")


def body(event: AlertEvent) -> str:
    a = event.anomaly
    utc, local = _times(event.ts)
    start_utc, start_local = _times(event.episode_start)
    if event.kind == "resolved":
        lines = [
            f"{event.rule} at station {event.station} has cleared.",
            f"Episode: {start_utc} to {utc} ({event.count} readings); worst: {_value(event)}, {a.reason}.",
            f"Local time: {start_local} to {local}",
        ]
    else:
        lines = [
            f"Station:  {event.station}",
            f"Reading:  {_value(event) or a.variable}",
            f"Fired:    {a.detector} ({a.severity}), rule {event.rule}",
            f"Why:      {a.reason}",
            f"Time:     {utc} / {local} local",
            f"Episode:  since {start_utc}, {event.count} readings",
        ]
    return "\n".join(lines) + "\n"


def sms_text(event: AlertEvent) -> str:
    """At most 160 characters, for email-to-SMS gateways."""
    utc, _ = _times(event.ts)
    if event.kind == "resolved":
        text = f"mass RESOLVED {event.rule} {event.station} {utc}"
    else:
        text = f"mass {event.anomaly.severity.upper()} {event.station}: {event.anomaly.reason} ({utc})"
    return text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 1] + "…"
