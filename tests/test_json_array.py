"""A recording that is one JSON array of objects: each element one message (sources/formats/json_array.py)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.formats import json_array, open_recording
from sources.formats.opener import head_bytes

from .test_cli import mass


def _readings(n: int = 5) -> list[dict]:
    return [{"ts": f"2024-01-01T{h:02d}:00:00Z", "station": "a", "temp_c": 1.0 + h} for h in range(n)]


def _replay(tmp_path: Path, path: Path, *extra: str) -> tuple[dict, list[dict]]:
    proc = mass("replay", str(path), "--headless", "--max", "-q", "--data-dir", str(tmp_path / "data"), *extra,
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rejected = tmp_path / "data" / "db" / "rejected.jsonl"
    bad = [json.loads(x) for x in rejected.read_text().splitlines()] if rejected.exists() else []
    return json.loads(proc.stdout.strip().splitlines()[-1]), bad


@pytest.mark.parametrize("indent", [None, 2], ids=["one line", "pretty-printed"])
@pytest.mark.parametrize("fmt", ["auto", "json"])
def test_a_json_array_file_is_read_as_records_and_a_non_object_quarantined_alone(tmp_path, indent, fmt):
    path = tmp_path / "rec.json"
    path.write_text(json.dumps([*_readings(3), 7, *_readings(5)[3:], ["x"]], indent=indent) + "\n")
    summary, bad = _replay(tmp_path, path, "--format", fmt)
    assert summary["observations"] == 5
    assert [(r["reason"], r["raw"]) for r in bad] == [("not a JSON object but a number", "7"),
                                                      ("not a JSON object but a list", '["x"]')]


def test_telegraf_batches_in_a_json_array_and_in_json_lines_are_read(tmp_path):
    batch = {"metrics": [{"fields": {"temperature": 18.5}, "name": "weather", "tags": {"station": "roof"},
                          "timestamp": 1714557660 + 60 * k} for k in range(2)]}
    (tmp_path / "a").mkdir()
    array = tmp_path / "a" / "rec.json"
    array.write_text(json.dumps([batch], indent=1))
    assert _replay(tmp_path / "a", array)[0]["observations"] == 2
    (tmp_path / "b").mkdir()
    lines = tmp_path / "b" / "rec.jsonl"
    lines.write_text(json.dumps(batch) + "\n")
    assert _replay(tmp_path / "b", lines)[0]["observations"] == 2


def test_a_file_that_is_not_one_json_document_is_read_line_by_line(tmp_path):
    path = tmp_path / "rec.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in _readings(3)) + ",\n")  # cut short: no `]`
    summary, bad = _replay(tmp_path, path)
    assert open_recording(path).format == "jsonl"
    assert summary["observations"] == 0 and len(bad) == 4  # each line its own reason, as before


def test_json_lines_of_arrays_are_json_lines_and_a_file_past_the_limit_is_not_parsed_whole(tmp_path):
    lines = tmp_path / "rows.jsonl"
    lines.write_text("[1, 2]\n[3]\n")
    assert json_array.document(lines, head_bytes(lines)) is None
    big = tmp_path / "big.json"
    big.write_text(json.dumps(_readings(5)))
    assert json_array.document(big, head_bytes(big)) == _readings(5)
    assert json_array.document(big, head_bytes(big), max_bytes=big.stat().st_size - 1) is None


def test_a_utf16_json_array_is_read(tmp_path):
    path = tmp_path / "rec.json"
    path.write_bytes(json.dumps(_readings(4), indent=2).encode("utf-16"))
    assert open_recording(path).format == "json"
    assert _replay(tmp_path, path)[0]["observations"] == 4


_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                     max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(elements=st.lists(_VALUES, max_size=20), indent=st.sampled_from([None, 1, 4]),
       lead=st.sampled_from(["", "\n\n", "  ", "\ufeff"]), chunk=st.integers(1, 200))
def test_property_each_element_of_a_json_array_is_one_message(tmp_path, elements, indent, lead, chunk):
    """Whatever its elements and layout (one line or pretty-printed, blank lines or a BOM first), a file
    that is one JSON array is format json and gives one message line per element, in order."""
    path = tmp_path / "r.json"
    path.write_text(lead + json.dumps(elements, indent=indent) + "\n", encoding="utf-8")
    assert open_recording(path).format == "json"
    got = [line for part in open_recording(path, "json").chunks() for line in part]
    assert got == [orjson.dumps(e) for e in elements]
