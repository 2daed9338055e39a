"""API responses to wire messages: registry names, SI units, the observation's own time.

Units are read from the response (`current_units` for Open-Meteo, the
requested `units` for OpenWeatherMap), never assumed: the seed device
reported km/h as m/s and was 3.6 times off.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sources.fields import tidy_one


class NormalizeError(ValueError):
    """A response that cannot become an observation; the message says why."""


# Open-Meteo variable -> registry name (current and legacy spellings).
OPEN_METEO_FIELDS = {
    "temperature_2m": "temp_c",
    "relative_humidity_2m": "humidity_pct",
    "relativehumidity_2m": "humidity_pct",
    "dew_point_2m": "dewpoint_c",
    "dewpoint_2m": "dewpoint_c",
    "surface_pressure": "pressure_hpa",
    "pressure_msl": "pressure_msl_hpa",
    "wind_speed_10m": "wind_mps",
    "windspeed_10m": "wind_mps",
    "wind_gusts_10m": "gust_mps",
    "windgusts_10m": "gust_mps",
    "wind_direction_10m": "wind_dir_deg",
    "winddirection_10m": "wind_dir_deg",
    "precipitation": "precip_mm",
    "snowfall": "snow_mm",
    "cloud_cover": "cloud_cover_pct",
    "cloudcover": "cloud_cover_pct",
    "pm2_5": "pm25_ugm3",
    "pm10": "pm10_ugm3",
    "us_aqi": "us_aqi",
}
OPEN_METEO_WEATHER = (
    "temperature_2m,relative_humidity_2m,dew_point_2m,surface_pressure,pressure_msl,"
    "wind_speed_10m,wind_gusts_10m,wind_direction_10m,precipitation,rain,showers,snowfall,cloud_cover"
)
OPEN_METEO_AIR = "pm2_5,pm10,us_aqi"

# unit string -> function to the registry unit, per registry unit
_CONVERT: dict[str, dict[str, Any]] = {
    "temp_c": {"°C": lambda v: v, "°F": lambda v: (v - 32.0) * 5.0 / 9.0},
    "dewpoint_c": {"°C": lambda v: v, "°F": lambda v: (v - 32.0) * 5.0 / 9.0},
    "wind_mps": {"m/s": lambda v: v, "km/h": lambda v: v / 3.6, "mp/h": lambda v: v * 0.44704,
                 "mph": lambda v: v * 0.44704, "kn": lambda v: v * 0.514444, "kt": lambda v: v * 0.514444},
    "precip_mm": {"mm": lambda v: v, "inch": lambda v: v * 25.4},
    # Open-Meteo's snowfall is snow depth; its docs give 7 cm of snow = 10 mm of water.
    "snow_mm": {"cm": lambda v: v * 10.0 / 7.0, "inch": lambda v: v * 2.54 * 10.0 / 7.0,
                "mm": lambda v: v / 7.0},
    "humidity_pct": {"%": lambda v: v},
    "cloud_cover_pct": {"%": lambda v: v},
    "pressure_hpa": {"hPa": lambda v: v},
    "pressure_msl_hpa": {"hPa": lambda v: v},
    "wind_dir_deg": {"°": lambda v: v},
    "pm25_ugm3": {"μg/m³": lambda v: v, "µg/m³": lambda v: v},
    "pm10_ugm3": {"μg/m³": lambda v: v, "µg/m³": lambda v: v},
    "us_aqi": {"USAQI": lambda v: v, "": lambda v: v},
}
_CONVERT["gust_mps"] = _CONVERT["wind_mps"]


def _convert(name: str, value: Any, unit: str, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NormalizeError(f"{field} is not a number: {value!r}")
    table = _CONVERT[name]
    if unit not in table:
        raise NormalizeError(f"{field} in unknown unit {unit!r} (expected one of {', '.join(table)})")
    out = float(table[unit](value))
    return out if out == value else tidy_one(out)  # no conversion noise (-2.000000000000001 °C)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def open_meteo_time(payload: dict[str, Any], value: Any) -> float:
    """UTC seconds of an Open-Meteo `time`: local wall time of the response's zone, or unixtime."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise NormalizeError(f"current.time is not a time: {value!r}")
    try:
        local = datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise NormalizeError(f"current.time unparseable: {value!r}") from None
    offset = payload.get("utc_offset_seconds", 0)
    if not isinstance(offset, int | float):
        raise NormalizeError(f"utc_offset_seconds is not a number: {offset!r}")
    return local.timestamp() - float(offset)


