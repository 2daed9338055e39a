"""The observation schema: decode and validate one wire message.

`decode()` never raises. It returns an `Observation` or a `Rejection` that
carries the reason and the raw bytes, so the caller can quarantine it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from sources.variables import ALIASES, REGISTRY

MAX_MESSAGE_BYTES = 64 * 1024
MAX_STATION_CHARS = 128

# Keys that describe the message rather than carry a measurement.
_TIME_KEYS = ("ts", "ts_iso", "timestamp", "time_utc", "time")
_STATION_KEYS = ("station", "station_id")
_META_KEYS = frozenset(
    (*_TIME_KEYS, *_STATION_KEYS, "source", "provider", "lat", "lon", "tags", "name")
)


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


@dataclass(slots=True)
class Rejection:
    reason: str
    raw: bytes

    def to_record(self, received_at: float) -> dict[str, str]:
        return {
            "reason": self.reason,
            "raw": self.raw.decode("utf-8", errors="backslashreplace"),
            "received_at": iso_utc(received_at),
        }


class InvalidMessage(ValueError):
    """Raised inside validation; `decode()` turns it into a Rejection."""


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> float:
    """Seconds since the epoch (UTC) from an ISO 8601 string or a unix number.

    A timestamp without an offset is taken as UTC: that is what the seed
    device, NOAA and IEM recordings write.
    """
    if isinstance(value, bool):
        raise InvalidMessage(f"timestamp is not a time: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
        if seconds > 1e11:  # unix milliseconds
            seconds /= 1000.0
        if not math.isfinite(seconds):
            raise InvalidMessage(f"timestamp is not finite: {value!r}")
        return seconds
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidMessage(f"unparseable timestamp: {value[:64]!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    raise InvalidMessage(f"timestamp is not a string or number: {value!r}")


@lru_cache(maxsize=8192)
def _parse_iso_cached(value: str) -> float:
    # Many stations share each timestamp; parsing it once saves a third of validation.
    return parse_time(value)


# Every accepted field name -> (registry name, low, high), aliases included.
_FIELDS: dict[str, tuple[str, float, float]] = {
    field: (var.name, var.low, var.high)
    for field, var in [
        *((name, var) for name, var in REGISTRY.items()),
        *((alias, REGISTRY[name]) for alias, name in ALIASES.items()),
    ]
    if field not in _META_KEYS
}


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value
    return None


def _station_of(obj: dict[str, Any], default_station: str | None) -> str:
    station = _first(obj, _STATION_KEYS)
    if station is None:
        provider = obj.get("provider")
        # The seed device wrote one stream per provider and location.
        if isinstance(provider, str) and provider and "ts_iso" in obj:
            lat, lon = obj.get("lat"), obj.get("lon")
            station = f"{provider}@{lat},{lon}" if lat is not None else provider
        elif default_station is not None:
            station = default_station
        else:
            raise InvalidMessage("missing station")
    if isinstance(station, int) and not isinstance(station, bool):
        station = str(station)
    if not isinstance(station, str) or not station.strip():
        raise InvalidMessage(f"station is not a non-empty string: {station!r}")
    if len(station) > MAX_STATION_CHARS:
        raise InvalidMessage(f"station name longer than {MAX_STATION_CHARS} characters")
    return station


def _coordinate(obj: dict[str, Any], key: str, limit: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -limit <= value <= limit:
        raise InvalidMessage(f"{key} is not a coordinate in [-{limit:g}, {limit:g}]: {value!r}")
    return float(value)


def _tags(obj: dict[str, Any]) -> dict[str, str]:
    tags = obj.get("tags")
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidMessage(f"tags is not an object: {tags!r}")
    return {str(k): str(v) for k, v in tags.items()}


def validate(
    obj: Any,
    *,
    default_station: str | None = None,
    default_source: str = "unknown",
    ignored: dict[str, int] | None = None,
) -> Observation:
    """Build an Observation from a decoded JSON value or raise InvalidMessage.

    Fields that are neither metadata nor registry variables are counted in
    `ignored` (field name -> count) so the caller can report them.
    """
    if type(obj) is not dict:
        raise InvalidMessage(f"not a JSON object but {type(obj).__name__}")
    ts_raw = obj.get("ts")
    if ts_raw is None:
        ts_raw = _first(obj, _TIME_KEYS)
        if ts_raw is None:
            raise InvalidMessage("missing ts")
    ts = _parse_iso_cached(ts_raw) if type(ts_raw) is str else parse_time(ts_raw)
    station = obj.get("station")
    if type(station) is not str or not 0 < len(station) <= MAX_STATION_CHARS or not station.strip():
        station = _station_of(obj, default_station)
    values: dict[str, float] = {}
    for key, value in obj.items():
        spec = _FIELDS.get(key)
        if spec is None:
            if ignored is not None and key not in _META_KEYS:
                ignored[key] = ignored.get(key, 0) + 1
            continue
        if value is None:
            continue  # a missing reading, as APIs report it
        kind = type(value)
        if kind is not float and kind is not int:  # bool is its own type: rejected too
            raise InvalidMessage(f"{key} is not a number: {value!r}"[:200])
        name, low, high = spec
        if not low <= value <= high:
            unit = REGISTRY[name].unit
            raise InvalidMessage(
                f"{key}={value!r} outside the physical range [{low:g}, {high:g}] {unit}".rstrip()
            )
        values[name] = value if kind is float else float(value)
    if not values:
        raise InvalidMessage("no variable values")
    source = obj.get("source") or obj.get("provider") or default_source
    return Observation(
        ts=ts,
        station=station,
        source=source if type(source) is str else str(source),
        values=values,
        lat=_coordinate(obj, "lat", 90.0) if "lat" in obj else None,
        lon=_coordinate(obj, "lon", 180.0) if "lon" in obj else None,
        tags=_tags(obj) if "tags" in obj else {},
    )


def decode(
    raw: bytes,
    *,
    default_station: str | None = None,
    default_source: str = "unknown",
    ignored: dict[str, int] | None = None,
) -> Observation | Rejection:
    """Decode one wire message. Never raises."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(f"message larger than {MAX_MESSAGE_BYTES} bytes", raw[:4096])
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(f"not JSON: {exc}", raw)
    try:
        return validate(
            obj, default_station=default_station, default_source=default_source, ignored=ignored
        )
    except InvalidMessage as exc:
        return Rejection(str(exc), raw)
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a year outside datetime's range
        return Rejection(f"invalid message: {exc}", raw)
