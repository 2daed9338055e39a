"""Recordings people download, read natively: JSONL, CSV, NDBC standard meteorological files, IEM ASOS CSV.

`open_recording(path)` detects the format from the content (`detect.detect`;
a `format` argument overrides it) and yields chunks for the decoder: lists of
raw JSON lines (a file that is one JSON array: its elements, `json_array`), or
`sources.decode.Table`s of text cells. Compressed files
(gzip, bzip2, xz) and UTF-16 text are read as they are (`opener`); a file that
is no recording (a zip archive, an .xlsx workbook, binary data) raises
`RecordingError` saying what it looks like. An IEM download that states its
time zone (`#DEBUG: Time Zone -> America/Chicago`) is read in that zone.
"""

from __future__ import annotations

import io
import re
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sources.decode import Table
from sources.formats import csv_table, iem, json_array, ndbc
from sources.formats.detect import FORMATS, detect
from sources.formats.opener import RecordingError, after_first_line, first_bytes, head_bytes, open_binary, text_encoding
from sources.times import zone

__all__ = ["FORMATS", "Recording", "RecordingError", "detect", "open_recording"]

BOM = b"\xef\xbb\xbf"
# Chunks whose columns polars reads ahead of the decoder, at once (`read_ahead`): a replay's 4 MiB
# chunks decoded 8 % faster with two (bad-line and Open-Meteo-like layouts; the same with three).
READ_AHEAD = 2
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")


@dataclass
class Recording:
    path: Path
    format: str  # jsonl, json (one array of objects), csv, ndbc, iem
    station: str  # for rows without a station of their own
    chunk_bytes: int
    tz: str = ""  # the time zone the file states for its naive times (IEM), "" when it states none
    problems: list[str] = field(default_factory=list)  # why reading ended early (compressed data cut short)

    def chunks(self) -> Iterator[list[bytes] | Table]:
        if self.format == "jsonl":
            yield from read_ahead(jsonl_chunks(self.path, self.chunk_bytes, self.problems))
        elif self.format == "json":
            elements = json_array.document(self.path, head_bytes(self.path))
            if elements is None:  # too large, or not one JSON array: line by line, each line its reason
                yield from read_ahead(jsonl_chunks(self.path, self.chunk_bytes, self.problems))
            else:
                yield from read_ahead(json_array.chunks(elements, self.chunk_bytes))
        elif self.format == "ndbc":
            yield from ndbc.tables(self.path, self.chunk_bytes, self.problems)
        elif self.format == "iem":
            yield from iem.tables(self.path, self.chunk_bytes, tz=self.tz, problems=self.problems)
        else:
            yield from csv_table.tables(self.path, self.chunk_bytes, problems=self.problems)


def open_recording(path: Path, format: str = "auto", *, station: str | None = None,
                   chunk_bytes: int = 4 << 20) -> Recording:
    """The recording at `path`; `format` is auto (from the content), jsonl, json, csv, ndbc or iem.

    Raises RecordingError for a file that is no recording (see `opener.head_bytes`), or a CSV whose
    header cannot be read (`csv_table.check_header`).
    """
    if format not in ("auto", *FORMATS):
        raise ValueError(f"format {format!r}: expected auto or one of {', '.join(FORMATS)}")
    head = head_bytes(path)
    name = path.name
    if name.lower().endswith(_COMPRESSED_SUFFIXES):
        name = name.rsplit(".", 1)[0]
    if format == "auto":
        format = detect(head + after_first_line(path, head), name)
        if format == "jsonl" and json_array.document(path, head) is not None:
            format = "json"
    default = station or (ndbc.station_from_name(name) if format == "ndbc" else Path(name).stem)
    tz = iem.stated_zone(head) if format == "iem" else ""
    if tz:
        try:
            zone(tz)
        except ValueError:
            raise RecordingError(f"{path.name} states its time zone as {tz!r}, which the tz database does not "
                                 "know") from None
    if format in ("csv", "iem"):
        csv_table.check_header(path)
    return Recording(path, format, default, chunk_bytes, tz)