def open_meteo_current(payload: Any, station: str, source: str = "open-meteo") -> dict[str, Any]:
    """The `current` block of a forecast or air-quality response as one wire message."""
    if not isinstance(payload, dict):
        raise NormalizeError("response is not a JSON object")
    if payload.get("error"):
        raise NormalizeError(f"Open-Meteo error: {payload.get('reason', 'no reason given')}")
    current, units = payload.get("current"), payload.get("current_units")
    if not isinstance(current, dict) or not isinstance(units, dict):
        raise NormalizeError("response has no current / current_units block")
    if "time" not in current:
        raise NormalizeError("current block has no time")
    message: dict[str, Any] = {"ts": _iso(open_meteo_time(payload, current["time"])), "station": station,
                               "source": source}
    if isinstance(payload.get("latitude"), int | float) and isinstance(payload.get("longitude"), int | float):
        message["lat"], message["lon"] = float(payload["latitude"]), float(payload["longitude"])
    added = 0
    for field, name in OPEN_METEO_FIELDS.items():
        if field in current:
            value = _convert(name, current[field], str(units.get(field, "")), field)
            if value is not None:
                message[name] = value
                added += 1
    if "precip_mm" not in message:
        # Older requests or models without `precipitation`: rain + showers + snowfall (liquid equivalent).
        parts = [_convert("precip_mm", current.get(f), str(units.get(f, "")), f) for f in ("rain", "showers")
                 if f in current]
        if "snow_mm" in message:
            parts.append(message["snow_mm"])
        parts = [p for p in parts if p is not None]
        if parts:
            message["precip_mm"] = float(sum(parts))
            added += 1
    if not added:
        raise NormalizeError("current block has no values mass knows (all missing or null)")
    return message


def owm_weather(payload: Any, station: str, units: str = "standard") -> dict[str, Any]:
    """An OpenWeatherMap /data/2.5/weather body as one wire message (any `units`)."""
    if not isinstance(payload, dict):
        raise NormalizeError("response is not a JSON object")
    if str(payload.get("cod", 200)) != "200":
        raise NormalizeError(f"OpenWeatherMap error {payload.get('cod')}: {payload.get('message', '')}")
    main, wind = payload.get("main") or {}, payload.get("wind") or {}
    if not isinstance(main, dict) or not isinstance(wind, dict) or "dt" not in payload:
        raise NormalizeError("response lacks main, wind or dt")
    temp_unit = {"standard": "K", "metric": "°C", "imperial": "°F"}.get(units)
    if temp_unit is None:
        raise NormalizeError(f"OPENWEATHER_UNITS = {units!r}: expected standard, metric or imperial")
    speed_unit = "mph" if units == "imperial" else "m/s"

    def temp(v: Any) -> float | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise NormalizeError(f"main.temp is not a number: {v!r}")
        return tidy_one(v - 273.15) if temp_unit == "K" else _convert("temp_c", v, temp_unit, "main.temp")

    message: dict[str, Any] = {"ts": _iso(float(payload["dt"])), "station": station, "source": "openweathermap"}
    coord = payload.get("coord") or {}
    if isinstance(coord.get("lat"), int | float) and isinstance(coord.get("lon"), int | float):
        message["lat"], message["lon"] = float(coord["lat"]), float(coord["lon"])
    fields = {
        "temp_c": temp(main.get("temp")),
        "humidity_pct": _convert("humidity_pct", main.get("humidity"), "%", "main.humidity"),
        "pressure_msl_hpa": _convert("pressure_msl_hpa", main.get("sea_level", main.get("pressure")), "hPa",
                                     "main.pressure"),
        "pressure_hpa": _convert("pressure_hpa", main.get("grnd_level"), "hPa", "main.grnd_level"),
        "wind_mps": _convert("wind_mps", wind.get("speed"), speed_unit, "wind.speed"),
        "gust_mps": _convert("gust_mps", wind.get("gust"), speed_unit, "wind.gust"),
        "wind_dir_deg": _convert("wind_dir_deg", wind.get("deg"), "°", "wind.deg"),
        "cloud_cover_pct": _convert("cloud_cover_pct", (payload.get("clouds") or {}).get("all"), "%", "clouds.all"),
    }
    fields.update(_owm_precipitation(payload))
    message.update({k: v for k, v in fields.items() if v is not None})
    return message


def _owm_precipitation(payload: dict[str, Any]) -> dict[str, float]:
    """`rain` and `snow` blocks as liquid-equivalent mm: precip_mm over 1 h (rain + snow), snow_mm,
    and precip_3h_mm when only the 3 h blocks are given. OpenWeatherMap gives these in mm whatever
    `units` asks for (openweathermap.org/current: "only mm as units of measurement are available")."""
    out: dict[str, float] = {}
    blocks = {}
    for kind in ("rain", "snow"):
        block = payload.get(kind)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise NormalizeError(f"{kind} is not an object: {str(block)[:60]!r}")
        blocks[kind] = {h: _convert("precip_mm", block.get(h), "mm", f"{kind}.{h}") for h in ("1h", "3h")}
    hour = [b["1h"] for b in blocks.values() if b["1h"] is not None]
    if hour:
        out["precip_mm"] = float(sum(hour))
    else:
        three = [b["3h"] for b in blocks.values() if b["3h"] is not None]
        if three:
            out["precip_3h_mm"] = float(sum(three))
    snow = blocks.get("snow", {}).get("1h")
    if snow is not None:
        out["snow_mm"] = snow
    return out
