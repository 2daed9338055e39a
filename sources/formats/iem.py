"""IEM ASOS downloads (mesonet.agron.iastate.edu/request/download.phtml, cgi-bin/request/asos.py).

Comma- or tab-separated, optional `#DEBUG` lines first, then `station,valid,...`
with `valid` as `YYYY-MM-DD HH:MM` in the time zone asked for: UTC by default;
a download in local time says so in its debug lines (`#DEBUG: Time Zone ->
America/Chicago`), and its times are read in that zone, with the DST rules of
`sources.times` (this beats `--tz`, which is for files that do not say). Without
debug lines, `--tz` is the way to name a local-time download's zone. Missing values are `M` (or empty, or
`null`, as asked), a precipitation trace `T` (or 0.0001). Columns and units as
asos.py writes them: tmpf, dwpf, feel °F; tmpc, dwpc °C; relh %; drct degrees;
sknt, gust, peak_wind_gust knots; sped, gust_mph mph; alti inHg (the altimeter
setting, stored as altimeter_hpa); mslp hPa; p01i inches; p01m mm; vsby miles;
sky cover, weather codes and the METAR text are not variables (counted under
`ignored_fields`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

from sources.decode import Table
from sources.formats import csv_table
from sources.times import zone

_ZONE_LINE = re.compile(rb"^#DEBUG:\s*Time Zone\s*->\s*(\S+)\s*$", re.MULTILINE)


def stated_zone(head: bytes) -> str:
    """The IANA zone a download's debug lines state for its times: "UTC" for UTC, "" when none is stated."""
    m = _ZONE_LINE.search(head.replace(b"\r\n", b"\n"))
    name = m.group(1).decode("ascii", errors="replace") if m else ""
    return "UTC" if name.upper() in ("UTC", "ETC/UTC", "GMT", "Z") else name


def tables(path: Path, chunk_bytes: int, *, tz: str = "", problems: list[str] | None = None) -> Iterator[Table]:
    """The rows of an IEM download; `tz` (its stated zone) makes its naive times local ones.

    Raises ValueError for a zone the tz database does not know.
    """
    # A file that says UTC is UTC whatever --tz says: datetime.UTC tells the decoder so.
    zone_info = UTC if tz == "UTC" else zone(tz) if tz else None
    for table in csv_table.tables(path, chunk_bytes, dialect="iem", problems=problems):
        table.tz = zone_info
        yield table
