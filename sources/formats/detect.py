"""Which format a recording is, from its first bytes (the file name only breaks ties)."""

from __future__ import annotations

import re

from sources.formats.opener import text_encoding

FORMATS = ("jsonl", "csv", "ndbc", "iem")

# NDBC standard meteorological header: "#YY  MM DD hh mm WDIR ..." (since 2007), "YYYY MM DD hh ..." or
# "YY MM DD hh WD ..." in older historical files (www.ndbc.noaa.gov/measdes.shtml, /faq/mods.shtml).
_NDBC = re.compile(r"^#?\s*(YY|YYYY)\s+MM\s+DD\s+hh\b")
# IEM ASOS download (mesonet.agron.iastate.edu/cgi-bin/request/asos.py): "station,valid,..." after
# optional "#DEBUG" lines, comma or tab separated.
_IEM = re.compile(r"^station[,\t]valid([,\t]|$)")


def detect(head: bytes, name: str = "") -> str:
    """jsonl, ndbc, iem or csv for a file starting with `head`."""
    text = head.decode(text_encoding(head) or "utf-8-sig", errors="replace")
    lines = [line.strip("\r") for line in text.split("\n")]
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith(("{", "[")):
        return "jsonl"
    if _NDBC.match(first):
        return "ndbc"
    content = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    if _IEM.match(content):
        return "iem"
    if name.lower().endswith((".jsonl", ".ndjson", ".json")) and not content:
        return "jsonl"
    return "csv"
