"""Recordings people download, read natively: JSONL, CSV, NDBC standard meteorological files, IEM ASOS CSV.

`open_recording(path)` detects the format from the content (`detect.detect`;
a `format` argument overrides it) and yields chunks for the decoder: lists of
raw JSON lines, or `sources.decode.Table`s of text cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sources.decode import Table
from sources.formats import csv_table, iem, ndbc
from sources.formats.detect import FORMATS, detect

__all__ = ["FORMATS", "Recording", "detect", "open_recording"]

BOM = b"\xef\xbb\xbf"


@dataclass
class Recording:
    path: Path
    format: str  # jsonl, csv, ndbc, iem
    station: str  # for rows without a station of their own
    chunk_bytes: int

    def chunks(self) -> Iterator[list[bytes] | Table]:
        if self.format == "jsonl":
            yield from jsonl_chunks(self.path, self.chunk_bytes)
        elif self.format == "ndbc":
            yield from ndbc.tables(self.path, self.chunk_bytes)
        elif self.format == "iem":
            yield from iem.tables(self.path, self.chunk_bytes)
        else:
            yield from csv_table.tables(self.path, self.chunk_bytes)


def open_recording(path: Path, format: str = "auto", *, station: str | None = None,
                   chunk_bytes: int = 4 << 20) -> Recording:
    """The recording at `path`; `format` is auto (from the content), jsonl, csv, ndbc or iem."""
    if format not in ("auto", *FORMATS):
        raise ValueError(f"format {format!r}: expected auto or one of {', '.join(FORMATS)}")
    if format == "auto":
        with open(path, "rb") as fh:
            format = detect(fh.read(1 << 16), path.name)
    default = station or (ndbc.station_from_name(path.name) if format == "ndbc" else path.stem)
    return Recording(path, format, default, chunk_bytes)


def jsonl_chunks(path: Path, size: int) -> Iterator[list[bytes]]:
    """The message lines of a JSONL file, about `size` bytes at a time (blank lines dropped, CRLF and a
    leading byte-order mark taken off)."""
    first = True
    with path.open("rb") as fh:
        while chunk := fh.readlines(size):
            if first and chunk[0].startswith(BOM):
                chunk[0] = chunk[0][len(BOM):]
            first = False
            yield [raw for line in chunk if (raw := line.rstrip(b"\r\n")).strip()]
