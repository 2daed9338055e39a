"""CSV records across lines: a long quoted cell is one record, a stray quote costs its own line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sources.formats.csv_table import CSV_RECORD_LINES, csv_records, whole_record

_PLAIN = st.text(st.sampled_from("abc 12.-:"), max_size=6)  # cells without a quote, separator or line end


def _row(cells: list[str]) -> str:
    return ",".join(cells) + "\n"


@settings(max_examples=60, deadline=None)
@given(before=st.lists(st.lists(_PLAIN, min_size=3, max_size=3), max_size=5),
       after=st.lists(st.lists(_PLAIN, min_size=3, max_size=3), max_size=5),
       note=st.lists(st.text(st.sampled_from('xy ,;"'), max_size=5), min_size=1, max_size=4 * CSV_RECORD_LINES),
       at=st.integers(0, 2))
def test_property_a_quoted_cell_of_any_number_of_lines_is_one_record(before, after, note, at):
    """A row whose quoted cell spans any number of lines (quotes doubled inside) is one record, and the
    rows around it are read as they are."""
    cells = ["k", "l", "m"]
    cells[at] = '"' + "\n".join(part.replace('"', '""') for part in note) + '"'
    lines = [_row(r) for r in before] + _row(cells).splitlines(keepends=True) + [_row(r) for r in after]
    got = list(csv_records(lines, sep=",", width=3))
    assert got == [(_row(r), "") for r in before] + [(_row(cells), "")] + [(_row(r), "") for r in after]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(_PLAIN, min_size=3, max_size=3), min_size=CSV_RECORD_LINES + 1, max_size=150),
       closing=st.sampled_from(['x,y"z,w\n', 'x,"y\n', 'x,y,"z\n', '"x"",y\n']))
def test_property_a_stray_quote_costs_its_own_line(rows, closing):
    """A quote that stays open past CSV_RECORD_LINES and closes on a record that is no well-formed row
    of the header's width was a stray quote: its line is quarantined and the lines after it are read."""
    lines = ['a,"stray,b\n', *(_row(r) for r in rows)]
    got = list(csv_records([*lines, closing], sep=",", width=3))
    assert got[0] == ('a,"stray,b\n', f"CSV quote not closed within {CSV_RECORD_LINES} lines")
    assert got[1:len(rows) + 1] == [(_row(r), "") for r in rows]


def test_a_quote_that_never_closes_is_followed_no_further_than_the_end():
    lines = ['a,"open,b\n', *(f"r{i},1,2\n" for i in range(200))]
    got = list(csv_records(lines, sep=",", width=3))
    assert got[0] == ('a,"open,b\n', "CSV quote not closed at the end of the file")
    assert got[1:] == [(f"r{i},1,2\n", "") for i in range(200)]


def test_whole_record():
    assert whole_record('a,"b\n""c""\nd",e\n', ",", 3)
    assert not whole_record('a,"b\nc"d,e\n', ",", 3)  # a quote inside an unquoted cell's text
    assert not whole_record('a,"b\nc",d,e\n', ",", 3)  # four cells
    assert whole_record('a;"1,5\nx";e\r\n', ";", 3)
    assert not whole_record("a,b,c", "", 3)


def test_a_csv_without_its_header_line_is_refused_with_a_reason(tmp_path):
    """A file whose first line is data: taking it as column names left that line unaccounted for and
    every other row without a time (each quarantined as missing ts). Refused before anything is read."""
    import subprocess
    import sys

    f = tmp_path / "h.csv"
    f.write_text("2024-05-01T00:00:00Z,a,10.5\n2024-05-01T01:00:00Z,a,11.5\n")
    done = subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(f), "--headless", "--max", "-q",
                           "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 2
    assert "the first line holds values (2024-05-01T00:00:00Z, a, 10.5), not column names" in done.stderr
    assert not (tmp_path / "d" / "db" / "consumer_stream.jsonl").exists()


@given(st.lists(st.sampled_from(["time", "timestamp", "station", "temp_c", "Wind Speed (m/s)", "PRES", "#YY",
                                 "valid", "tmpf", "lat", "lon", "rh_%", "station_id", "T2m", "10m_wind"]),
                min_size=1, max_size=12),
       st.lists(st.one_of(st.floats(-1e6, 1e6, allow_nan=False).map(str), st.integers(-999, 99999).map(str),
                          st.dates().map(str)), min_size=1, max_size=12))
def test_column_names_are_names_and_a_row_of_values_is_values(names, values):
    """The rule behind it: names are never dates and mostly not numbers; a data row (numbers, dates)
    is told from them."""
    from sources.formats.csv_table import looks_like_values

    assert not looks_like_values(names)
    assert looks_like_values(values)
