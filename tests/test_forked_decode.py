"""A replay's second half decoded by a forked copy (`mass_tui.forked_decode`): the chunks split at a
block boundary are the whole file's, and a replay stores and counts the same with or without it,
when the child's half is used, when it dies, and when decoding carries state across the split."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sources.formats import BOM, block_starts, jsonl_chunks, open_recording

ROOT = Path(__file__).resolve().parents[1]


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.text(st.characters(blacklist_characters="\n\x00", blacklist_categories=("Cs",)), max_size=40)
                     .map(str.encode), max_size=60),
       size=st.integers(1, 200), bom=st.booleans(), crlf=st.booleans(), final_newline=st.booleans())
@example(lines=[b"{}", b"", b" {}", b"x" * 30], size=5, bom=True, crlf=True, final_newline=False)
def test_property_the_chunks_either_side_of_any_block_start_are_the_whole_files(tmp_path_factory, lines, size, bom,
                                                                               crlf, final_newline):
    """`jsonl_chunks(stop=k)` then `jsonl_chunks(start=k)`, k any block start, give the chunks of one
    read: the same blank lines dropped, CRLF and the leading byte-order mark taken off."""
    path = tmp_path_factory.mktemp("c") / "rec.jsonl"
    end = b"\r\n" if crlf else b"\n"
    data = (BOM if bom else b"") + end.join(lines) + (end if final_newline and lines else b"")
    path.write_bytes(data)
    whole = list(jsonl_chunks(path, size))
    starts = block_starts(path, size)
    assert starts[0] == 0 and starts == sorted(set(starts)) and all(s < max(len(data), 1) for s in starts)
    for k in starts:
        assert [*jsonl_chunks(path, size, stop=k), *jsonl_chunks(path, size, start=k)] == whole


def test_a_plain_jsonl_file_splits_at_the_block_start_nearest_its_middle_and_others_do_not(tmp_path):
    path = tmp_path / "rec.jsonl"
    path.write_bytes(b"".join(b'{"ts": %d, "station": "s", "temp_c": 1}\n' % i for i in range(2000)))
    recording = open_recording(path, chunk_bytes=4096)
    middle = path.stat().st_size / 2
    k = recording.split_point()
    assert k in block_starts(path, 4096) and k > 0
    assert all(abs(k - middle) <= abs(s - middle) for s in block_starts(path, 4096))
    assert open_recording(path, chunk_bytes=1 << 20).split_point() is None  # one chunk
    gz = tmp_path / "rec.jsonl.gz"
    subprocess.run(["gzip", "-k", str(path)], check=True)
    assert open_recording(gz, chunk_bytes=4096).split_point() is None  # compressed: read from the start only
    csv = tmp_path / "rec.csv"
    csv.write_text("ts,station,temp_c\n" + "".join(f"{i},s,1\n" for i in range(2000)))
    assert open_recording(csv, chunk_bytes=4096).split_point() is None


# A replay in a fresh interpreter (one thread: it may fork), with small chunks so the file splits;
# FORK=0 decodes all of it in one process. Prints what the replay stored and counted.
_REPLAY = textwrap.dedent("""
    import json, os, sys, threading
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from mass_tui import forked_decode
    from mass_tui.config import load_config
    from mass_tui.engine import Engine
    from mass_tui.replay import replay_file
    from mass_tui.store import open_store
    mode, path, data = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    taken = []
    real_take = forked_decode.ForkedHalf.take
    def take(self):
        half = real_take(self)
        taken.append(None if half is None else (half.stateful, len(half.parts)))
        return half
    forked_decode.ForkedHalf.take = take
    if mode == "die":  # the child ends before handing anything over
        forked_decode._decode_half = lambda *args: os._exit(3)
    overrides = {"data.dir": str(data)}
    if len(sys.argv) > 5:
        overrides["inputs.tz"] = sys.argv[5]
    cfg = load_config(config_file=None, overrides=overrides)
    with open_store(cfg) as store:
        engine = Engine(cfg, store)
        assert replay_file(engine, path, chunk_bytes=16384, fork_decode=mode != "one")
        engine.sinks.sync()
        summary = engine.summary()
        engine.sinks.close()
    print(json.dumps({"summary": summary, "taken": taken}))
