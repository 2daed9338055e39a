"""Field names to registry variables, with the unit to convert from, and the markers of a missing reading.

A message field or CSV header is resolved once (cached) to a `FieldSpec`:
- a registry name (`temp_c`) or a known alias (`air_temp_c`, `wind_speed_ms`);
- an IEM ASOS column (`tmpf` °F, `dwpf`, `sknt` knots, `gust` knots, `sped`
  mph, `alti` inHg, `mslp` hPa, `p01i` inches, `p01m` mm, `drct`, `relh`,
  `tmpc`, `dwpc`, `gust_mph`), units as the IEM download documents them
  (mesonet.agron.iastate.edu/request/download.phtml);
- a quantity with a unit suffix: `temp_f`, `wind_kt`, `wind_speed_kt`,
  `pressure_inhg`, `precip_in`, `Temperature (°F)`, `wind [km/h]`.

Missing markers (text meaning "no reading"): empty, NA, N/A, NaN, null, M, MM, -
by default (`inputs.na`, `--na`), case-insensitive. A missing reading is absent,
not an error. The trace marker `T` (IEM precipitation) is a trace: 0.0001 inch,
IEM's own value for it. Numeric sentinels (NDBC's "9-filled" fields: 99.0 wind
and gust, 999 direction, 9999.0 pressure, 999.0 temperatures, 99.0 waves; and the
common -9999 / 9999) are numbers that mean "missing": a message field with one is
quarantined with a reason naming the marker (NDBC files read natively treat them
as the missing markers they are there).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sources.variables import ALIASES, REGISTRY

DEFAULT_NA = ("", "NA", "N/A", "NaN", "null", "M", "MM", "-")
TRACE_MM = 0.0001 * 25.4  # IEM writes a trace as 0.0001 inch

Convert = Callable[[np.ndarray], np.ndarray]


def _same(v: np.ndarray) -> np.ndarray:
    return v


# unit label (normalised) -> (quantity, converter to the registry unit of that quantity)
_UNITS: dict[str, tuple[str, Convert]] = {}


def _unit(quantity: str, convert: Convert, *labels: str) -> None:
    for label in labels:
        _UNITS[label] = (quantity, convert)


_unit("temperature", _same, "c", "degc", "celsius", "°c", "deg_c", "degreec", "degrees_c", "degree_c")
_unit("temperature", lambda v: (v - 32.0) * (5.0 / 9.0), "f", "degf", "fahrenheit", "°f", "deg_f", "degrees_f",
      "degreef", "degree_f")
_unit("temperature", lambda v: v - 273.15, "k", "kelvin")
# "m s-1" is how CF / ERDDAP write m/s (normalised to m_s_1)
_unit("speed", _same, "ms", "mps", "m/s", "m_s", "ms-1", "m_s-1", "m_s_1", "ms_1")
_unit("speed", lambda v: v * 0.514444, "kt", "kts", "knot", "knots", "kn")
_unit("speed", lambda v: v * 0.44704, "mph", "mi/h", "mp/h")
_unit("speed", lambda v: v / 3.6, "kmh", "kph", "km/h", "km_h")
_unit("pressure", _same, "hpa", "mb", "mbar", "millibar", "millibars")
_unit("pressure", lambda v: v * 33.8639, "inhg", "in_hg", "inches_hg")
_unit("pressure", lambda v: v / 100.0, "pa")
_unit("pressure", lambda v: v * 10.0, "kpa")
_unit("pressure", lambda v: v * 1.333224, "mmhg", "mm_hg")
_unit("length", _same, "mm")
_unit("length", lambda v: v * 25.4, "in", "inch", "inches")
_unit("length", lambda v: v * 10.0, "cm")
_unit("height", _same, "m", "meters", "metres")
_unit("height", lambda v: v * 0.3048, "ft", "feet")
_unit("percent", _same, "pct", "percent", "%")
_unit("angle", _same, "deg", "degt", "degrees", "°", "degrees_true", "degree_true", "deg_true")

# base name (normalised) -> registry name; the registry name decides the quantity
_BASES: dict[str, str] = {}


def _base(name: str, *bases: str) -> None:
    for b in bases:
        _BASES[b] = name


_base("temp_c", "temp", "temperature", "air_temp", "air_temperature", "airtemp", "tmp", "t2m", "atmp")
_base("dewpoint_c", "dewpoint", "dew_point", "dew", "dwpt", "td", "dewp", "dew_point_temperature")
_base("humidity_pct", "humidity", "rh", "relative_humidity", "hum", "relh")
_base("pressure_hpa", "pressure", "press", "station_pressure", "baro", "barometer", "stn_pressure")
_base("pressure_msl_hpa", "slp", "mslp", "sea_level_pressure", "pressure_msl", "msl_pressure",
      "pressure_sea_level", "sealevel_pressure", "bar")  # NDBC's BAR (bar in ERDDAP) is sea-level pressure
_base("wind_mps", "wind", "wind_speed", "windspeed", "wspd", "ws", "wind_spd", "wind_speed_10m")
_base("gust_mps", "gust", "wind_gust", "gusts", "wind_gusts", "gst", "windgust", "peak_gust")
_base("wind_dir_deg", "wind_dir", "wind_direction", "winddir", "wdir", "wd", "wind_deg")
_base("precip_mm", "precip", "precipitation", "rain", "rainfall", "prcp", "precip_1h", "rain_1h", "pcpn")
_base("water_temp_c", "water_temp", "water_temperature", "sst", "sea_temp", "wtmp")
_base("wave_height_m", "wave_height", "wvht", "waves", "significant_wave_height")
_base("cloud_cover_pct", "cloud_cover", "clouds", "cloudcover")

_QUANTITY = {
    "temp_c": "temperature", "dewpoint_c": "temperature", "water_temp_c": "temperature",
    "humidity_pct": "percent", "cloud_cover_pct": "percent",
    "pressure_hpa": "pressure", "pressure_msl_hpa": "pressure", "altimeter_hpa": "pressure",
    "wind_mps": "speed", "gust_mps": "speed", "wind_dir_deg": "angle",
    "precip_mm": "length", "snow_mm": "length", "precip_3h_mm": "length", "wave_height_m": "height",
}

# IEM ASOS download columns (asos.py): name -> (registry name, unit label)
_IEM = {
    "tmpf": ("temp_c", "f"), "dwpf": ("dewpoint_c", "f"), "tmpc": ("temp_c", "c"), "dwpc": ("dewpoint_c", "c"),
    "relh": ("humidity_pct", "%"), "drct": ("wind_dir_deg", "deg"), "sknt": ("wind_mps", "kt"),
    "sped": ("wind_mps", "mph"), "gust": ("gust_mps", "kt"), "gust_mph": ("gust_mps", "mph"),
    "gust_sknt": ("gust_mps", "kt"),  # the one-minute ASOS download
    "alti": ("altimeter_hpa", "inhg"), "mslp": ("pressure_msl_hpa", "mb"), "p01i": ("precip_mm", "in"),
    "p01m": ("precip_mm", "mm"),
}

# Numbers that mean "missing" (value in the message's own unit -> who writes it).
_NDBC = "NDBC's 9-filled missing marker"
_SENTINELS: dict[str, dict[float, str]] = {
    "wind_mps": {99.0: _NDBC}, "gust_mps": {99.0: _NDBC}, "wind_dir_deg": {999.0: _NDBC},
    "pressure_hpa": {9999.0: _NDBC}, "pressure_msl_hpa": {9999.0: _NDBC}, "temp_c": {999.0: _NDBC},
    "dewpoint_c": {999.0: _NDBC}, "water_temp_c": {999.0: _NDBC}, "wave_height_m": {99.0: _NDBC},
}
_COMMON = {-9999.0: "a common missing-value marker", 9999.0: "a common missing-value marker",
           -999.0: "a common missing-value marker"}
for _name in _QUANTITY:
    for _v, _who in _COMMON.items():
        _SENTINELS.setdefault(_name, {}).setdefault(_v, _who)


@dataclass(frozen=True)
class FieldSpec:
    """How one input field becomes a registry variable."""

    field: str  # as written in the input
    name: str  # registry name
    low: float
    high: float
    unit: str  # the input's unit label, "" when it is the registry's
    convert: Convert | None  # to the registry unit; None when the same
    sentinels: tuple[tuple[float, str], ...]  # (value in the input's unit, who uses it)
    trace: bool  # "T" means a trace (precipitation)

    def sentinel_reason(self, value: float, shown: str = "") -> str | None:
        for marker, who in self.sentinels:
            if value == marker:
                return f"missing-value sentinel {shown or f'{marker:g}'} ({who})"
        return None


def _normalise(text: str) -> str:
    s = text.strip().lower().replace("°", "deg_").replace("deg_c", "degc").replace("deg_f", "degf")
    return re.sub(r"[\s\-\.]+", "_", s).strip("_")


_BRACKET = re.compile(r"^(.*?)\s*[\(\[]\s*([^\)\]]*?)\s*[\)\]]\s*$")


def _spec(field: str, name: str, unit: str, convert: Convert | None) -> FieldSpec:
    var = REGISTRY[name]
    markers = _SENTINELS.get(name, {})
    if convert is not None:
        # NDBC writes its 9-filled markers in its own (registry) units: 99.0 knots is a
        # hurricane's wind, not a missing one. The common -9999/9999/-999 hold in any unit.
        markers = {v: who for v, who in markers.items() if who != _NDBC}
    sentinels = tuple(sorted(markers.items()))
    return FieldSpec(field, name, var.low, var.high, unit, convert, sentinels, name == "precip_mm")


# Names that mean an IEM column only inside an IEM ASOS file (elsewhere `gust` is a plain gust in m/s).
_IEM_ONLY = frozenset({"gust"})


@lru_cache(maxsize=4096)
def resolve(field: str, dialect: str = "") -> FieldSpec | None:
    """The FieldSpec of an input field name, or None when it is not a variable mass knows.

    `dialect` "iem" reads the IEM ASOS columns whose names are generic elsewhere (`gust` in knots).
    """
    if field in REGISTRY and not (dialect == "iem" and field in _IEM_ONLY):
        return _spec(field, field, "", None)
    alias = ALIASES.get(field)
    if alias is not None:
        return _spec(field, alias, "", None)
    low = field.strip().lower()
    if low in _IEM and (dialect == "iem" or low not in _IEM_ONLY):
        name, label = _IEM[low]
        quantity, convert = _UNITS[label]
        return _spec(field, name, label, None if convert is _same else convert)
    if low in REGISTRY:
        return _spec(field, low, "", None)
    if low in ALIASES:
        return _spec(field, ALIASES[low], "", None)
    m = _BRACKET.match(field)
    if m:
        base, label = _normalise(m.group(1)), _normalise(m.group(2)).replace("deg_", "deg")
        return _with_unit(field, base, label)
    norm = _normalise(field)
    if norm in _BASES:
        return _spec(field, _BASES[norm], "", None)
    base, _, label = norm.rpartition("_")
    if base:
        return _with_unit(field, base, label)
    return None


def _with_unit(field: str, base: str, label: str) -> FieldSpec | None:
    name = _BASES.get(base)
    if name is None:
        name = REGISTRY.get(base) and base
    if not name:
        return None
    if label in ("", "degt", "degrees_true") and _QUANTITY.get(name) == "angle":
        return _spec(field, name, "", None)
    unit = _UNITS.get(label) or _UNITS.get(label.replace("_", ""))
    if unit is None or _QUANTITY.get(name) != unit[0]:
        return None
    _quantity, convert = unit
    return _spec(field, name, label, None if convert is _same else convert)


SIGNIFICANT = 12


def tidy(values: np.ndarray) -> np.ndarray:
    """Converted values rounded to 12 significant digits: a conversion's binary noise (53.96 °F →
    12.200000000000001 °C) is not a reading's precision, and 12 digits keep far more than any sensor
    gives. Powers of ten up to 1e22 are exact doubles, so the division rounds correctly."""
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = SIGNIFICANT - 1 - np.floor(np.log10(np.abs(values)))
    exponent = np.nan_to_num(exponent, nan=0.0, posinf=0.0, neginf=0.0)
    scale = 10.0 ** np.clip(exponent, 0, 22)
    with np.errstate(invalid="ignore", over="ignore"):
        rounded = np.round(values * scale) / scale
    return np.where(exponent > 22, values, rounded)  # below 1e-11: left as it is


def tidy_one(value: float) -> float:
    """tidy() of one number."""
    return float(tidy(np.array([value]))[0])


def unit_label(text: str) -> str | None:
    """The normalised label of `text` ("m s-1" → "m_s_1", "degree_C" → "degree_c") when it names a unit
    mass converts from, else None. Used to tell a units row under a CSV header (ERDDAP writes one)."""
    label = _normalise(text).replace("deg_", "deg")
    if label in _UNITS:
        return label
    return label.replace("_", "") if label.replace("_", "") in _UNITS else None


def na_markers(markers: tuple[str, ...] | list[str] = DEFAULT_NA) -> frozenset[str]:
    """The missing markers, compared case-insensitively after stripping (empty is always one)."""
    return frozenset({m.strip().casefold() for m in markers} | {""})
