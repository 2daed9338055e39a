"""The fast ways of reading a recording give what the plain ways give.

- `jsonl_chunks` cuts a file where `readlines(size)` cuts it and drops the same blank lines, in one
  split per chunk instead of a loop over lines (plain and gzip files, one cut short too).
- `csv_table.tables` reads blocks of plain lines into polars columns: the same chunks, and they
  decode to the same rows, rejections and fields as tables read record by record.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from sources.formats import BOM, jsonl_chunks
from sources.formats.opener import RecordingError, head_bytes, open_binary
from tests.test_typed_decode import _key

_PIECES = [b"{", b"}", b'"a": 1', b"\n", b"\r", b"\r\n", b" ", b"\t", b"\x0b", b"\x0c", b"\x1c", BOM, b"\n\n",
           b"xyz", b"\xff"]


def _plain_chunks(path: Path, size: int, problems: list[str]) -> list[list[bytes]]:
    """What jsonl_chunks gave before its fast path: readlines(size), each line taken off its end."""
    out = []
    first = True
    with open_binary(path, problems) as binary:
        while chunk := binary.readlines(size):
            if first and chunk[0].startswith(BOM):
                chunk[0] = chunk[0][len(BOM):]
            first = False
            out.append([raw for line in chunk if (raw := line.rstrip(b"\r\n")).strip()])
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=80).map(b"".join), st.integers(1, 40),
       st.sampled_from(["plain", "gzip", "gzip cut short"]))
def test_jsonl_chunks_cut_and_clean_lines_as_readlines(tmp_path_factory, data, size, kind):
    path = tmp_path_factory.mktemp("chunks") / "r.jsonl"
    if kind == "plain":
        path.write_bytes(data)
    else:
        packed = gzip.compress(data)
        path = path.with_suffix(".jsonl.gz")
        path.write_bytes(packed[: len(packed) * 2 // 3] if kind == "gzip cut short" else packed)
    try:
        head_bytes(path)
    except RecordingError:  # cut before its first byte: no recording (open_recording says so)
        assume(False)
    expected_problems: list[str] = []
    problems: list[str] = []
    assert list(jsonl_chunks(path, size, problems)) == _plain_chunks(path, size, expected_problems)
    assert problems == expected_problems


def test_jsonl_chunks_of_a_long_file_as_readlines(tmp_path):
    """Chunks of many lines (the replay's case), with a blank line and a CRLF one among them."""
    lines = [b'{"ts": %d, "station": "s", "temp_c": 1.5}' % i for i in range(20000)]
    lines[7000] = b"   "
    lines[12000] += b"\r"
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    for size in (4096, 65536, 1 << 20):
        assert list(jsonl_chunks(path, size)) == _plain_chunks(path, size, [])


# --- CSV: plain lines read into polars columns -------------------------------------------------
_CSV_CELLS = ["2024-02-13T03:10:00Z", "2024-02-13 03:10:00", "2024-02-13T03:10", "12.5", "-3", "0.0", "NA", "",
              "M", "ws-1", "ws 2", "1e5", "inf", "9999", "-9999", "12,5", "café", "T", " 7", "1013.2", "x,y", '"q"']
_CSV_HEADERS = [["time", "station", "temp_c", "pressure_hpa"], ["ts", "station_id", "humidity_pct"],
                ["time", "lat", "lon", "temp_c"], ["Time", "Station", "temp_c", "colour"], ["time", "temp_c"]]


def _csv_line(data, width: int) -> list[str]:
    odd = data.draw(st.sampled_from(["none"] * 8 + ["cells", "short", "long", "blank", "space", "empty"]))
    cells = [data.draw(st.sampled_from(_CSV_CELLS[:1] if j == 0 else _CSV_CELLS[3:6] + ["ws-1"]))
             for j in range(width)]
    if odd == "cells":
        cells[data.draw(st.integers(0, width - 1))] = data.draw(st.sampled_from(_CSV_CELLS))
    elif odd == "short":
        cells = cells[:-1]
    elif odd == "long":
        cells = [*cells, "1"]
    elif odd == "blank":
        cells = ["   "]
    elif odd == "space":
        cells[0] = " " + cells[0]
    elif odd == "empty":
        cells = [""] * width
    return cells


@st.composite
def csv_files(draw):
    data = draw(st.data())
    header = draw(st.sampled_from(_CSV_HEADERS))
    sep = draw(st.sampled_from([",", "\t", ";"]))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [sep.join(header)]
    if draw(st.booleans()):
        lines.append(sep.join(["UTC", "", "degree_C", "hPa"][: len(header)]))
    lines += [sep.join(_csv_line(data, len(header))) for _ in range(draw(st.integers(0, 60)))]
    return end.join(lines) + draw(st.sampled_from([end, ""]))


def _decoded_tables(path: Path, chunk_bytes: int, columnar: bool) -> tuple[list, dict]:
    from sources.decode import Decoder
    from sources.formats import csv_table

    decoder = Decoder()
    ignored: dict[str, int] = {}
    out = []
    for table in csv_table.tables(path, chunk_bytes, columnar=columnar):
        out.append((table.header, table.records, _key(decoder.decode_table(
            table, default_station="dflt", default_source="rec", ignored=ignored))))
    return out, ignored


@settings(max_examples=150, deadline=None)
@given(csv_files(), st.integers(20, 400), st.integers(8, 200), st.integers(1, 8))
# found by hypothesis: a chunk whose every row is short of the header counted its unknown column as ignored 0 times
@example(text="Time,Station,temp_c,colour\n2024-02-13T03:10:00Z,12.5,12.5\n2024-02-13T03:10:00Z,12.5,12.5\n",
         chunk_bytes=20, block_chars=8, polars_cells=1)
def test_csv_columns_decode_as_rows(tmp_path_factory, text, chunk_bytes, block_chars, polars_cells):
    """Tables read a block of plain lines at a time into polars columns decode as tables read record
    by record: the same chunks (headers, record counts) and the same rows, rejections and fields."""
    import sources.decode as decode
    from sources.formats import csv_table

    path = tmp_path_factory.mktemp("csv") / "r.csv"
    path.write_text(text, encoding="utf-8", newline="")
    kept = decode._POLARS_CELLS, csv_table._BLOCK_CHARS
    try:
        decode._POLARS_CELLS, csv_table._BLOCK_CHARS = polars_cells, block_chars
        assert _decoded_tables(path, chunk_bytes, True) == _decoded_tables(path, chunk_bytes, False)
    finally:
        decode._POLARS_CELLS, csv_table._BLOCK_CHARS = kept


def test_csv_plain_file_is_read_into_columns(tmp_path):
    """A real shortcut: an exported CSV of plain lines (CRLF) comes out as columnar tables."""
    from sources.formats import csv_table

    rows = [f"2024-02-13T03:{m % 60:02d}:00Z,ws-{m % 4},{m % 30}.5,1013.{m % 10}" for m in range(3000)]
    path = tmp_path / "r.csv"
    path.write_bytes(("time,station,temp_c,pressure_hpa\r\n" + "\r\n".join(rows) + "\r\n").encode())
    tables = list(csv_table.tables(path, 16384))
    assert len(tables) > 1 and all(t.columns is not None for t in tables)
    assert sum(t.records for t in tables) == 3000
