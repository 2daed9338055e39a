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

