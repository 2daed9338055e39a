"""A message is decoded up to MAX_MESSAGE_BYTES (1 MiB, the file transport's line limit): a Telegraf batch
of its default 1,000 metrics (about 130 KB on one line) is 1,000 readings, not one `too_large` record.
Past the limit a line is quarantined whole (reliability case smuggle-over-1mb-line), its first 4 KB kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sources.decode import Decoder
from sources.schema import RAW_KEPT

from .test_cli import mass

# What a user expects a line may be (reliability case smuggle-over-1mb-line: past 1 MiB it is rejected whole).
LIMIT = 1 << 20


def telegraf_batch(n: int = 1000, stations: int = 50) -> bytes:
    """One line of Telegraf's JSON serializer batching `n` metrics (its default metric_batch_size is 1000)."""
    metrics = [{"fields": {"temperature": 10.0 + i % 10, "humidity": 50 + i % 30}, "name": "weather",
                "tags": {"host": "telegraf-1", "station": f"ST{i % stations:02d}"},
                "timestamp": 1_700_000_000 + 60 * (i // stations)} for i in range(n)]
    return json.dumps({"metrics": metrics}, separators=(",", ":")).encode()


def _replay(tmp_path: Path, path: Path) -> tuple[dict, list[dict]]:
    proc = mass("replay", str(path), "--headless", "--max", "-q", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    rejected_file = tmp_path / "d" / "db" / "rejected.jsonl"
    rejected = [json.loads(x) for x in rejected_file.read_text().splitlines()] if rejected_file.exists() else []
    return json.loads(proc.stdout.strip().splitlines()[-1]), rejected


def test_a_telegraf_batch_of_1000_metrics_is_1000_readings(tmp_path):
    line = telegraf_batch()
    assert 100_000 < len(line) < LIMIT
    path = tmp_path / "telegraf.jsonl"
    path.write_bytes(line + b"\n" + telegraf_batch(3).replace(b"ST0", b"XX") + b"\n")
    summary, rejected = _replay(tmp_path, path)
    assert rejected == [] and summary["rejected"] == 0
    assert summary["observations"] == 1003 and summary["stations"] == 53
    assert summary["variables"] == ["humidity_pct", "temp_c"]


def test_the_smuggled_line_past_1_mib_is_still_rejected_whole_on_replay(tmp_path):
    case = Path(__file__).parent / "data" / "cases" / "reliability" / "smuggle-over-1mb-line.py"
    line = subprocess.run([sys.executable, str(case)], capture_output=True, check=True, timeout=30).stdout
    good = b'{"ts":"2024-01-01T00:01:00Z","station":"fine","temp_c":2.0}\n'
    path = tmp_path / "smuggle.jsonl"
    path.write_bytes(good + line + good.replace(b"01:00", b"02:00"))
    summary, rejected = _replay(tmp_path, path)
    assert summary["observations"] == 2 and summary["stations"] == 1
    (bad,) = rejected
    assert bad["code"] == "too_large" and bad["raw"].startswith("xxxx") and len(bad["raw"]) <= RAW_KEPT


def _padded(size: int) -> bytes:
    """A valid observation of exactly `size` bytes (an ignored `note` pads it)."""
    bare = b'{"ts":"2024-01-01T00:00:00Z","station":"a","temp_c":1.5,"note":""}'
    return bare[:-2] + b"y" * (size - len(bare)) + b'"}'


@settings(max_examples=30, deadline=None)
@given(size=st.one_of(st.integers(LIMIT - 64, LIMIT + 64),
                      st.integers(100, 2 * LIMIT)),
       others=st.integers(0, 3), typed=st.booleans())
def test_property_a_message_is_decoded_up_to_the_limit_and_quarantined_whole_past_it(size, others, typed):
    """Any size: a valid message up to LIMIT is a row; past it one `too_large` record with
    its first RAW_KEPT bytes. The messages around it are rows either way (per message, or a chunk long
    enough for the typed path)."""
    good = b'{"ts":"2024-01-01T01:00:00Z","station":"b","temp_c":2.0}'
    raws = [_padded(size), *[good] * others]
    decoder = Decoder(typed_min_lines=1 if typed else 10**9)
    out = decoder.decode(raws)
    if size <= LIMIT:
        assert len(out.batch) == 1 + others and out.rejected == []
    else:
        (bad,) = out.rejected
        assert bad.code == "too_large" and len(bad.raw) == RAW_KEPT and len(out.batch) == others


def test_the_smuggled_line_alone_in_a_jsonl_file_is_rejected_whole_not_read_as_a_csv_header(tmp_path):
    """The case file as it comes (one line): JSON lines by its name, the line quarantined whole; it was
    taken for a CSV header 1 MiB long and the replay refused the file (exit 2)."""
    case = Path(__file__).parent / "data" / "cases" / "reliability" / "smuggle-over-1mb-line.py"
    path = tmp_path / "smuggle.jsonl"
    path.write_bytes(subprocess.run([sys.executable, str(case)], capture_output=True, check=True, timeout=30).stdout)
    summary, rejected = _replay(tmp_path, path)
    assert summary["observations"] == 0
    assert [r["code"] for r in rejected] == ["too_large"]


@settings(max_examples=200, deadline=None)
@given(line=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=80),
       suffix=st.sampled_from([".jsonl", ".ndjson", ".json"]))
def test_property_a_file_named_json_lines_is_json_lines_unless_it_starts_with_a_csv_header(line, suffix):
    """The rule: a name that says JSON lines decides, unless the first line may be a CSV header
    (a separator and no brace), as a CSV export misnamed .json is."""
    from sources.formats.detect import detect

    got = detect((line + "\n").encode(), "rec" + suffix)
    header_like = any(sep in line for sep in ",;\t") and "{" not in line
    if not header_like:
        assert got in ("jsonl", "ndbc", "iem")  # NDBC and IEM headers are known by their first line
    elif not line.lstrip().startswith(("{", "[")):
        assert got in ("csv", "iem")
