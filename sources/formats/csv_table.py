"""CSV as people export it: a header row, `,` `;` or tab separated, BOM and CRLF, quoted cells.

- The separator is sniffed from the header (the most frequent of `,` `;` tab). With
  `;`, a decimal comma (`12,5`) is recognised when data cells are written that way;
  a `12,5` that cannot be read is quarantined with a reason that says so.
- Excel's "CSV UTF-8" byte-order mark and CRLF line ends are taken off; a file that
  is not UTF-8 is read as Windows-1252 (what Excel writes otherwise), UTF-16 by its
  byte-order mark (Excel's "Unicode Text"); compressed files are read as they are
  (`opener`).
- Lines starting with `#` before the header are comments.
- A quoted cell may span lines (RFC 4180); a quote left open for 64 lines costs
  only its own line, which is quarantined, and the lines after it are read again,
  unless it closes (within 16 Mi characters) on a well-formed row of the header's
  width: a long quoted note is then one record (quarantined alone if too large).
- A row the csv module cannot read (a quoted cell past its field limit, 128 KiB) is
  quarantined alone with the reason; a header it cannot read raises `RecordingError`.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from sources.decode import Table
from sources.formats.csv_header import is_units_row, layout, with_units
from sources.formats.opener import RecordingError, nul_problem, open_text
from sources.schema import RAW_KEPT

CSV_RECORD_LINES = 64
# How far a quote left open past CSV_RECORD_LINES is followed before it is taken for a stray quote:
# a long note (a log pasted into a cell) closes within it and is one record, bounded in memory.
CSV_RECORD_CHARS = 16 << 20
CSV_RECORD_MAX_LINES = 1 << 16
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")
# A quoted cell (RFC 4180, quotes doubled inside), unrolled so a failing match never backtracks.
_QUOTED = r'"[^"]*(?:""[^"]*)*"'


def csv_records(lines: Iterable[str], max_lines: int = CSV_RECORD_LINES, *, sep: str = "",
                width: int = 0) -> Iterator[tuple[str, str]]:
    """(record text, "") per CSV record, or (first line, why) for a quote that never closes.

    RFC 4180 doubles a quote inside a quoted cell, so a record is complete when
    its quotes are balanced. A stray quote costs its own line: the lines after
    it are read again as records of their own. Given the separator and the
    header's `width`, a quote still open after `max_lines` is followed up to
    CSV_RECORD_CHARS characters (CSV_RECORD_MAX_LINES lines): when it closes on
    a well-formed record of `width` cells (`whole_record`), that record is one
    (a long quoted note), else the first line is the stray quote as before.
    """
    source = iter(lines)
    again: deque[str] = deque()  # lines to read again after a stray quote
    pending: list[str] = []
    quotes = chars = 0
    follow = bool(sep and width)
    while True:
        line = again.popleft() if again else next(source, None)
        if line is None:
            break
        if not pending and '"' not in line:  # the usual record: one line, no quotes
            yield line, ""
            continue
        pending.append(line)
        quotes += line.count('"')
        chars += len(line)
        if quotes % 2 == 0:
            record = "".join(pending)
            if len(pending) <= max_lines + 1 or whole_record(record, sep, width):
                yield record, ""
            else:
                yield pending[0], f"CSV quote not closed within {max_lines} lines"
                again.extendleft(reversed(pending[1:]))
        elif len(pending) > max_lines and not (
                follow and chars <= CSV_RECORD_CHARS and len(pending) <= CSV_RECORD_MAX_LINES):
            yield pending[0], f"CSV quote not closed within {max_lines} lines"
            again.extendleft(reversed(pending[1:]))
        else:
            continue
        pending, quotes, chars = [], 0, 0
    if pending:
        yield pending[0], "CSV quote not closed at the end of the file"
        yield from csv_records(pending[1:], max_lines, sep=sep, width=width)


def whole_record(record: str, sep: str, width: int) -> bool:
    """True when `record` (line end allowed) is `width` cells separated by `sep`, each either quoted
    as RFC 4180 says (a quote only at its start and end, doubled inside) or unquoted without a quote
    or a line break: a record a stray quote cannot have made."""
    if not (sep and width):
        return False
    body = record.rstrip("\r\n")
    cell = f'(?:{_QUOTED}|[^"{re.escape(sep)}\r\n]*)'
    if not re.fullmatch(f"{cell}(?:{re.escape(sep)}{cell})*", body):
        return False
    return re.sub(_QUOTED, "", body).count(sep) + 1 == width


def sniff_separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def tables(path: Path, chunk_bytes: int, *, dialect: str = "", problems: list[str] | None = None,
           columnar: bool = True) -> Iterator[Table]:
    """Chunks of about `chunk_bytes` of a CSV file as Tables (header kept in each). The header is read
    as `csv_header` says (date and time columns, a units row); a row whose cells are all empty (Excel
    writes `;;;;` for formatted empty rows) is a blank line.

    A file of plain lines (no quote, no carriage return but a CRLF line end, no line that starts with
    a space or a separator; `,` or tab separated, one time column) is read a block at a time by polars into
    columns (`Table.columns`): the same rows, bad rows and chunks as record by record, which
    `columnar=False` forces (tests/test_reading_fast_paths.py holds the two to that)."""
    with open_text(path, problems) as fh:
        lines = iter(fh)
        header_line = _header_line(lines)
        if not header_line:
            return
        sep = sniff_separator(header_line)
        names = _names(path, header_line, sep)
        chunks = _Chunks(names, layout(names), sep, dialect, chunk_bytes)
        records = csv_records(lines, sep=sep, width=len(names))
        plain = columnar and sep != ";" and chunks.shape.date_time is None
        if plain:
            for record, problem in records:  # the first record by itself: it may be a units row
                if '"' in record or "\r" in record.rstrip("\r\n"):
                    plain = False
                yield from chunks.record(record, problem)
                if not chunks.first or not plain:
                    break
        if plain:
            while block := _block(fh, _BLOCK_CHARS):
                block_lines = _plain_lines(block, sep)
                if block_lines is None:  # quotes or odd lines from here on: record by record
                    records = csv_records(itertools.chain(io.StringIO(block, newline=""), lines), sep=sep,
                                          width=len(names))
                    break
                yield from chunks.plain(block_lines)
            else:
                records = iter(())
        for record, problem in records:
            yield from chunks.record(record, problem)
        yield from chunks.last()


def check_header(path: Path) -> None:
    """Raise RecordingError when the CSV header of `path` cannot be read (a cell past the csv
    module's field limit): said before anything is read or stored, as `tables` would raise it."""
    with open_text(path) as fh:
        header_line = _header_line(iter(fh))
    if header_line:
        _names(path, header_line, sniff_separator(header_line))


def _header_line(lines: Iterator[str]) -> str:
    """The first line that is neither blank nor a `#` comment ("" for none); the lines before it are read."""
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            return line
    return ""


def _names(path: Path, header_line: str, sep: str) -> list[str]:
    try:
        names = [h.strip().lstrip("\ufeff") for h in next(csv.reader([header_line], delimiter=sep))]
    except csv.Error as exc:  # a header cell past the csv module's field limit: no CSV mass can read
        raise RecordingError(f"{path.name}: the CSV header ({len(header_line):,} characters) cannot be "
                             f"read: {exc}") from None
    if looks_like_values(names):
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise RecordingError(f"{path.name}: the first line holds values ({shown[:120]}), not column names: a CSV "
                             "needs a header line naming its columns (a time column such as time or timestamp, "
                             "a station, the variables)")
    return names


_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}")


