"""The stored stream's block index (`mass_tui.stored_keys.StoreIndex`): a recall that reads only the
blocks that can hold what it asks for answers exactly as one that reads the whole store."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.store import STREAM, JsonlStore
from mass_tui.stored_keys import Span, StoreIndex, _records, recall_stored, scan_stored
from sources.schema import iso_utc

T0 = 1_700_000_000.0


def _line(station: int, minute: int, value: float) -> bytes:
    return json.dumps({"ts": iso_utc(T0 + 60 * minute), "station": f"s{station}", "temp_c": value},
                      separators=(",", ":")).encode()


def _append(store: JsonlStore, rows: list[tuple[int, int]]) -> None:
    lines = []
    for s, m in rows:
        if m < 0:  # a line the readers skip: not JSON, then JSON without a time
            lines += [b"not json", b'{"station":"s0"}']
        else:
            lines.append(_line(s, m, float((7 * s + m) % 40)))
    store.append_lines(STREAM, lines)
    store.sync()


def _same(a, b) -> bool:
    return (a.stations, a.lo, a.hi, a.seen) == (b.stations, b.lo, b.hi, b.seen)


_rows = st.lists(st.tuples(st.integers(0, 3), st.integers(-1, 300)), min_size=0, max_size=40)


@settings(max_examples=60, deadline=None)
@given(rounds=st.lists(_rows, min_size=1, max_size=4), block=st.integers(1, 7),
       rotate=st.sampled_from([200, 600, 64 << 20]),
       asks=st.lists(st.tuples(st.sets(st.integers(0, 4), min_size=1), st.integers(-5, 310), st.integers(1, 30)),
                     min_size=1, max_size=4))
def test_property_a_recall_through_the_index_answers_as_a_full_pass(tmp_path_factory, rounds, block, rotate, asks):
    """Appends in rounds (the store rotating or not, lines in any time order, lines the readers skip),
    a scan and recalls between them through one index: every recall and scan gives what the same
    call without an index gives."""
    tmp = tmp_path_factory.mktemp("idx")
    index = StoreIndex(block)
    with JsonlStore(Path(tmp), max_bytes=rotate) as store:
        for i, rows in enumerate(rounds):
            _append(store, rows)
            if i == 0:
                assert scan_stored(store, 5, index) == scan_stored(store, 5)
            for stations, lo, limit in asks:
                wanted = {f"s{s}" for s in stations}
                start = T0 + 60 * lo
                with_index = recall_stored(store, wanted, start, limit, index)
                assert _same(with_index, recall_stored(store, wanted, start, limit))


def test_a_recall_of_the_newest_span_skips_the_older_blocks(tmp_path):
    """A store in time order: after one pass has indexed it, reading from an instant on yields
    every line from there and fewer than all of them."""
    with JsonlStore(tmp_path) as store:
        _append(store, [(s, m) for m in range(400) for s in range(3)])
        index = StoreIndex(50)
        everything = list(_records(store, index))
        assert len(everything) == 1200
        later = list(_records(store, index, Span(T0 + 60 * 350)))
        assert [r for r in everything if r[1] >= T0 + 60 * 350] == [r for r in later if r[1] >= T0 + 60 * 350]
        assert len(later) <= 150 + 50
        assert list(_records(store, index, Span(-math.inf))) == everything


def test_a_file_rewritten_in_place_is_read_again_not_skipped_by_its_old_index(tmp_path):
    """The live file replaced by other lines under the same inode (as when a deleted file's inode is
    reused): the index sees other bytes where it ended, forgets the file and reads it whole."""
    with JsonlStore(tmp_path) as store:
        _append(store, [(0, m) for m in range(100)])
        index = StoreIndex(10)
        scan_stored(store, 5, index)
    path = tmp_path / STREAM
    newer = b"".join(_line(0, 1000 + m, 1.0) + b"\n" for m in range(120))
    with path.open("r+b") as fh:  # same inode, other content, longer
        fh.write(newer)
    with JsonlStore(tmp_path) as store:
        want = recall_stored(store, {"s0"}, T0 + 60 * 1000, 500)
        got = recall_stored(store, {"s0"}, T0 + 60 * 1000, 500, index)
        assert _same(got, want) and len(got.seen["s0"]) == 120


def test_lines_appended_after_the_index_are_read_and_indexed(tmp_path):
    """What the store gained after the last pass is read (never skipped for lack of an index entry)."""
    with JsonlStore(tmp_path) as store:
        _append(store, [(0, m) for m in range(100)])
        index = StoreIndex(10)
        scan_stored(store, 5, index)
        _append(store, [(0, m) for m in range(100, 130)])
        got = recall_stored(store, {"s0"}, T0 + 60 * 120, 1000, index)
        assert sorted(got.seen["s0"]) == [T0 + 60 * m for m in range(120, 130)]
        assert _same(recall_stored(store, {"s0"}, T0, 1000, index), recall_stored(store, {"s0"}, T0, 1000))


# --- read_recent: the store's own lines parsed only when kept ---------------------------------------

def _reference_recent(store: JsonlStore, since_ts: float, stats: dict, since_of) -> list[dict]:
    """read_recent as it was before the store's lines were read by their key: every line parsed."""
    import math as _m

    from mass_tui.store import read_jsonl
    from sources.schema import parse_time

    out: list[dict] = []
    newest: dict[str, float] = {}
    for path in reversed(store.files(STREAM)):
        timed, oldest = [], None
        for record in read_jsonl(path, stats):
            try:
                ts = parse_time(record.get("ts"))
            except ValueError:
                continue
            oldest = ts if oldest is None else min(oldest, ts)
            timed.append((ts, record))
            station = record.get("station")
            if isinstance(station, str) and not ts <= newest.get(station, -_m.inf):
                newest[station] = ts
        since = {station: since_of(ts) for station, ts in newest.items()}
        out[:0] = [r for ts, r in timed if ts >= (since.get(s, since_ts) if isinstance(s := r.get("station"), str)
                                                  else since_ts)]
        if oldest is not None and oldest < since_ts:
            break
    return out


