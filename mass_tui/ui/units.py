"""Metric (as stored) or imperial numbers, for values, spreads and the words of a reason.

A reading converts as `v * scale + offset`; a spread (σ, a band's half
width, a rise or fall) only by `scale`: 2 °C of spread is 3.6 °F, not 35.6.
Factors: NIST SP 811 (2008), appendix B (1 mph = 0.44704 m/s, 1 inHg =
33.8639 hPa, 1 in = 25.4 mm, 1 ft = 0.3048 m).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from sources.variables import REGISTRY


@dataclass(frozen=True)
class Conversion:
    unit: str
    scale: float
    offset: float = 0.0


IMPERIAL = {
    "°C": Conversion("°F", 1.8, 32.0),
    "m/s": Conversion("mph", 1.0 / 0.44704),
    "hPa": Conversion("inHg", 1.0 / 33.8639),
    "mm": Conversion("in", 1.0 / 25.4),
    "m": Conversion("ft", 1.0 / 0.3048),
}


def to_units(values, unit: str, imperial: bool):
    """(values, unit) of readings in the chosen system; metric is the stored one. Arrays or floats."""
    conv = IMPERIAL.get(unit) if imperial else None
    if conv is None:
        return values, unit
    return values * conv.scale + conv.offset, conv.unit


def spread_units(values, unit: str, imperial: bool):
    """(values, unit) of spreads and differences (σ, ±band, a fall): scaled, never offset."""
    conv = IMPERIAL.get(unit) if imperial else None
    if conv is None:
        return values, unit
    return values * conv.scale, conv.unit


# Decimals a reading is shown with, by unit: what the instruments resolve, no more.
DECIMALS = {"°C": 1, "°F": 1, "m/s": 1, "mph": 1, "hPa": 1, "inHg": 2, "mm": 1, "in": 2, "m": 2, "ft": 1,
            "%": 0, "ppm": 0, "ppb": 0, "µg/m³": 1, "kWh": 2, "people": 0, "°": 0}


def fmt(value: float, unit: str, digits: int = 4) -> str:
    """A reading with its unit: the unit's usual decimals ("1004.2 hPa", "29.65 inHg", "37.0 °F"),
    else `digits` significant figures; "-" for a missing value."""
    if value is None or not np.isfinite(value):
        return "-"
    if unit in DECIMALS:
        return f"{value:.{DECIMALS[unit]}f} {unit}"
    return f"{value:.{digits}g} {unit}".strip()


# A number and the unit after it, as the detectors write them ("4.5 hPa", "+5.91 m/s", "±0.3 °C").
# "m" must not match inside "mm" or "m/s": it stands alone.
_NUMBER_UNIT = re.compile(
    r"(?P<pm>±)?(?P<num>[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)(?P<sp> ?)(?P<unit>°C|m/s|hPa|mm|m)(?![\w/])"
)
# Words before (or after) which a number is an amount of change, not a reading. A minus sign alone
# says nothing: -5 °C is a reading; "+" is only ever written on differences.
_DELTA_BEFORE = re.compile(r"(?:rose|fell|by|changed|change of|spread|than|limit|EWMA)\s*$")
_DELTA_AFTER = re.compile(r"^\s*(?:off|from|above|below|change)\b")


# A variable's name as the detectors write it ("wave_height_m 7.09 m does not fit ..."): its suffix
# names the metric unit, so a converted reason says the variable's display name instead.
_VARIABLE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, REGISTRY), key=len, reverse=True)) + r")\b")


def _display_names(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        label = REGISTRY[m[1]].label
        return label if m.start() == 0 else label.lower()

    return _VARIABLE.sub(sub, text)


def convert_reason(text: str, imperial: bool) -> str:
    """A detector's reason with every number-and-unit in the chosen system.

    Differences (a signed number, one after "±", "rose", "fell", "by") scale
    without the offset, so "is -3.68 °C off the forecast 6.5 °C" becomes
    "is -6.62 °F off the forecast 43.7 °F". Each number keeps its precision
    (its decimals, more for a factor like hPa to inHg). A variable's name,
    whose suffix is its metric unit, becomes its display name
    ("wave_height_m 7.09 m" becomes "Wave height 23.3 ft").
    """
    if not imperial:
        return text
    text = _display_names(text)

    def sub(m: re.Match[str]) -> str:
        conv = IMPERIAL[m["unit"]]
        num = m["num"]
        value = float(num)
        before = text[: m.start()]
        delta = bool(m["pm"]) or num[0] == "+" or bool(_DELTA_BEFORE.search(before)) \
            or bool(_DELTA_AFTER.search(text[m.end():]))
        new = value * conv.scale + (0.0 if delta else conv.offset)
        sign = "+" if num[0] == "+" and new >= 0 else ""
        # As precise as the number was: its decimals, shifted by the factor's order of magnitude.
        decimals = len(num.partition(".")[2].partition("e")[0])
        decimals = max(0, decimals + round(-math.log10(conv.scale)))
        return f"{m['pm'] or ''}{sign}{new:.{decimals}f}{m['sp']}{conv.unit}"

    return _NUMBER_UNIT.sub(sub, text)