def looks_like_values(cells: list[str]) -> bool:
    """Whether a would-be header row is data (a file without its header line): one of its cells is a
    date (2024-05-01..., 5/1/2024), or at least half of its non-empty cells are numbers. Column names
    are neither; taking such a row as names would leave its own values unaccounted for and every
    other row without a time."""
    filled = [c for c in cells if c]
    if any(_DATE.match(c) for c in filled):
        return True
    numbers = 0
    for c in filled:
        try:
            float(c.replace(",", "."))
        except ValueError:
            continue
        numbers += 1
    return bool(filled) and 2 * numbers >= len(filled)


_BLOCK_CHARS = 1 << 20
# A plain line starts with one of these (never a space, a separator or a quote, so it is neither
# blank nor a row of empty cells) and holds no quote and no carriage return but its CRLF end.
_PLAIN_START = re.compile(r"[0-9A-Za-z_+\-.:/]")


def _block(fh: IO[str], size: int) -> str:
    """The next `size` characters and the rest of the line they end in."""
    block = fh.read(size)
    if len(block) == size and not block.endswith("\n"):
        block += fh.readline()
    return block


def _plain_lines(block: str, sep: str) -> list[str] | None:
    """The lines of a block (line ends taken off) when every one is plain (see `_PLAIN_START`), else
    None. CRLF line ends are line ends like LF; a carriage return elsewhere is not plain."""
    if '"' in block or "\x00" in block:  # a row with NUL bytes is quarantined record by record
        return None
    if "\r" in block:
        if block.count("\r") != block.count("\r\n"):
            return None
        block = block.replace("\r\n", "\n")
    body = block[:-1] if block.endswith("\n") else block
    found = body.split("\n")
    import polars as pl

    series = pl.Series(found, dtype=pl.String)
    if not series.str.contains("^" + _PLAIN_START.pattern).all():
        return None
    return found


