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
  only its own line, which is quarantined, and the lines after it are read again.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from sources.decode import Table
from sources.formats.csv_header import is_units_row, layout, with_units
from sources.formats.opener import open_text

CSV_RECORD_LINES = 64
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")


def csv_records(lines: Iterable[str], max_lines: int = CSV_RECORD_LINES) -> Iterator[tuple[str, str]]:
    """(record text, "") per CSV record, or (first line, why) for a quote that never closes.

    RFC 4180 doubles a quote inside a quoted cell, so a record is complete when
    its quotes are balanced. A stray quote costs its own line: the lines after
    it are read again as records of their own.
    """
    source = iter(lines)
    again: deque[str] = deque()  # lines to read again after a stray quote
    pending: list[str] = []
    quotes = 0
    while True:
        line = again.popleft() if again else next(source, None)
        if line is None:
            break
        if not pending and '"' not in line:  # the usual record: one line, no quotes
            yield line, ""
            continue
        pending.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            yield "".join(pending), ""
        elif len(pending) > max_lines:
            yield pending[0], f"CSV quote not closed within {max_lines} lines"
            again.extendleft(reversed(pending[1:]))
        else:
            continue
        pending, quotes = [], 0
    if pending:
        yield pending[0], "CSV quote not closed at the end of the file"
        yield from csv_records(pending[1:], max_lines)


def sniff_separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def tables(path: Path, chunk_bytes: int, *, dialect: str = "", problems: list[str] | None = None,
           ) -> Iterator[Table]:
    """Chunks of about `chunk_bytes` of a CSV file as Tables (header kept in each). The header is read
    as `csv_header` says (date and time columns, a units row); a row whose cells are all empty (Excel
    writes `;;;;` for formatted empty rows) is a blank line."""
    with open_text(path, problems) as fh:
        lines = iter(fh)
        header_line = ""
        for line in lines:
            if line.strip() and not line.lstrip().startswith("#"):
                header_line = line
                break
        if not header_line:
            return
        sep = sniff_separator(header_line)
        names = [h.strip().lstrip("\ufeff") for h in next(csv.reader([header_line], delimiter=sep))]
        shape = layout(names)
        header = shape.header
        decimal_comma: bool | None = None if sep == ";" else False
        table = Table(header, [], [], dialect=dialect)
        size = 0
        position = 0
        first = True
        for record, problem in csv_records(lines):
            if not record.strip():
                continue
            line = record.rstrip("\r\n")
            raw = line.encode("utf-8", errors="backslashreplace")
            was_first, first = first, False
            if problem:
                table.bad.append((position, raw, problem))
            else:
                # csv.reader only matters for quotes (and a stray carriage return): a plain line is split
                cells = line.split(sep) if '"' not in line and "\r" not in line else next(
                    csv.reader([record], delimiter=sep), [])
                if was_first and len(cells) == len(names) and is_units_row(cells):
                    header = with_units(header, shape.row(cells), dialect)
                    table.header = header
                    continue
                if not (cells and cells[0].strip()) and not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(names):
                    table.bad.append((position, raw, f"CSV row has {len(cells)} cells for {len(names)} columns"))
                else:
                    cells = shape.row(cells)
                    if decimal_comma is None and any(_DECIMAL_COMMA.match(c) for c in cells):
                        decimal_comma = True
                    table.rows.append(cells)
                    table.raws.append(raw)
            position += 1
            size += len(raw) + 1
            if size >= chunk_bytes:
                table.decimal_comma = bool(decimal_comma)
                yield table
                table, size, position = Table(header, [], [], dialect=dialect), 0, 0
        if table.rows or table.bad:
            table.decimal_comma = bool(decimal_comma)
            yield table
