"""Which format a recording is, from its first bytes (the file name only breaks ties)."""

from __future__ import annotations

import re

import orjson

from sources.formats.opener import text_encoding

FORMATS = ("jsonl", "json", "csv", "ndbc", "iem")  # json: one array of objects (`json_array`)

# NDBC standard meteorological header: "#YY  MM DD hh mm WDIR ..." (since 2007), "YYYY MM DD hh ..." or
# "YY MM DD hh WD ..." in older historical files (www.ndbc.noaa.gov/measdes.shtml, /faq/mods.shtml).
_NDBC = re.compile(r"^#?\s*(YY|YYYY)\s+MM\s+DD\s+hh\b")
# IEM ASOS download (mesonet.agron.iastate.edu/cgi-bin/request/asos.py): "station,valid,..." after
# optional "#DEBUG" lines, comma or tab separated.
_IEM = re.compile(r"^station[,\t]valid([,\t]|$)")
# Lines after the first that decide for JSON lines when the first does not (see `detect`).
_NEXT_LINES = 16


def detect(head: bytes, name: str = "") -> str:
    """jsonl, ndbc, iem or csv for a file starting with `head`.

    The first non-blank line decides when it starts like a JSON object or array, or is an NDBC
    or IEM header. Otherwise a file whose next lines are mostly whole JSON objects or arrays (more
    than half of up to 16) is JSON lines whatever its first line is (a bad line, or one too long for
    `head` to hold: `open_recording` then passes the start of it and the lines after it), and so is
    a file named .jsonl, .ndjson or .json whose first line is no plausible CSV header."""
    text = head.decode(text_encoding(head) or "utf-8-sig", errors="replace")
    lines = [line.strip("\r") for line in text.split("\n")]
    filled = [line for line in lines if line.strip()]
    first = filled[0] if filled else ""
    if _json_like(first):
        return "jsonl"
    if _NDBC.match(first):
        return "ndbc"
    content = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    if _IEM.match(content):
        return "iem"
    after = filled[1:1 + _NEXT_LINES]
    if after and 2 * sum(map(_json_line, after)) > len(after):
        return "jsonl"
    if name.lower().endswith((".jsonl", ".ndjson", ".json")) and not _csv_header_like(content):
        return "jsonl"
    return "csv"


def _csv_header_like(line: str) -> bool:
    """A line that may be a CSV header: some separator, no brace. Against it a name that says JSON
    lines wins (a lone bad line, or one too long for `head` to hold, is then quarantined as JSON)."""
    return any(sep in line for sep in ",;\t") and "{" not in line


def _json_like(line: str) -> bool:
    return line.lstrip().startswith(("{", "["))


def _json_line(line: str) -> bool:
    """A whole JSON object or array: not a CSV row that starts with a brace (a `{GUID}` id)."""
    if not _json_like(line):
        return False
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True
