"""What a CSV header means beyond its names: the time columns, and a units row under it.

- **Time columns.** Loggers and spreadsheets often write the date and the time of
  day in two columns (`Date,Time`: Davis WeatherLink, many data loggers): they are
  joined into one time (`2024-01-15 06:00`). A lone `Date` column (daily data) or
  a `Date Time` / `date_time` / `Time (UTC)` / `valid(UTC)` (IEM's one-minute
  ASOS files) column is the time. A header that
  already has a column mass reads as the time (`ts`, `time`, `timestamp`, ...)
  is left alone.
- **Units row.** ERDDAP's `.csv` (NDBC, IOOS and many other archives served that
  way) puts a row of units under the header (`UTC`, `m s-1`, `degree_C`, `hPa`):
  it is not data. Each unit that mass converts is joined to its column's name, as
  if the header said `wspd (m s-1)`, when the column is a variable of that
  quantity; the row itself is neither stored nor rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sources.decode import TIME_KEYS
from sources.fields import DEFAULT_NA, resolve, unit_label
from sources.times import TimeError, parse_iso

_TIME_NAME = re.compile(r"^(date[ _/]?time|time[ _]?stamp|time|date|valid)\s*([\(\[]\s*utc\s*[\)\]]|utc)?$", re.I)


@dataclass(frozen=True)
class Layout:
    """The header the decoder sees, and how each row's cells are rearranged to match it."""

    header: list[str]
    date_time: tuple[int, int] | None = None  # (date column, time-of-day column): joined, the date one dropped

    def row(self, cells: list[str]) -> list[str]:
        if self.date_time is None:
            return cells
        d, t = self.date_time
        joined = f"{cells[d].strip()} {cells[t].strip()}".strip()
        return [joined if k == t else c for k, c in enumerate(cells) if k != d]


def layout(header: list[str]) -> Layout:
    """The Layout of a CSV header (names already stripped)."""
    lower = [h.strip().lower() for h in header]
    if any(h in TIME_KEYS for h in lower) and not ("date" in lower and "time" in lower):
        return Layout(header)
    if "date" in lower and "time" in lower:
        d, t = lower.index("date"), lower.index("time")
        names = ["time" if k == t else h for k, h in enumerate(header) if k != d]
        return Layout(names, (d, t))
    for k, h in enumerate(header):
        if _TIME_NAME.match(h.strip()):
            return Layout(["time" if j == k else name for j, name in enumerate(header)])
    return Layout(header)


def is_units_row(cells: list[str]) -> bool:
    """A row of units under the header: no cell is a number or a time, and at least two name a unit
    (or say `UTC`), a missing marker written as such (`M`, `MM`, `NA`) not counting as one."""
    filled = [c.strip() for c in cells if c.strip()]
    for c in filled:
        try:
            float(c.replace(",", "."))
            return False
        except ValueError:
            pass
        try:
            parse_iso(c)
            return False
        except TimeError:
            pass
    units = [c for c in filled if c not in DEFAULT_NA and (c.upper() == "UTC" or unit_label(c) is not None)]
    return len(units) >= 2


def with_units(header: list[str], units: list[str], dialect: str = "") -> list[str]:
    """The header with each convertible unit joined to its column name (`wspd` + `m s-1` → `wspd (m s-1)`),
    where the joined name is still the same variable; other names unchanged."""
    out = []
    for name, unit in zip(header, units, strict=False):
        spec = resolve(name, dialect)
        joined = f"{name} ({unit.strip()})"
        if spec is not None and unit_label(unit) is not None:
            with_unit = resolve(joined, dialect)
            if with_unit is not None and with_unit.name == spec.name:
                name = joined
        out.append(name)
    return out + header[len(out):]
