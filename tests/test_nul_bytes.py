"""NUL bytes in a text recording (a disk fault, NUL padding a crash leaves at the end) quarantine the
lines holding them, each with its reason, wherever they sit; a file that is really binary is refused in
one line (exit 2). The rule that tells the two apart is `opener.binary_reason`."""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.decode import Decoder
from sources.formats import open_recording
from sources.formats.opener import SAMPLE, binary_reason

from .test_cli import mass


def _line(i: int, station: str = "KORD") -> bytes:
    return json.dumps({"ts": 1_700_000_000 + 60 * i, "station": station, "temp_c": 10.0 + i % 7}).encode()


def _replay(tmp_path: Path, path: Path):
    proc = mass("replay", str(path), "--headless", "--max", "-q", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    rejected_file = tmp_path / "data" / "db" / "rejected.jsonl"
    rejected = [json.loads(x) for x in rejected_file.read_text().splitlines()] if rejected_file.exists() else []
    return proc, rejected


def _summary(proc) -> dict:
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("where", ["in line 6", "past the sniffed head"])
def test_one_nul_in_a_jsonl_recording_quarantines_its_line_alone(tmp_path, where):
    lines = [_line(i) for i in range(3000)]  # about 200 KB: line 6 is inside the 64 KiB head, line 2,900 past it
    at = 5 if where == "in line 6" else 2900
    lines[at] = lines[at][:10] + b"\x00" + lines[at][10:]
    path = tmp_path / "rec.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    proc, rejected = _replay(tmp_path, path)
    summary = _summary(proc)
    assert summary["observations"] == 2999 and summary["rejected_by_reason"] == {"nul_bytes": 1}
    (bad,) = rejected
    assert "1 NUL byte" in bad["reason"] and bad["raw"].encode() == lines[at]


@pytest.mark.parametrize("padding", [100, 4096, SAMPLE + 1000, (1 << 20) + 10])
def test_nul_padding_at_the_end_of_a_jsonl_recording_is_one_quarantine_record(tmp_path, padding):
    lines = [_line(i) for i in range(20)]
    path = tmp_path / "crashed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n" + b"\x00" * padding)
    proc, rejected = _replay(tmp_path, path)
    summary = _summary(proc)
    assert summary["observations"] == 20 and summary["rejected"] == 1
    (bad,) = rejected
    assert bad["code"] == "nul_bytes" and "NUL bytes" in bad["reason"] and len(bad["raw"]) <= 4096


def test_a_csv_row_with_a_nul_is_quarantined_and_no_station_is_made_of_it(tmp_path):
    rows = [f"2024-01-01T{h:02d}:00:00Z,KORD,{h}.5" for h in range(24)]
    rows[3] = rows[3].replace("KORD", "KO\x00RD")
    path = tmp_path / "rec.csv"
    path.write_bytes(("ts,station,temp_c\n" + "\n".join(rows) + "\n").encode() + b"\x00" * 5000)
    proc, rejected = _replay(tmp_path, path)
    summary = _summary(proc)
    assert summary["observations"] == 23 and summary["stations"] == 1
    assert [("NUL byte" in r["reason"]) for r in rejected] == [True, True]


def _xlsx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    return out.getvalue()


BINARY = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(random.Random(1).randrange(256) for _ in range(3000)),
    "xlsx": _xlsx(),
    "mostly NULs": b"\x00" * 5000 + b"ts,station\n" + b"\x00" * 5000 + b"1,a\n",
    "only NULs": b"\x00" * 10000,
    "random bytes": random.Random(2).randbytes(20000),
    "utf-16 without its mark": "\n".join(_line(i).decode() for i in range(50)).encode("utf-16-le"),
    "gzipped NULs": gzip.compress(b"\x00" * 100000),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_a_binary_file_is_refused_in_one_line(tmp_path, name):
    path = tmp_path / "data.jsonl"
    path.write_bytes(BINARY[name])
    proc, rejected = _replay(tmp_path, path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("mass replay: data.jsonl ")
    assert any(what in line for what in ("not a recording", "not text", "zip archive")), line
    assert rejected == []


_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs",)),
                min_size=1, max_size=80)


@settings(max_examples=50, deadline=None)
@given(lines=st.lists(_TEXT, min_size=1, max_size=400), data=st.data(), padding=st.integers(0, 3 * SAMPLE))
def test_property_text_with_nuls_in_a_few_lines_is_text(lines, data, padding):
    """Text lines, at most max(2, 1 in 10) of them holding NULs (anywhere, a few each), and any run of
    NUL padding at the end: text, whatever the lines say."""
    encoded = [line.encode() for line in lines]
    k = data.draw(st.integers(0, max(2, len(lines) // 10)))
    for i in data.draw(st.lists(st.integers(0, len(lines) - 1), max_size=k, unique=True)):
        at = data.draw(st.integers(0, len(encoded[i])))
        encoded[i] = encoded[i][:at] + b"\x00" * data.draw(st.integers(1, 3)) + encoded[i][at:]
    head = (b"\n".join(encoded) + b"\n" + b"\x00" * padding)[:SAMPLE]
    assert binary_reason(head) is None


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=4000), extra=st.integers(0, 8000), seed=st.integers(0, 1000))
def test_property_mostly_nuls_is_binary(body, extra, seed):
    """More than half NUL bytes, wherever they are but in a run at the very end: binary."""
    mixed = bytearray(body + b"\x00" * (len(body) + 2 + extra))
    random.Random(seed).shuffle(mixed)
    head = bytes(mixed) + b"x"  # not ending in NULs: none of them is padding at the end
    if not head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 by its mark
        assert binary_reason(head) is not None


@settings(max_examples=25, deadline=None)
@given(magic=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"%PDF-", b"\x7fELF",
                              b"SQLite format 3\x00"]), rest=st.binary(max_size=200))
def test_property_known_magic_numbers_are_binary(magic, rest):
    assert binary_reason(magic + rest) is not None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 60), bad=st.sets(st.integers(0, 59), max_size=2), padding=st.integers(0, 5000))
def test_property_a_jsonl_recording_loses_only_its_nul_lines(tmp_path, n, bad, padding):
    """Lines with NULs, and NUL padding at the end, are one quarantine record each; every other line
    is decoded. The counts add up."""
    bad = {i for i in bad if i < n}
    lines = [_line(i) if i not in bad else _line(i)[:5] + b"\x00" + _line(i)[5:] for i in range(n)]
    path = tmp_path / "rec.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n" + b"\x00" * padding)
    decoder = Decoder()
    rows = nul_records = 0
    for chunk in open_recording(path).chunks():
        out = decoder.decode(chunk)
        rows += len(out.batch)
        assert {r.code for r in out.rejected} <= {"nul_bytes"}
        nul_records += len(out.rejected)
    assert rows == n - len(bad) and nul_records == len(bad) + (padding > 0)
