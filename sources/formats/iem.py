"""IEM ASOS downloads (mesonet.agron.iastate.edu/request/download.phtml, cgi-bin/request/asos.py).

Comma- or tab-separated, optional `#DEBUG` lines first, then `station,valid,...`
with `valid` as `YYYY-MM-DD HH:MM` in the time zone asked for (UTC by default:
a download in local time needs `--tz`). Missing values are `M` (or empty, or
`null`, as asked), a precipitation trace `T` (or 0.0001). Columns and units as
asos.py writes them: tmpf, dwpf, feel °F; tmpc, dwpc °C; relh %; drct degrees;
sknt, gust, peak_wind_gust knots; sped, gust_mph mph; alti inHg (the altimeter
setting, stored as altimeter_hpa); mslp hPa; p01i inches; p01m mm; vsby miles;
sky cover, weather codes and the METAR text are not variables (counted under
`ignored_fields`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sources.decode import Table
from sources.formats import csv_table


def tables(path: Path, chunk_bytes: int) -> Iterator[Table]:
    yield from csv_table.tables(path, chunk_bytes, dialect="iem")
