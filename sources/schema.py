"""The observation schema: what one valid reading is, and what a quarantined message or field is.

Decoding (`sources.decode`) never raises: every message becomes rows of an
`ObservationBatch` and quarantine records. A `Rejection` is a whole message
set aside (not JSON, no usable time or station, no valid value left) with the
reason and its raw bytes; a `FieldRejection` is one bad field of a message whose
other values were stored (a missing-value sentinel, not a number, outside the
physical range, a conflicting duplicate) with station, time, field, raw value
and reason. `decode()` here is the one-message convenience over the batch decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sources.times import TimeError
from sources.times import parse_time as _parse_time

# The largest message decoded; a longer one is quarantined whole (`too_large`). 1 MiB, the file
# transport's line limit too: a Telegraf batch of its default 1,000 metrics is about 115 KB, and a
# line past 1 MiB is no reading (reliability case smuggle-over-1mb-line: rejected whole).
MAX_MESSAGE_BYTES = 1 << 20
MAX_STATION_CHARS = 128
RAW_KEPT = 4096  # bytes of an oversized message kept in its quarantine record


@dataclass(slots=True)
class Observation:
    ts: float  # seconds since the epoch, UTC
    station: str
    source: str
    values: dict[str, float]
    lat: float | None = None
    lon: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ts_iso(self) -> str:
        return iso_utc(self.ts)

    def to_wire(self) -> dict[str, Any]:
        """The flat JSON form: one object, registry names, SI units."""
        out: dict[str, Any] = {"ts": self.ts_iso, "station": self.station, "source": self.source}
        if self.lat is not None:
            out["lat"] = self.lat
            out["lon"] = self.lon
        if self.tags:
            out["tags"] = self.tags
        out.update(self.values)
        return out


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """Where a message came from on the transport (Kafka: topic, partition, offset, key, record time)."""

    topic: str = ""
    partition: int = -1
    offset: int = -1
    key: bytes | None = None
    timestamp_ms: int | None = None  # the record's timestamp (create or log-append time), if any

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"topic": self.topic, "partition": self.partition, "offset": self.offset}
        if self.key is not None:
            out["key"] = self.key.decode("utf-8", errors="backslashreplace")
        return out


class Messages(list):
    """Raw messages (a list of bytes) that carry their transport metadata: `meta[i]` for message i."""

    def __init__(self, raws: list[bytes] | None = None, meta: list[MessageMeta] | None = None) -> None:
        super().__init__(raws or [])
        self.meta: list[MessageMeta] = meta if meta is not None else []


@dataclass(slots=True)
class Rejection:
    """A whole message set aside: `reason` for people, `code` for counting (by reason)."""

    reason: str
    raw: bytes
    code: str = "invalid"
    meta: MessageMeta | None = None

    def to_record(self, received_at: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "message",
            "reason": self.reason,
            "code": self.code,
            "raw": self.raw.decode("utf-8", errors="backslashreplace"),
            "received_at": iso_utc(received_at),
        }
        if self.meta is not None:
            out.update(self.meta.to_record())
        return out


@dataclass(slots=True)
class FieldRejection:
    """One bad field of a message whose other values were kept."""

    station: str
    ts: float
    field: str  # as written in the message or header
    raw: str  # the field's value as written (text, or JSON for a JSON value)
    reason: str
    code: str
    variable: str = ""  # the registry name it would have been
    meta: MessageMeta | None = None

    def to_record(self, received_at: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "field",
            "reason": self.reason,
            "code": self.code,
            "station": self.station,
            "ts": iso_utc(self.ts),
            "field": self.field,
            "raw": self.raw,
        }
        if self.variable:
            out["variable"] = self.variable
        out["received_at"] = iso_utc(received_at)
        if self.meta is not None:
            out.update(self.meta.to_record())
        return out


Quarantined = Rejection | FieldRejection


class InvalidMessage(ValueError):
    """A message that cannot become an observation; the message says why."""


def iso_utc(ts: float) -> str:
    """ISO 8601 UTC ("2012-10-29T12:00:00Z"); a time no calendar holds (NaN, past the year 9999, as an
    old or hand-edited state file may have) is shown as "<value> (not a time)" instead of raising."""
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError, TypeError):
        return f"{ts!r} (not a time)"


def parse_time(value: Any) -> float:
    """Seconds since the epoch (UTC) from an ISO 8601 string or an epoch number in s, ms, µs or ns.

    A timestamp without an offset is taken as UTC here. Raises InvalidMessage (a
    ValueError) for anything unusable, a time outside the plausible span included.
    """
    try:
        return _parse_time(value)
    except TimeError as exc:
        raise InvalidMessage(str(exc)) from None


def decode(
    raw: bytes,
    *,
    default_station: str | None = None,
    default_source: str = "unknown",
    ignored: dict[str, int] | None = None,
) -> Observation | Rejection:
    """Decode one wire message (never raises): its observation, or the rejection of the whole message.

    Field rejections of a kept message are dropped here; the engine uses `sources.decode.Decoder`,
    which returns them.
    """
    from sources.decode import Decoder

    out = Decoder().decode([raw], default_station=default_station, default_source=default_source, ignored=ignored)
    if out.rejected:
        return out.rejected[0]
    return out.batch.observation(0)


def validate(obj: Any, *, default_station: str | None = None, default_source: str = "unknown",
             ignored: dict[str, int] | None = None) -> Observation:
    """An Observation from a decoded JSON value, or InvalidMessage with the reason."""
    from sources.decode import Decoder

    out = Decoder().decode_objects([obj], default_station=default_station, default_source=default_source,
                                   ignored=ignored)
    if out.rejected:
        raise InvalidMessage(out.rejected[0].reason)
    return out.batch.observation(0)
