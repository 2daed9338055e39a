"""Lines past what a reader holds at once: a first line longer than the format sniffing's sample, a CSV
cell past the csv module's field limit (128 KiB). Sniffing never crashes, a file of JSON lines is read as
JSONL whatever its first line, a line that cannot be read is quarantined alone with its reason, and a file
that cannot be read at all is one line and exit 2, never a traceback."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.formats import RecordingError, open_recording
from sources.formats.opener import SAMPLE
from sources.schema import MAX_MESSAGE_BYTES

from .test_cli import mass

LIMIT = csv.field_size_limit()  # 131072 unless something changed it


def _readings(n: int = 5) -> list[str]:
    return [json.dumps({"ts": f"2024-01-01T{h:02d}:00:00Z", "station": "a", "temp_c": 1.0 + h}) for h in range(n)]


def _replay(tmp_path: Path, path: Path, *extra: str):
    return mass("replay", str(path), "--headless", "--max", "-q", "--data-dir", str(tmp_path / "data"), *extra,
                cwd=tmp_path)


def _rejected(tmp_path: Path) -> list[dict]:
    path = tmp_path / "data" / "db" / "rejected.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


BIG = MAX_MESSAGE_BYTES + 1000  # past what a message may be: quarantined whole, `too_large`
FIRST_LINES = {
    "a JSON object": json.dumps({"ts": "2024-01-01T00:30:00Z", "station": "a", "note": "x" * BIG}),
    "a JSON string": json.dumps("x" * BIG),
    "not JSON": "x" * BIG,
    "spaces then JSON": " " * (SAMPLE + 10) + json.dumps({"ts": "2024-01-01T00:30:00Z", "note": "x" * BIG}),
}


def _encoded(text: str, encoding: str) -> bytes:
    """`text` as utf-8, or UTF-16 with its byte-order mark in either byte order (Excel's Unicode Text)."""
    if encoding == "utf-16-le":
        return b"\xff\xfe" + text.encode("utf-16-le")
    if encoding == "utf-16-be":
        return b"\xfe\xff" + text.encode("utf-16-be")
    return text.encode(encoding)


ENCODINGS = ["utf-8", "utf-16-le", "utf-16-be"]


@pytest.mark.parametrize("first", list(FIRST_LINES), ids=list(FIRST_LINES))
@pytest.mark.parametrize("name", ["rec.jsonl", "rec.txt"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_jsonl_file_with_an_over_long_first_line_is_read_as_jsonl_and_the_line_quarantined(tmp_path, first, name,
                                                                                             encoding):
    path = tmp_path / name
    path.write_bytes(_encoded("\n".join([FIRST_LINES[first], *_readings()]) + "\n", encoding))
    proc = _replay(tmp_path, path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["observations"] == 5
    assert summary["rejected_by_reason"] == {"too_large": 1}
    assert [r["code"] for r in _rejected(tmp_path)] == ["too_large"]


def test_a_csv_row_with_a_cell_past_the_field_limit_is_quarantined_alone(tmp_path):
    summary, (bad,) = _csv_with_a_note(tmp_path, 6, 2, '"' + "y" * (LIMIT + 1) + '"')
    assert summary["observations"] == 5
    assert bad["reason"].startswith("CSV row cannot be read: field larger than field limit")
    assert bad["raw"].startswith("2024-01-01T02:00:00Z,a,3.0,")


@pytest.mark.parametrize("fmt", ["auto", "csv"])
def test_a_csv_header_past_the_field_limit_is_one_line_and_exit_2(tmp_path, fmt):
    path = tmp_path / "rec.csv"
    path.write_text("h" * (LIMIT + 1) + "\n1,2\n3,4\n")
    proc = _replay(tmp_path, path, "--format", fmt)
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert lines == [f"mass replay: rec.csv: the CSV header ({LIMIT + 2:,} characters) cannot be read: "
                     f"field larger than field limit ({LIMIT})"], proc.stderr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
       repeat=st.integers(0, 3 * SAMPLE), n=st.integers(1, 20), name=st.sampled_from(["r.jsonl", "r.csv", "r"]),
       encoding=st.sampled_from(ENCODINGS))
def test_property_json_lines_are_jsonl_whatever_the_first_line(tmp_path, first, repeat, n, name, encoding):
    """A file whose lines after the first are JSON objects is JSONL, whatever the first line and its
    length (up to three times the sniffing sample) and its encoding (UTF-8, UTF-16 by its mark)."""
    path = tmp_path / name
    long_first = first * (repeat // max(1, len(first))) if first else ""
    path.write_bytes(_encoded("\n".join([long_first or "x", *_readings(n)]) + "\n", encoding))
    assert open_recording(path).format == "jsonl"


_CELL = st.one_of(st.text(st.sampled_from('ab,;"\t 1.'), max_size=8),
                  st.integers(LIMIT - 2, LIMIT + 2).map(lambda k: '"' + "z" * k + '"'),
                  st.integers(LIMIT - 2, LIMIT + 2).map(lambda k: "z" * k))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.lists(_CELL, min_size=1, max_size=4).map(",".join), min_size=1, max_size=6),
       fmt=st.sampled_from(["auto", "csv"]))
def test_property_reading_a_table_never_raises_but_recording_error(tmp_path, lines, fmt):
    """Any lines of cells (quotes, separators, cells about the csv field limit, quoted or not): reading
    gives tables, or RecordingError saying why; a row the csv module refuses is one bad row."""
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    try:
        recording = open_recording(path, fmt)
        for chunk in recording.chunks():
            for _pos, _raw, reason in getattr(chunk, "bad", []):
                assert reason
    except RecordingError as exc:
        assert str(exc)


def test_a_csv_whose_rows_start_with_a_brace_stays_csv(tmp_path):
    """Rows that only start like JSON (a `{GUID}` id column) do not make a CSV JSON lines."""
    path = tmp_path / "ids.csv"
    path.write_text("id,ts,temp_c\n" + "".join(f"{{3F2504E0-4F89-11D3-9A0C-03{i:02d}}},2024-01-01T{i:02d}:00:00Z,"
                                               f"{i}.5\n" for i in range(10)))
    assert open_recording(path).format == "csv"


def test_a_csv_row_whose_quoted_cell_spans_a_megabyte_over_many_lines_is_quarantined_alone(tmp_path):
    """A 1 MB quoted note over 1,100 lines is one record (too large for the csv module: quarantined with
    its reason and first bytes), and the rows after it are read, not one quarantine record per line."""
    summary, (bad,) = _csv_with_a_note(tmp_path, 8, 3, '"' + "\n".join(["y" * 950] * 1100) + '"')
    assert summary["observations"] == 7
    assert bad["reason"].startswith("CSV row cannot be read: field larger than field limit")
    assert "first 4096 kept" in bad["reason"]
    assert bad["raw"].startswith("2024-01-01T03:00:00Z,a,4.0,\"yyy") and len(bad["raw"]) <= 4096


def _csv_with_a_note(tmp_path: Path, hours: int, at: int, note: str) -> tuple[dict, list[dict]]:
    """Replay a CSV of `hours` hourly rows whose row `at` has `note` as its last cell: (summary, rejected)."""
    rows = [f"2024-01-01T{h:02d}:00:00Z,a,{1.0 + h},ok" for h in range(hours)]
    rows[at] = rows[at].replace(",ok", "," + note)
    path = tmp_path / "rec.csv"
    path.write_text("ts,station,temp_c,note\n" + "\n".join(rows) + "\n")
    proc = _replay(tmp_path, path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), _rejected(tmp_path)