class Lines(list):
    """A chunk of message lines (a list of bytes) whose typed columns are being read meanwhile:
    `columns` is a Future of `sources.json_columns.Columns | None` (see `read_ahead`)."""

    def __init__(self, lines: list[bytes], columns: Future) -> None:
        super().__init__(lines)
        self.columns = columns


def read_ahead(chunks: Iterator[list[bytes]]) -> Iterator[list[bytes]]:
    """The chunks, each long one as `Lines` whose columns polars reads in a thread while the decoder
    checks the chunk before it: polars works without the interpreter's lock, so reading the next
    chunks and checking this one share the cores instead of taking turns. READ_AHEAD chunks ahead,
    each in its own thread: with one, the decoder waited on polars for a third of its time (a
    4 MiB chunk takes polars longer than the decoder's check of one); the threads end with the
    iteration (each finishes the chunk it reads, tens of milliseconds)."""
    from sources.decode import TYPED_MIN_LINES
    from sources.json_columns import ColumnReader

    # One stream: a chunk polars refused makes it check the next ones first. Two reads at once may
    # both set that; either way a row is claimed only where polars' columns render as its line.
    reader = ColumnReader()
    with ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="mass-columns") as pool:
        pending: deque[list[bytes]] = deque()
        for lines in chunks:
            ahead = Lines(lines, pool.submit(reader.read, lines)) if len(lines) >= TYPED_MIN_LINES else lines
            if len(pending) == READ_AHEAD:
                yield pending.popleft()
            pending.append(ahead)
        while pending:
            yield pending.popleft()


def jsonl_chunks(path: Path, size: int, problems: list[str] | None = None) -> Iterator[list[bytes]]:
    """The message lines of a JSONL file, about `size` bytes at a time (blank lines dropped, CRLF and a
    leading byte-order mark taken off; UTF-16 lines re-encoded as UTF-8). A chunk ends with the first
    line that brings it past `size` bytes, as `readlines(size)` cuts it."""
    first = True
    utf16 = text_encoding(first_bytes(path, 4)) is not None  # judged by open_recording already
    with open_binary(path, problems) as binary:
        if utf16:
            text = io.TextIOWrapper(binary, encoding="utf-16", errors="replace", newline="")
            while chunk := _encoded(text.readlines(size)):
                if first and chunk[0].startswith(BOM):
                    chunk[0] = chunk[0][len(BOM):]
                first = False
                yield [raw for line in chunk if (raw := line.rstrip(b"\r\n")).strip()]
            return
        while block := _block(binary, size):
            if first and block.startswith(BOM):
                block = block[len(BOM):]
            first = False
            yield _lines(block)


def _block(binary: IO[bytes], size: int) -> bytes:
    """The next `size` bytes and the line after them: where `readlines(size)` stops (after the line that
    brings it past `size` bytes), read as one bytes object, not a list of lines."""
    block = binary.read(size)
    if len(block) == size:
        block += binary.readline()
    return block


# A line that is empty or starts with ASCII whitespace (bytes.strip's set): it may be blank.
_MAYBE_BLANK = re.compile(rb"\n[ \t\n\r\x0b\x0c]")
_SPACE = b" \t\n\r\x0b\x0c"


def _lines(block: bytes) -> list[bytes]:
    """The lines of a block, line ends taken off, blank lines dropped. One split in C when no line ends
    in a carriage return or may be blank (a recording's usual block); else line by line."""
    body = block[:-1] if block.endswith(b"\n") else block
    if b"\r" in body or not body or body[0] in _SPACE or body[-1] == 0x0A or _MAYBE_BLANK.search(body):
        return [raw for line in body.split(b"\n") if (raw := line.rstrip(b"\r")).strip()]
    return body.split(b"\n")


def _encoded(lines: list[str]) -> list[bytes]:
    return [line.encode("utf-8") for line in lines]
