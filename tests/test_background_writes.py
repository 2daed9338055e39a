"""A store written by a thread of its own (the writer process's `BackgroundWrites`): the same bytes
in the same order as the store written directly, and a failure raised in the caller."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.sinks.background_writes import BackgroundWrites
from mass_tui.store import JsonlStore, StoreWriteError
from tests.test_torn_and_full import _fill, _tmpfs

_names = st.sampled_from(["consumer_stream.jsonl", "anomalies.jsonl", "aggregates.jsonl"])
_line = st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\n", b" "))
_ops = st.lists(st.one_of(
    st.tuples(st.just("data"), _names, st.lists(_line, max_size=6)),
    st.tuples(st.just("lines"), _names, st.lists(_line, max_size=6)),
    st.tuples(st.just("records"), _names, st.lists(st.integers(-5, 5), max_size=4)),
    st.just(("sync",)),
), max_size=30)


def _apply(store, ops) -> None:
    for op in ops:
        if op[0] == "data":
            store.append_data(op[1], b"".join(line + b"\n" for line in op[2]))
        elif op[0] == "lines":
            store.append_lines(op[1], op[2])
        elif op[0] == "records":
            store.append(op[1], ({"n": n, "s": "x" * abs(n)} for n in op[2]))
        else:
            store.sync()


@settings(max_examples=60, deadline=None)
@given(_ops)
def test_property_background_writes_store_the_bytes_of_direct_writes(tmp_path_factory, ops):
    direct_dir, background_dir = tmp_path_factory.mktemp("direct"), tmp_path_factory.mktemp("background")
    direct = JsonlStore(direct_dir)
    _apply(direct, ops)
    direct.close()
    background = BackgroundWrites(JsonlStore(background_dir))
    _apply(background, ops)
    background.sync()
    background.close()
    names = sorted(p.name for p in direct_dir.iterdir())
    assert names == sorted(p.name for p in background_dir.iterdir())
    for name in names:
        assert (background_dir / name).read_bytes() == (direct_dir / name).read_bytes()


def test_a_full_disk_is_raised_in_the_caller_and_what_fitted_is_stored(tmp_path):
    """On a real full disk (a small tmpfs): the store holds what it cannot write, the hold grows past
    its limit in the thread, and the caller hears it at `sync`, as it would writing directly."""
    with _tmpfs(tmp_path / "db", "1m") as db:
        filler = _fill(db, 8192)
        store = BackgroundWrites(JsonlStore(db))
        line = b"x" * 65535 + b"\n"
        limit = store.MAX_HELD_BYTES  # the store's own attributes, through the wrapper
        with pytest.raises(StoreWriteError, match="No space left on device"):
            for _ in range(limit // len(line) + 8):  # bounded: past what the store may hold
                store.append_data("consumer_stream.jsonl", line)
            store.sync()
        filler.unlink()
        store.close()


def test_held_appends_reach_the_disk_after_what_was_queued_before_their_release(tmp_path):
    store = BackgroundWrites(JsonlStore(tmp_path), hold=frozenset({"consumer_stream.jsonl"}))
    store.append_lines("consumer_stream.jsonl", [b"s1"])
    store.append_lines("aggregates.jsonl", [b"a1"])
    store._queue.join()  # everything queued so far is on disk: the held line is not
    assert (tmp_path / "aggregates.jsonl").read_bytes() == b"a1\n"
    assert not (tmp_path / "consumer_stream.jsonl").exists()
    store.release()
    store.append_lines("consumer_stream.jsonl", [b"s2"])
    store.sync()  # a sync releases what is held
    assert (tmp_path / "consumer_stream.jsonl").read_bytes() == b"s1\ns2\n"
    store.close()
