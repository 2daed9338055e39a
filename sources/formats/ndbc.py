"""NOAA NDBC standard meteorological files, historical (`41002h2018.txt`) and realtime2 (`41002.txt`).

Format (www.ndbc.noaa.gov/measdes.shtml, /faq/mods.shtml): whitespace-separated
columns; a header `#YY  MM DD hh mm WDIR WSPD GST WVHT DPD APD MWD PRES ATMP
WTMP DEWP VIS PTDY TIDE` and, since 2007, a units line `#yr mo dy hr mn degT
m/s m/s m sec sec degT hPa degC degC degC nmi hPa ft`. Older historical files
have no `#`, a two-digit `YY` (until 1998) or a four-digit `YYYY`, no minute
column, `WD` for WDIR and `BAR` for PRES. Times are UTC. Realtime files list the
newest reading first (replay puts them in time order) and write `MM` for a
missing value; historical files write the column's "9-filled" value (999 for
directions, 99.0 for WSPD, GST and VIS, 99.00 for WVHT, DPD, APD and TIDE,
9999.0 for PRES, 999.0 for temperatures), which is read as missing here.

Columns kept: WDIR → wind_dir_deg, WSPD → wind_mps, GST → gust_mps, WVHT →
wave_height_m, PRES → pressure_msl_hpa (sea-level), ATMP → temp_c, WTMP →
water_temp_c, DEWP → dewpoint_c, each converted from the unit the units line
names (m/s, or knots if a file says kts). DPD, APD, MWD, VIS, PTDY and TIDE are
not variables mass scores: they are counted under `ignored_fields`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from sources.decode import Table
from sources.formats.opener import nul_problem, open_text
from sources.schema import RAW_KEPT

_TIME = ("YY", "YYYY", "MM", "DD", "hh", "mm")
# column -> (base name for the unit suffix, registry name when in the documented unit, documented unit)
COLUMNS = {
    "WDIR": ("wind_dir", "wind_dir_deg", "degt"), "WD": ("wind_dir", "wind_dir_deg", "degt"),
    "WSPD": ("wind_speed", "wind_mps", "m/s"), "GST": ("gust", "gust_mps", "m/s"),
    "WVHT": ("wave_height", "wave_height_m", "m"), "PRES": ("pressure_msl", "pressure_msl_hpa", "hpa"),
    "BAR": ("pressure_msl", "pressure_msl_hpa", "hpa"), "ATMP": ("air_temp", "temp_c", "degc"),
    "WTMP": ("water_temp", "water_temp_c", "degc"), "DEWP": ("dewpoint", "dewpoint_c", "degc"),
}
SENTINELS = {
    "WDIR": 999.0, "WD": 999.0, "MWD": 999.0, "WSPD": 99.0, "GST": 99.0, "VIS": 99.0, "WVHT": 99.0,
    "DPD": 99.0, "APD": 99.0, "TIDE": 99.0, "PRES": 9999.0, "BAR": 9999.0, "ATMP": 999.0, "WTMP": 999.0,
    "DEWP": 999.0,
}
_UNIT_ALIASES = {"kts": "kt", "knots": "kt", "degt": "degt", "m/s": "m/s", "hpa": "hpa", "degc": "degc",
                 "degf": "degf", "mph": "mph", "m": "m", "ft": "ft", "in": "inhg"}
_STATION = re.compile(r"^([A-Za-z0-9]{4,7}?)(h\d{4}|_5day|\.\w+)?$")


def station_from_name(name: str) -> str:
    """The station id of an NDBC file name: `41002h2018.txt` and `41002.txt` give 41002."""
    stem = name.split(".")[0]
    m = _STATION.match(stem)
    return (m.group(1) if m else stem).upper()


def year(text: str) -> str:
    """A four-digit year; NDBC wrote two digits until 1998 (70-99 → 19xx, 00-69 → 20xx)."""
    if len(text) == 2 and text.isdigit():
        return ("19" if int(text) >= 70 else "20") + text
    return text


def tables(path: Path, chunk_bytes: int, problems: list[str] | None = None) -> Iterator[Table]:
    with open_text(path, problems) as fh:
        names: list[str] = []
        units: list[str] = []
        table: Table | None = None
        size = 0
        for line in fh:
            stripped = line.strip()
            if not stripped:
                continue
            if not names:
                names = stripped.lstrip("#").split()
                continue
            if stripped.startswith("#"):
                if not units and table is None:
                    units = stripped.lstrip("#").split()
                continue  # a comment line (NDBC marks metadata changes this way)
            if table is None:
                table = Table(_header(names, units), [], [])
            cells = stripped.split()
            raw = stripped.encode()
            problem = nul_problem(stripped) or (f"NDBC row has {len(cells)} columns for {len(names)}"
                                                if len(cells) != len(names) else "")
            if problem:
                table.bad.append((len(table.rows) + len(table.bad), raw[:RAW_KEPT], problem))
            else:
                table.rows.append(_row(names, cells))
                table.raws.append(raw)
            size += len(raw) + 1
            if size >= chunk_bytes:
                yield table
                table, size = Table(table.header, [], []), 0
        if table is not None and (table.rows or table.bad):
            yield table


def _header(names: list[str], units: list[str]) -> list[str]:
    out = ["ts"]
    for k, name in enumerate(names):
        if name in _TIME:
            continue
        spec = COLUMNS.get(name)
        if spec is None:
            out.append(name)
            continue
        base, registry, documented = spec
        unit = units[k].lower() if k < len(units) else documented
        unit = _UNIT_ALIASES.get(unit, unit)
        out.append(registry if unit == documented else f"{base}_{unit}")
    return out


def _row(names: list[str], cells: list[str]) -> list[str]:
    when = dict(zip(names, cells, strict=True))
    y = year(when.get("YY") or when.get("YYYY") or "")
    stamp = f"{y}-{when.get('MM', '')}-{when.get('DD', '')}T{when.get('hh', '')}:{when.get('mm', '00')}:00Z"
    out = [stamp]
    for name, cell in zip(names, cells, strict=True):
        if name in _TIME:
            continue
        marker = SENTINELS.get(name)
        if marker is not None:
            try:
                if float(cell) == marker:
                    cell = "MM"  # the column's 9-filled missing value
            except ValueError:
                pass
        out.append(cell)
    return out