_kinds = st.sampled_from(["store", "store", "store", "other order", "no time", "bad time", "blank", "list",
                          "escaped time", "bytes in the time"])


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 500), _kinds), max_size=60),
       torn=st.booleans(), rotate=st.sampled_from([300, 64 << 20]), back=st.integers(0, 400))
def test_property_read_recent_reads_the_records_a_full_parse_reads(tmp_path_factory, rows, torn, rotate, back):
    """Lines in the store's layout and in others (keys in another order, no time, a time that is none,
    blank, not an object, the store's layout with an escape in the time), rotated or not, a torn last
    line or not: the records kept, and the skipped lines counted, are those of reading every line whole."""
    from mass_tui.store import read_recent

    tmp = tmp_path_factory.mktemp("recent")
    lines = []
    for s, m, kind in rows:
        t = iso_utc(T0 + 60 * m)
        lines.append({"store": _line(s, m, 1.5),
                      "other order": json.dumps({"station": f"s{s}", "ts": t, "temp_c": 2.0}).encode(),
                      "no time": b'{"station":"s1","temp_c":3}',
                      "bad time": b'{"ts":"not a time","station":"s2","temp_c":3}',
                      "blank": b"", "list": b"[1,2]",
                      "escaped time": _line(s, m, 4.0).replace(b'Z",', b'\\u005a",', 1),
                      "bytes in the time": _line(s, m, 4.0).replace(b'Z",', b'\xffZ",', 1)}[kind])
    with JsonlStore(Path(tmp), max_bytes=rotate) as store:
        if lines:
            store.append_lines(STREAM, lines)
        store.sync()
    if torn:
        with (Path(tmp) / STREAM).open("ab") as fh:
            fh.write(_line(0, 600, 9.0)[:-3])  # its time and station whole, the rest cut off
    with JsonlStore(Path(tmp), max_bytes=rotate) as store:
        since_of = lambda last: last - 60 * back  # noqa: E731
        newest = max((T0 + 60 * m for _, m, k in rows if k in ("store", "other order", "escaped time")), default=T0)
        want_stats: dict = {}
        got_stats: dict = {}
        want = _reference_recent(store, since_of(newest), want_stats, since_of)
        got = read_recent(store, STREAM, since_of(newest), got_stats, since_of=since_of)
    assert got == want and got_stats == want_stats


def test_a_file_sorted_in_place_with_the_same_first_and_last_bytes_is_indexed_again(tmp_path):
    """One reading of the future stored early, then the file sorted in place (same inode, size, first
    line and last bytes): every later line moved by one, across block boundaries. The blocks' marks
    (the start of each block's last line) show it; a look-up answers as a full pass."""
    def line(m: int) -> bytes:
        return (f'{{"ts":"{iso_utc(T0 + 60 * m)}","station":"s0","temp_c":1.0,'
                f'"source":"{"x" * 70}"}}').encode()

    minutes = list(range(300))
    minutes.insert(50, 12000)
    with JsonlStore(tmp_path) as store:
        store.append_lines(STREAM, [line(m) for m in minutes])
        store.sync()
        index = StoreIndex(10)
        scan_stored(store, 5, index)
    path = tmp_path / STREAM
    data = path.read_bytes()
    with path.open("r+b") as fh:
        fh.write(b"".join(sorted(data.splitlines(keepends=True))))
    assert path.read_bytes()[:64] == data[:64] and path.read_bytes()[-64:] == data[-64:]
    with JsonlStore(tmp_path) as store:
        want = recall_stored(store, {"s0"}, T0 + 60 * 209, 5)
        assert _same(recall_stored(store, {"s0"}, T0 + 60 * 209, 5, index), want)
        assert min(want.seen["s0"]) == T0 + 60 * 209
