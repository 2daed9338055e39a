"""A recording with a few bad lines in every chunk (the `bad` layout of bench/replay_throughput.py: not
JSON, a list, no time, an unparseable or out-of-range time, no station, a list as tags, a value not a
number, out of range, a -9999 marker, a latitude of 200, NaN) decodes on the fast path (polars' columns
for the clean lines, the bad ones set aside) exactly as on the simple paths: the same rows in the same
order, each bad line quarantined alone with its reason, each bad field alone, chunk after chunk."""

from __future__ import annotations

import gc
import json
from concurrent.futures import Future

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sources.decode as decode
from bench.replay_throughput import _bad_line
from sources.decode import Decoder
from sources.formats import Lines
from sources.json_columns import ColumnReader
from tests.test_typed_decode import _key

STATIONS = [("om-osaka-0", -33.082, -108.117), ("om-lima-1", 43.221, 121.564), ("om-lima-2", -25.309, 54.934)]
KINDS = 16  # the bench's 12 kinds of bad line, and a few more odd ones


def _good(hour: int, which: int, temp: float, humidity: int) -> dict:
    name, lat, lon = STATIONS[which]
    return {"time": f"2024-01-{7 + hour // 24:02d}T{hour % 24:02d}:00:00+00:00", "station": name,
            "latitude": lat, "longitude": lon, "tags": {"provider": "open-meteo", "model": "best_match"},
            "temp_c": temp, "humidity_pct": humidity, "pressure_msl": 1002.97, "gust_mps": 2.66, "precip_mm": 0.0}


def _bad(kind: int, obj: dict) -> bytes:
    """One bad line of kind `kind` made from a good object (kinds 0-11 the bench's own)."""
    if kind < 12:
        return _bad_line(kind, obj).encode()
    obj = dict(obj)
    if kind == 12:
        return b"{}"  # what the column reader puts in place of a line it leaves out
    if kind == 13:
        return json.dumps(obj, separators=(",", ":")).encode()  # good, but not written as the others
    if kind == 14:
        obj["temp_c"] = None
        return json.dumps(obj).encode()
    return json.dumps(obj).replace('"time"', '"ts"').encode()  # another layout, all good


@st.composite
def streams(draw) -> list[list[bytes]]:
    """1-3 chunks of good lines with bad lines at random places (at least one good line in each)."""
    out = []
    hour = 0
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 120))
        objs = []
        for _ in range(n):
            objs.append(_good(hour // 3, hour % 3, draw(st.floats(-20, 40).map(lambda v: round(v, 2))),
                              draw(st.integers(0, 100))))
            hour += 1
        lines = [json.dumps(obj).encode() for obj in objs]
        bad = draw(st.lists(st.tuples(st.integers(0, n), st.integers(0, KINDS - 1)), max_size=12))
        for at, kind in sorted(bad, reverse=True):
            lines.insert(at, _bad(kind, objs[min(at, n - 1)]))
        out.append(lines)
    return out


def _decode(stream: list[list[bytes]], how: str) -> tuple[list, list]:
    """Decode a stream's chunks: `typed` (polars' columns read inline), `ahead` (read in a thread as a
    replay does), `unclean` / `refused` (the reader's states after a chunk polars refused), `objects`
    (orjson, every line an object), `messages` (one message at a time)."""
    decoder = Decoder(typed_min_lines=10**9 if how in ("objects", "messages") else 1)
    decoder._reader.unclean = how in ("unclean", "refused")
    decoder._reader.refused = how == "refused"
    reader = ColumnReader()
    ignored: dict[str, int] = {}
    got = []
    for raws in stream:
        chunk: list[bytes] = raws
        if how == "ahead":
            columns: Future = Future()
            columns.set_result(reader.read(raws))
            chunk = Lines(raws, columns)
        meta = [None] * len(raws) if how == "messages" else None
        got.append(_key(decoder.decode(chunk, default_station="dflt", default_source="rec", meta=meta,
                                       ignored=ignored)))
    return got, sorted(ignored.items())


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(streams())
def test_bad_lines_anywhere_decode_as_on_the_simple_paths(stream):
    want = _decode(stream, "messages")
    assert _decode(stream, "objects") == want
    for how in ("typed", "ahead", "unclean", "refused"):
        assert _decode(stream, how) == want, how


def test_the_clean_lines_of_a_chunk_with_bad_ones_are_read_from_columns():
    """A real shortcut: every good line is claimed, whatever the bad lines around it, in each reader state."""
    lines = [json.dumps(_good(h // 3, h % 3, 1.5 + h, 50)).encode() for h in range(60)]
    chunk = list(lines)
    for at, kind in [(55, 0), (40, 1), (30, 11), (20, 6), (10, 7), (0, 12)]:
        chunk.insert(at, _bad(kind, json.loads(lines[at])))
    good = [i for i, raw in enumerate(chunk) if raw in lines]
    for unclean, refused in [(False, False), (True, False), (True, True)]:
        reader = ColumnReader()
        reader.unclean, reader.refused = unclean, refused
        columns = reader.read(chunk)
        assert columns is not None and columns.rows.tolist() == good
        assert reader.unclean  # polars refuses the chunk whole: from then on the reader screens first


def test_a_bad_line_leaves_no_garbage_cycle_behind():
    """A line orjson refuses is remembered by its message, not its error: the error's traceback held the
    decoding frame (the chunk's lines and objects) in a cycle until the collector ran."""
    lines = [json.dumps(_good(h // 3, h % 3, 1.5, 50)).encode() for h in range(40)]
    chunk = lines[:10] + [b'{"time": "2024-01-07', b"[1, 2]"] + lines[10:] + [_bad(11, json.loads(lines[0]))]
    decoder = Decoder(typed_min_lines=1)
    decoder.decode(chunk)  # imports, caches
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        out = decoder.decode(chunk)
        assert gc.collect() == 0
    finally:
        if was:
            gc.enable()
    assert [r.code for r in out.rejected] == ["not_json", "not_object"] and len(out.batch) == 41


@given(st.integers(0, 300).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.integers(0, max(n - 1, 0)), max_size=20), st.sampled_from(["drop", "shuffle", "sorted"]))))
def test_take_is_the_loop_over_the_positions(case):
    n, picks, how = case
    picks = picks if n else []
    values = [f"s{i}" for i in range(n)]
    if how == "drop":  # the kept rows of a group: runs with a few gaps
        at = np.setdiff1d(np.arange(n), np.asarray(picks, dtype=np.int64))
    elif how == "shuffle":  # positions anywhere
        at = np.random.default_rng(len(picks)).permutation(n)[: len(picks) * 5]
    else:  # groups put back in input order: runs, some repeated
        at = np.sort(np.concatenate([np.arange(n), np.asarray(picks, dtype=np.int64)])).astype(np.int64)
    assert decode._take(values, at) == [values[i] for i in at.tolist()]
