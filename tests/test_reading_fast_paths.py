"""The fast ways of reading a recording give what the plain ways give.

- `jsonl_chunks` cuts a file where `readlines(size)` cuts it and drops the same blank lines, in one
  split per chunk instead of a loop over lines (plain and gzip files, one cut short too).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sources.formats import BOM, jsonl_chunks
from sources.formats.opener import RecordingError, head_bytes, open_binary

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