""")


def _replay(tmp_path: Path, recording: Path, mode: str, *tz: str) -> tuple[dict, dict[str, bytes]]:
    """(what the replay printed, with its stderr under "stderr"; the stored files, quarantine times left out)."""
    data = tmp_path / f"data-{mode}"
    done = subprocess.run([sys.executable, "-c", _REPLAY, str(ROOT), mode, str(recording), str(data), *tz],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1]) | {"stderr": done.stderr}
    files = {}
    for p in sorted((data / "db").glob("*.jsonl")):
        lines = p.read_bytes().splitlines()
        if p.name.startswith("rejected"):  # the time each was quarantined differs from run to run
            lines = [json.dumps({k: v for k, v in json.loads(x).items() if k != "received_at"}).encode() for x in lines]
        files[p.name] = b"\n".join(lines)
    return out, files


def _recording(path: Path, n: int) -> Path:
    """n readings of 3 stations with a bad line or a bad field now and then, of several kinds."""
    bad = ['{"time": "2024-01-01T00:00:00Z", "station": "s0", "temp_c": "warm", "humidity_pct": 50}', "{not json",
           "[1, 2]", '{"ts": "yesterday", "station": "s1", "temp_c": 1}',
           '{"time": "2024-01-01T00:00:00Z", "station": "s2", "temp_c": -9999, "humidity_pct": 50}',
           '{"ts": 1700000000, "station": "s0", "temp_c": 1, "tags": [1]}', '{"station": "s1", "temp_c": 2}',
           '{"time": "2024-01-01T00:00:00Z", "station": "s1", "temp_c": 500, "humidity_pct": 50}']
    with path.open("w") as fh:
        for i in range(n):
            if i % 97 == 96:
                fh.write(bad[i // 97 % len(bad)] + "\n")
                continue
            fh.write(json.dumps({"time": (datetime(2024, 1, 1) + timedelta(minutes=10 * (i // 3))).isoformat() + "Z",
                                 "station": f"s{i % 3}", "lat": 52.1, "lon": 4.3, "tags": {"site": f"x{i % 2}"},
                                 "temp_c": round(10 + (i % 50) * 0.1, 2), "humidity_pct": 50 + i % 7}) + "\n")
    return path


def test_a_replay_stores_and_counts_the_same_with_its_second_half_decoded_by_a_forked_copy(tmp_path):
    recording = _recording(tmp_path / "rec.jsonl", 3000)
    forked, forked_files = _replay(tmp_path, recording, "fork")
    one, one_files = _replay(tmp_path, recording, "one")
    assert forked["taken"] == [[False, forked["taken"][0][1]]] and forked["taken"][0][1] > 1  # the child's half used
    assert one["taken"] == []
    assert forked["summary"] == one["summary"] and forked_files == one_files
    assert one["summary"]["rejected"] > 0 and one["summary"]["fields_rejected"] > 0
    assert set(one_files) >= {"consumer_stream.jsonl", "rejected.jsonl"}


def test_a_forked_decoder_that_dies_leaves_its_half_to_the_replay(tmp_path):
    recording = _recording(tmp_path / "rec.jsonl", 3000)
    died, died_files = _replay(tmp_path, recording, "die")
    one, one_files = _replay(tmp_path, recording, "one")
    assert died["taken"] == [None]
    assert died["summary"] == one["summary"] and died_files == one_files
    assert "ended with exit code 3 before handing over its half" in died["stderr"]  # logged (no handler: stderr)


def test_naive_local_times_across_the_split_are_decoded_in_order_not_by_the_fork(tmp_path):
    """Which of a repeated hour's two passes a naive time is depends on the station's reading before
    it: when that reading is in the first half, the forked copy (which never saw it) would take the
    second pass for the first. Its half is dropped and decoded after the first, in order."""
    zone = ZoneInfo("America/Chicago")
    line = '{"time": "%s", "station": "s", "temp_c": %.1f}\n'
    n = 1200
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(line % ("2024-11-02T00:00:00", 10.0) for _ in range(n)))  # same length as the real lines
    split_line = open_recording(path, chunk_bytes=16384).split_point() // len(line % ("2024-11-02T00:00:00", 10.0))
    # 15-minute readings, so that the first pass of 01:00-01:59 on 3 November ends at the split
    fall_back = datetime(2024, 11, 3, 6, 0, tzinfo=ZoneInfo("UTC"))  # 01:00 CDT, the first pass
    first = fall_back - timedelta(minutes=15 * (split_line - 4))
    with path.open("w") as fh:
        for i in range(n):
            wall = (first + timedelta(minutes=15 * i)).astimezone(zone).replace(tzinfo=None)
            fh.write(line % (wall.isoformat(), 10.0 + (i % 20) * 0.5))
    forked, forked_files = _replay(tmp_path, path, "fork", "America/Chicago")
    one, one_files = _replay(tmp_path, path, "one", "America/Chicago")
    assert forked["taken"] and forked["taken"][0][0] is True  # the child said its decoding carried state
    assert forked["summary"] == one["summary"] and forked_files == one_files
    stream = [json.loads(x)["ts"] for x in one_files["consumer_stream.jsonl"].splitlines()]
    assert len(stream) == n and len(set(stream)) == n  # both passes of the hour kept, in order
