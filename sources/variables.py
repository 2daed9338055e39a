"""The variable registry: every quantity mass knows, in SI/metric units.

A value outside a variable's physical range is a sensor fault, not weather:
decoding rejects it so it never reaches a detector baseline.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    unit: str
    label: str
    low: float
    high: float
    # False for quantities a mean and sigma mean nothing for (a compass
    # direction wraps at 360): stored and shown, not scored.
    scored: bool = True

    def in_range(self, value: float) -> bool:
        return self.low <= value <= self.high


_VARIABLES = (
    Variable("temp_c", "°C", "Temperature", -90.0, 70.0),
    Variable("dewpoint_c", "°C", "Dew point", -90.0, 50.0),
    Variable("humidity_pct", "%", "Relative humidity", 0.0, 100.0),
    Variable("pressure_hpa", "hPa", "Station pressure", 300.0, 1100.0),
    Variable("pressure_msl_hpa", "hPa", "Sea-level pressure", 850.0, 1090.0),
    # The altimeter setting (QNH) of an airport report: reduced to sea level by the standard atmosphere.
    Variable("altimeter_hpa", "hPa", "Altimeter setting", 850.0, 1090.0),
    Variable("wind_mps", "m/s", "Wind speed", 0.0, 120.0),
    Variable("gust_mps", "m/s", "Wind gust", 0.0, 150.0),
    Variable("wind_dir_deg", "°", "Wind direction", 0.0, 360.0, scored=False),
    # Liquid-equivalent precipitation of the hour before the reading (rain, showers and melted snow).
    Variable("precip_mm", "mm", "Precipitation", 0.0, 500.0),
    Variable("precip_3h_mm", "mm", "Precipitation (3 h)", 0.0, 1000.0),
    # Snowfall as liquid equivalent, also counted in precip_mm.
    Variable("snow_mm", "mm", "Snowfall (liquid eq.)", 0.0, 500.0),
    Variable("cloud_cover_pct", "%", "Cloud cover", 0.0, 100.0),
    Variable("wave_height_m", "m", "Wave height", 0.0, 40.0),
    Variable("water_temp_c", "°C", "Water temperature", -5.0, 45.0),
    Variable("pm25_ugm3", "µg/m³", "PM2.5", 0.0, 2000.0),
    Variable("pm10_ugm3", "µg/m³", "PM10", 0.0, 5000.0),
    Variable("us_aqi", "", "US AQI", 0.0, 1000.0),
    Variable("co2_ppm", "ppm", "CO2", 0.0, 60000.0),
    Variable("eco2_ppm", "ppm", "eCO2", 0.0, 60000.0),
    Variable("tvoc_ppb", "ppb", "TVOC", 0.0, 60000.0),
    # A head count switches between empty and busy regimes every day: mean
    # and sigma say little about it; threshold rules suit it better.
    Variable("occupancy", "people", "Occupancy", 0.0, 10000.0, scored=False),
    Variable("energy_kwh", "kWh", "Energy", 0.0, 1.0e6),
    Variable("fire_alarm", "", "Fire alarm", 0.0, 1.0),
    Variable("value", "", "Value", -1.0e12, 1.0e12),
)

REGISTRY: dict[str, Variable] = {v.name: v for v in _VARIABLES}

# Field names used by recordings we want to replay as they are: the seed
# M.A.S.S. Device used the registry names already; NOAA/IEM extracts and
# common CSV exports use these.
ALIASES: dict[str, str] = {
    "air_temp_c": "temp_c",
    "temperature_c": "temp_c",
    "temperature": "temp_c",
    "humidity": "humidity_pct",
    "relative_humidity_pct": "humidity_pct",
    "pressure": "pressure_hpa",
    "wind_speed_ms": "wind_mps",
    "wind_speed_mps": "wind_mps",
    "wind_gust_ms": "gust_mps",
    "wind_gust_mps": "gust_mps",
    "precip_1h_mm": "precip_mm",
    "pm2_5": "pm25_ugm3",
    "pm10": "pm10_ugm3",
    "tvoc": "tvoc_ppb",
    "eco2": "eco2_ppm",
}


def canonical_name(field: str) -> str | None:
    """Registry name for a message field, or None when the field is not a variable."""
    if field in REGISTRY:
        return field
    return ALIASES.get(field)
