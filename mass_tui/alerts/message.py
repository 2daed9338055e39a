"""What an alert says: station, variable, value with unit, what fired and why, UTC and local time.

A notification of several notices (a group) gets one subject naming how
many and where, and a body with one line per notice.

Every string that comes from data (station names, reasons, tags) goes
through `printable()` first: C0 and C1 control characters, DEL and the
Unicode line and paragraph separators become visible `\\xNN` / `\\uNNNN`
escapes, so a station called "a\\nBcc: x" can neither break an email
header nor fake a line of the body.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from mass_tui.alerts.model import AlertEvent, Notification, notices_of

SMS_LIMIT = 160
SUBJECT_LIMIT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: object) -> str:
    """`text` with every control character escaped (`\\n` -> `\\x0a`): safe in a header, a line, a terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", str(text))


def _times(ts: float) -> tuple[str, str]:
    utc = datetime.fromtimestamp(ts, UTC)
    local = utc.astimezone()
    return utc.strftime("%Y-%m-%d %H:%M UTC"), local.strftime("%Y-%m-%d %H:%M %Z").strip()


def _value(event: AlertEvent) -> str:
    a = event.anomaly
    if a.value != a.value:  # composite rules and conditions have no single value
        return ""
    return f"{printable(a.variable)} {a.value:.4g} {event.unit}".rstrip()


def _label(event: AlertEvent) -> str:
    return {"alert": "", "repeat": "still ", "escalated": "escalated: "}.get(event.kind, "")


def _one_subject(event: AlertEvent) -> str:
    a = event.anomaly
    station, rule = printable(event.station), printable(event.rule)
    if event.kind == "resolved":
        return f"[mass] RESOLVED {rule} at {station}"
    return f"[mass] {a.severity.upper()} {_label(event)}{rule} at {station}: {_value(event)}".rstrip(": ")


def subject(item: AlertEvent | Notification) -> str:
    """One line, at most SUBJECT_LIMIT characters, no control characters."""
    notices = notices_of(item)
    if len(notices) == 1:
        text = _one_subject(notices[0])
    else:
        firing = [n for n in notices if n.kind != "resolved"]
        rules = sorted({printable(n.rule) for n in notices})
        stations = list(dict.fromkeys(printable(n.station) for n in notices))
        state = f"{len(firing)} firing" + (f", {len(notices) - len(firing)} resolved" if len(firing) < len(notices)
                                          else "")
        worst = max((n.anomaly.severity for n in firing), key=lambda s: {"critical": 2, "warning": 1}.get(s, 0),
                    default="")
        shown = ", ".join(stations[:5]) + (f" (+{len(stations) - 5} more)" if len(stations) > 5 else "")
        text = f"[mass] {worst.upper() + ' ' if worst else ''}{'/'.join(rules)}: {state} at {len(stations)} " \
               f"station{'s' if len(stations) != 1 else ''}: {shown}"
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 1] + "…"


def _one_body(event: AlertEvent) -> list[str]:
    a = event.anomaly
    utc, local = _times(event.ts)
    start_utc, start_local = _times(event.episode_start)
    station, rule, reason = printable(event.station), printable(event.rule), printable(a.reason)
    if event.kind == "resolved":
        return [
            f"{rule} at station {station} has cleared.",
            f"Episode: {start_utc} to {utc} ({event.count} readings); worst: {_value(event) or a.variable}, {reason}.",
            f"Local time: {start_local} to {local}",
            f"Episode id: {event.episode}",
        ]
    lines = [
        f"Station:  {station}",
        f"Reading:  {_value(event) or printable(a.variable) or '-'}",
        f"Fired:    {printable(a.detector)} ({a.severity}), rule {rule}",
        f"Why:      {reason}",
        f"Time:     {utc} / {local} local",
        f"Episode:  since {start_utc}, {event.count} readings; id {event.episode}"
        + (" (acknowledged)" if event.acked else f" (mass ack {event.episode} stops repeats)"),
    ]
    return lines


def _one_line(event: AlertEvent) -> str:
    utc, _ = _times(event.ts)
    kind = "RESOLVED" if event.kind == "resolved" else event.anomaly.severity.upper()
    value = _value(event)
    return (f"- {kind:8s} {printable(event.station)}  {printable(event.rule)}  {value + '  ' if value else ''}"
            f"{printable(event.anomaly.reason)}  ({utc}, episode {event.episode})")


def body(item: AlertEvent | Notification) -> str:
    notices = notices_of(item)
    if len(notices) == 1:
        return "\n".join(_one_body(notices[0])) + "\n"
    firing = sum(n.kind != "resolved" for n in notices)
    lines = [f"{len(notices)} alerts ({firing} firing, {len(notices) - firing} resolved):", ""]
    lines += [_one_line(n) for n in notices]
    lines += ["", "Acknowledge one with: mass ack EPISODE (no repeats until it resolves)."]
    return "\n".join(lines) + "\n"


def sms_text(item: AlertEvent | Notification) -> str:
    """At most 160 characters, for email-to-SMS gateways."""
    notices = notices_of(item)
    event = notices[0]
    utc, _ = _times(event.ts)
    if len(notices) > 1:
        text = subject(notices)[len("[mass] "):]
        text = f"mass {text} ({utc})"
    elif event.kind == "resolved":
        text = f"mass RESOLVED {printable(event.rule)} {printable(event.station)} {utc}"
    else:
        text = f"mass {event.anomaly.severity.upper()} {printable(event.station)}: {printable(event.anomaly.reason)} " \
               f"({utc})"
    return text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 1] + "…"


def format_notice(e: AlertEvent) -> str:
    """The log line of a notice (headless stdout and logs/mass.log)."""
    from sources.schema import iso_utc

    label = {"alert": "ALERT", "repeat": "ALERT (repeat)", "escalated": "ALERT (escalated)",
             "resolved": "RESOLVED"}.get(e.kind, e.kind.upper())
    muted = f" [muted: {e.muted}]" if e.muted else ""
    return (f"{label} {iso_utc(e.ts)} {printable(e.rule)} at {printable(e.station)}: {printable(e.anomaly.reason)}"
            f" (episode {e.episode}){muted}")