class _Chunks:
    """The records of a CSV file into Tables of about `chunk_bytes`: record by record, or a block of
    plain lines at a time into polars columns."""

    def __init__(self, names: list[str], shape, sep: str, dialect: str, chunk_bytes: int) -> None:
        self.names, self.shape, self.sep, self.dialect, self.chunk_bytes = names, shape, sep, dialect, chunk_bytes
        self.header = shape.header
        self.decimal_comma: bool | None = None if sep == ";" else False
        self.first = True
        self.table = Table(self.header, [], [], dialect=dialect)
        self.parts: list = []  # polars String Series of plain row lines, in order, after table.rows
        self.size = 0
        self.position = 0

    def record(self, record: str, problem: str) -> Iterator[Table]:
        """One record (the plain way); the finished Table when it completes a chunk."""
        if not record.strip():
            return
        table, names, sep = self.table, self.names, self.sep
        line = record.rstrip("\r\n")
        raw = line.encode("utf-8", errors="backslashreplace")
        was_first, self.first = self.first, False
        cells: list[str] = []
        if not problem:
            problem = nul_problem(line)
        if not problem:
            # csv.reader only matters for quotes (and a stray carriage return): a plain line is split
            try:
                cells = line.split(sep) if '"' not in line and "\r" not in line else next(
                    csv.reader([record], delimiter=sep), [])
            except csv.Error as exc:  # a quoted cell past the csv module's field limit: this row alone
                problem = f"CSV row cannot be read: {exc}"
        if problem:
            if len(raw) > RAW_KEPT:  # a record of a long quoted cell: its start says which one it was
                problem = f"{problem} ({len(raw):,} bytes, first {RAW_KEPT} kept)"
                raw = raw[:RAW_KEPT]
            table.bad.append((self.position, raw, problem))
        else:
            if was_first and len(cells) == len(names) and is_units_row(cells):
                self.header = with_units(self.header, self.shape.row(cells), self.dialect)
                table.header = self.header
                return
            if not (cells and cells[0].strip()) and not any(c.strip() for c in cells):
                return
            if len(cells) != len(names):
                table.bad.append((self.position, raw, f"CSV row has {len(cells)} cells for {len(names)} columns"))
            else:
                cells = self.shape.row(cells)
                if self.decimal_comma is None and any(_DECIMAL_COMMA.match(c) for c in cells):
                    self.decimal_comma = True
                table.rows.append(cells)
                table.raws.append(raw)
        self.position += 1
        self.size += len(raw) + 1
        if self.size >= self.chunk_bytes:
            yield self._finish()

    def plain(self, lines: list[str]) -> Iterator[Table]:
        """A block of plain lines (`_plain_lines`): each a record, a row when it has a cell per column."""
        import polars as pl

        series = pl.Series(lines, dtype=pl.String)
        sizes = series.str.len_bytes().to_numpy().astype(np.int64) + 1
        cells = series.str.count_matches(self.sep, literal=True).to_numpy().astype(np.int64) + 1
        start, n = 0, len(lines)
        while start < n:
            total = self.size + np.cumsum(sizes[start:])
            k = int(np.searchsorted(total, self.chunk_bytes))  # the record that completes the chunk
            end = n if k >= total.size else start + k + 1
            self._add_plain(series.slice(start, end - start), cells[start:end])
            if k >= total.size:
                self.size = int(total[-1])
                return
            start = end
            yield self._finish()

    def _add_plain(self, series, cells: np.ndarray) -> None:
        width = len(self.names)
        bad = np.flatnonzero(cells != width)
        if self.table.rows:  # rows taken the plain way before (the first record): their lines join the parts
            import polars as pl

            self.parts.append(pl.Series([self.sep.join(row) for row in self.table.rows], dtype=pl.String))
            self.table.rows, self.table.raws = [], []
        for j in bad.tolist():
            self.table.bad.append((self.position + j, series[j].encode("utf-8"),
                                   f"CSV row has {int(cells[j])} cells for {width} columns"))
        self.parts.append(series if bad.size == 0 else series.filter(cells == width))
        self.position += len(series)

    def _finish(self) -> Table:
        table = self.table
        table.decimal_comma = bool(self.decimal_comma)
        if self.parts:
            import polars as pl

            lines = pl.concat(self.parts, rechunk=True)
            frame = lines.str.split_exact(self.sep, len(self.names) - 1).struct.unnest()
            if table.rows:  # records after a block that was not plain: the chunk as rows, in order
                table.rows[:0] = [list(row) for row in frame.rows()]
                table.raws[:0] = [line.encode("utf-8") for line in lines.to_list()]
            else:
                table.columns = [frame.to_series(j) for j in range(frame.width)]
                table.raws = LineBytes(lines)
        self.table, self.parts, self.size, self.position = Table(self.header, [], [], dialect=self.dialect), [], 0, 0
        return table

    def last(self) -> Iterator[Table]:
        if self.table.rows or self.table.bad or self.parts:
            yield self._finish()


class LineBytes:
    """The raw bytes of a columnar table's rows, encoded when one is asked for (a rejected row's)."""

    def __init__(self, lines) -> None:
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, i: int) -> bytes:
        return self.lines[i].encode("utf-8")
