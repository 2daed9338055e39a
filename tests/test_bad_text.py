"""Text that is not valid Unicode (a lone UTF-16 surrogate, from an unpaired `\\ud800` escape or the bytes
ED A0 80; a byte that is not UTF-8): a message whose station, time, source or tags hold it is quarantined
whole (`bad_text`), a value holding it is a bad field whose raw text is written escaped (`\\ud800`), an
unknown field name holding it is counted escaped; nothing raises, on the per-line path and in a chunk
polars reads (>= 512 lines), with the store's sinks inline and in a writer process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.replay import replay_file
from mass_tui.store import REJECTED, JsonlStore
from sources.decode import TYPED_MIN_LINES, Decoder
from sources.text import escape_surrogates, json_bytes

ROOT = Path(__file__).resolve().parents[1]
T0 = b'"2024-05-01T00:00:00Z"'

# (line, what becomes of it): ("bad_text", reason fragment) quarantined whole; ("field", code, raw) one bad
# field, the reading kept; ("ignored", name) the reading kept, the field name counted escaped.
CASES = {
    "station-escape": (b'{"ts":' + T0 + b',"station":"\\ud800","temp_c":1}', ("bad_text", "station")),
    "station-bytes": (b'{"ts":' + T0 + b',"station":"\xed\xa0\x80","temp_c":1}', ("bad_text", "station")),
    "station-not-utf8": (b'{"ts":' + T0 + b',"station":"x\xff","temp_c":1}', ("bad_text", "station")),
    "tag-value": (b'{"ts":' + T0 + b',"station":"a","tags":{"k":"\\ud800"},"temp_c":1}', ("bad_text", "tags.k")),
    "tag-key": (b'{"ts":' + T0 + b',"station":"a","tags":{"\\udc00":"v"},"temp_c":1}', ("bad_text", "a tag key")),
    "telegraf-name": (b'{"fields":{"temp_c":1},"name":"\\ud800","tags":{"host":"h"},"timestamp":1714521600}',
                      ("bad_text", "name")),
    "telegraf-host": (b'{"fields":{"temp_c":1},"name":"m","tags":{"host":"\\udfff"},"timestamp":1714521600}',
                      ("bad_text", "tags.host")),
    "source": (b'{"ts":' + T0 + b',"station":"a","source":"\\ud800","temp_c":1}', ("bad_text", "source")),
    "time": (b'{"ts":"2024-05-01T00:00:00Z\\ud800","station":"a","temp_c":1}', ("bad_text", "ts")),
    "value-escape": (b'{"ts":' + T0 + b',"station":"a","temp_c":"\\ud800","rh_pct":5}',
                     ("field", "not_a_number", "\\ud800")),
    "value-not-utf8": (b'{"ts":' + T0 + b',"station":"a","temp_c":"1\xff","rh_pct":5}',
                       ("field", "not_a_number", "1\\udcff")),
    "coordinate": (b'{"ts":' + T0 + b',"station":"a","lat":"\\ud800","lon":1,"temp_c":1}',
                   ("field", "bad_coordinate", "\\ud800")),
    "field-name": (b'{"ts":' + T0 + b',"station":"a","temp_c":1,"\\ud800x":5}', ("ignored", "\\ud800x")),
}


def _good(i: int) -> bytes:
    """A valid reading of one of 7 stations, one second apart (from 2024-05-02, after every case's time)."""
    return b'{"ts":%d,"station":"s%d","temp_c":%d}' % (1714608000 + i, i % 7, i % 30)


def _chunk(bad: list[bytes], total: int) -> list[bytes]:
    """`total` good lines with the bad ones in the middle."""
    lines = [_good(i) for i in range(total)]
    return lines[: total // 2] + bad + lines[total // 2:]


@pytest.mark.parametrize("total", [2, TYPED_MIN_LINES + 100], ids=["per-line", "typed-chunk"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_decoder_quarantines_text_that_is_not_unicode(case, total):
    line, want = CASES[case]
    ignored: dict[str, int] = {}
    out = Decoder().decode(_chunk([line], total), ignored=ignored)
    records = [r.to_record(0.0) for r in out.quarantined]
    for record in records:  # every record can be written
        orjson.dumps(record)
    assert all(type(s) is str and escape_surrogates(s) == s for s in out.batch.station + out.batch.source)
    if want[0] == "bad_text":
        assert len(out.batch) == total and not out.fields
        [rejection] = out.rejected
        assert rejection.code == "bad_text" and rejection.reason.startswith(want[1])
        assert "not valid Unicode" in rejection.reason
    else:
        assert len(out.batch) == total + 1 and not out.rejected
    if want[0] == "field":
        [record] = records
        assert (record["code"], record["raw"]) == want[1:]
    if want[0] == "ignored":
        assert ignored == {want[1]: 1}


def _replay(tmp_path: Path, recording: Path, sinks: str) -> tuple[subprocess.CompletedProcess, Path]:
    data = tmp_path / f"data-{sinks}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "MASS_SINKS": sinks,
           "MASS_LOG_DIR": str(tmp_path / f"logs-{sinks}")}
    done = subprocess.run([sys.executable, "-m", "mass_tui", "replay", str(recording), "--headless", "--max", "-q",
                           "--data-dir", str(data)], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=300)
    return done, data / "db"


@pytest.mark.parametrize("sinks", ["inline", "process"])
@pytest.mark.parametrize("total", [4, TYPED_MIN_LINES + 100], ids=["per-line", "typed-chunk"])
def test_replay_stores_and_quarantines_every_line_around_bad_text(tmp_path, sinks, total):
    # each its own station: readings of one station at one time would be duplicates
    bad = [CASES[name][0].replace(b'"station":"a"', b'"station":"a%d"' % k) for k, name in enumerate(sorted(CASES))]
    recording = tmp_path / "bad-text.jsonl"
    recording.write_bytes(b"\n".join(_chunk(bad, total)) + b"\n")
    done, db = _replay(tmp_path, recording, sinks)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    whole = sum(want[0] == "bad_text" for _line, want in CASES.values())
    fields = sum(want[0] == "field" for _line, want in CASES.values())
    assert summary["rejected"] == whole and summary["rejected_by_reason"] == {"bad_text": whole}
    assert summary["observations"] == total + len(CASES) - whole
    assert summary["fields_rejected"] == fields
    assert summary["ignored_fields"] == {"\\ud800x": 1}
    stored = [json.loads(x) for x in (db / "consumer_stream.jsonl").read_bytes().splitlines()]
    rejected = [json.loads(x) for x in (db / "rejected.jsonl").read_bytes().splitlines()]
    assert len(stored) == summary["observations"] and len(rejected) == whole + fields
    kept = {f"a{k}" for k, name in enumerate(sorted(CASES)) if CASES[name][1][0] != "bad_text"}
    assert {r["station"] for r in stored} == {f"s{i}" for i in range(min(total, 7))} | kept  # nothing renamed


_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
_TEXT = st.text(st.one_of(st.characters(), _SURROGATES), max_size=12)
_PLACES = ["station", "source", "ts", "tag key", "tag value", "value", "field name", "telegraf name",
           "telegraf host"]


def _line(place: str, text: str, escaped: bool) -> bytes:
    """A valid reading (station "gen", a time no good line has) with `text` in `place`, its lone surrogates
    written as JSON escapes (`escaped`) or as their UTF-8-like bytes (ED A0 80)."""
    if place.startswith("telegraf"):
        obj = {"fields": {"temp_c": 1}, "name": "m", "tags": {"host": "gen"}, "timestamp": 1717200000}
        obj["name" if place == "telegraf name" else "tags"] = text if place == "telegraf name" else {"host": text}
    else:
        obj = {"ts": "2024-06-01T00:00:00Z", "station": "gen", "tags": {"k": "v"}, "temp_c": 1, "rh_pct": 50}
        if place == "tag key":
            obj["tags"] = {text: "v"}
        elif place == "tag value":
            obj["tags"] = {"k": text}
        elif place == "value":
            obj["temp_c"] = text
        elif place == "field name":
            obj[text] = 5
        else:
            obj[place] = text
    if escaped:
        return json.dumps(obj, ensure_ascii=True).encode()
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(_PLACES), text=_TEXT, escaped=st.booleans(), typed=st.booleans())
def test_replay_of_any_text_never_raises_and_counts_every_line(place, text, escaped, typed):
    total = TYPED_MIN_LINES + 8 if typed else 3
    lines = _chunk([_line(place, text, escaped)], total)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        recording = tmp_path / "r.jsonl"
        recording.write_bytes(b"\n".join(lines) + b"\n")
        cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs")},
                          dotenv_file=None)
        with JsonlStore(tmp_path / "db") as store:
            engine = Engine(cfg, store)
            assert replay_file(engine, recording)
            orjson.dumps(engine.summary())  # the decoder let no bad text through: no fallback needed
        c = engine.counters
        assert c.observations + c.rejected == len(lines)
        rejected = (tmp_path / "db" / "rejected.jsonl")
        written = rejected.read_bytes().splitlines() if rejected.exists() else []
        assert len(written) == c.rejected + c.fields_rejected
        for x in written:
            json.loads(x)
        assert all(escape_surrogates(k) == k for k in c.ignored_fields)


def test_json_bytes_escapes_lone_surrogates_and_keeps_valid_text():
    assert json_bytes({"\ud800k": ["a\udfffb", "é😀"]}) == '{"\\\\ud800k":["a\\\\udfffb","é😀"]}'.encode()
    assert json_bytes({"k": "v"}) == orjson.dumps({"k": "v"})


def test_store_and_stream_writing_escape_text_the_decoder_would_not_let_through(tmp_path):
    """Defence in depth: a record or a row holding a lone surrogate is written escaped, never a failed write."""
    import numpy as np

    from mass_tui.sinks.jsonl import stream_data
    from sources.batch import ObservationBatch

    with JsonlStore(tmp_path / "db") as store:
        assert store.append(REJECTED, [{"raw": "a\ud800"}, {"raw": "b"}]) == 2
    lines = (tmp_path / "db" / "rejected.jsonl").read_bytes().splitlines()
    assert [json.loads(x)["raw"] for x in lines] == ["a\\ud800", "b"]
    batch = ObservationBatch(np.array([1714521600.0, 1714521601.0]), ["\udc00", "ok"], ["src", "src"],
                             {"temp_c": np.array([1.0, 2.0])}, None, None, [{"k\ud800": "v"}, {}])
    rows = [json.loads(x) for x in stream_data(batch, {}).splitlines()]
    assert [r["station"] for r in rows] == ["\\udc00", "ok"] and rows[0]["tags"] == {"k\\ud800": "v"}


def test_already_parsed_objects_with_a_lone_surrogate_are_judged_the_same():
    """`decode_objects` takes values parsed by anyone (the standard library keeps `\\ud800`)."""
    t = "2024-05-01T00:00:00Z"
    out = Decoder().decode_objects([{"ts": t, "station": "\ud800", "temp_c": 1},
                                    {"ts": t, "station": "a", "temp_c": "x\ud800", "rh_pct": 5}])
    [rejection] = out.rejected
    assert rejection.code == "bad_text" and json.loads(rejection.raw)["station"] == "\\ud800"
    assert [(f.code, f.raw) for f in out.fields] == [("not_a_number", "x\\ud800")]
    assert out.batch.station == ["a"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_messages_with_transport_metadata_are_judged_the_same(case):
    """Kafka's path (messages with metadata, read one by one): the same outcome as a replay's."""
    from sources.schema import MessageMeta

    line, want = CASES[case]
    out = Decoder().decode([_good(0), line], meta=[MessageMeta("t", 0, 0), MessageMeta("t", 0, 1)], ignored={})
    for record in (r.to_record(0.0) for r in out.quarantined):
        orjson.dumps(record)
    assert [r.code for r in out.rejected] == (["bad_text"] if want[0] == "bad_text" else [])
    assert [(f.code, f.raw) for f in out.fields] == ([want[1:]] if want[0] == "field" else [])
