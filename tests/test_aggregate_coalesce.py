"""A bulk replay aggregates several batches at once (`AggregateSink(coalesce_rows=...)`): the windows
stored are the ones batch-by-batch aggregation stores; only which line holds a window changes."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mass_tui.aggregates import Aggregator, decode
from mass_tui.scored import BatchResult
from mass_tui.sinks.aggregates import AGGREGATES, AggregateSink
from mass_tui.store import JsonlStore
from sources.batch import ObservationBatch
from sources.schema import iso_utc
from tests.test_aggregate_shortcuts import _LABELS, _VARIABLES, T0, _rows


def _batches(rows: list, cuts: list[int]) -> list[ObservationBatch]:
    out = []
    i = k = 0
    while i < len(rows):
        part = rows[i:i + cuts[k % len(cuts)]]
        columns = {name: np.array([np.nan if v[j] is None else v[j] for _s, _t, v in part])
                   for j, name in enumerate(_VARIABLES)}
        tags = [dict(_LABELS[s]) for s, _t, _v in part]
        out.append(ObservationBatch(np.array([T0 + t for _s, t, _v in part]), [s for s, _t, _v in part],
                                    ["test"] * len(part), columns, tags=tags))
        i, k = i + len(part), k + 1
    return out


def _windows(tmp, batches: list[ObservationBatch], coalesce: int, sync_after: int | None,
             idle: tuple[bool, ...] = ()) -> tuple:
    store = JsonlStore(tmp, max_bytes=1 << 30)
    sink = AggregateSink(store, Aggregator(lateness=3600.0), restore=False, coalesce_rows=coalesce)
    for k, batch in enumerate(batches):
        sink.write(BatchResult(batch, [], 0))
        if sync_after is not None and k == sync_after:
            sink.sync()  # what is synced is stored: nothing held back past a sync
        if idle and idle[k % len(idle)]:
            sink.aggregate_pending()  # the writer process found its inbox empty
    sink.close()
    store.close()
    lines = (tmp / AGGREGATES).read_bytes().splitlines() if (tmp / AGGREGATES).exists() else []
    records = decode(lines)
    key = lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS)  # noqa: E731
    late = sink.summary()
    return sorted(map(key, records)), late["late"], late["too_late"]


@settings(max_examples=100, deadline=None)
@given(_rows, st.lists(st.integers(1, 60), min_size=1, max_size=4), st.integers(1, 200), st.booleans(),
       st.one_of(st.none(), st.integers(0, 5)), st.lists(st.booleans(), max_size=5).map(tuple))
# 0.0 then -0.0 at one instant: one by one the window keeps the first (a merge takes only a smaller
# value); two rows reduced together gave -0.0 for both min and max (numpy's minimum/maximum of a tie)
@example(rows=[("a", 0, [None, None, None]), ("a", 0, [None, None, None]), ("b", 0, [None, None, 0.0]),
               ("b", 0, [None, None, -0.0])], cuts=[1], coalesce=2, ordered=False, sync_after=None, idle=())
def test_property_coalesced_batches_store_the_same_windows(tmp_path_factory, rows, cuts, coalesce, ordered,
                                                            sync_after, idle):
    """Batches aggregated together, and (`idle`) whatever is held back aggregated early between
    batches, as the writer process does when nothing waits in its inbox."""
    if ordered:
        rows = sorted(rows, key=lambda r: r[1])
    batches = _batches(rows, cuts)
    one_by_one = _windows(tmp_path_factory.mktemp("plain"), batches, 0, sync_after)
    assert _windows(tmp_path_factory.mktemp("coalesced"), batches, coalesce, sync_after, idle) == one_by_one


def test_a_sync_writes_what_was_held_back(tmp_path):
    store = JsonlStore(tmp_path, max_bytes=1 << 30)
    sink = AggregateSink(store, Aggregator(lateness=0.0), restore=False, coalesce_rows=1000)
    times = T0 + 60.0 * np.arange(10)  # ten 1-minute windows, nine of them closed by the next reading
    sink.write(BatchResult(ObservationBatch(times, ["a"] * 10, ["test"] * 10, {"temp_c": np.arange(10.0)}),
                           [], 0))
    assert not (tmp_path / AGGREGATES).exists() or not (tmp_path / AGGREGATES).read_bytes()
    sink.sync()
    minutes = [r for r in decode((tmp_path / AGGREGATES).read_bytes().splitlines()) if r.get("window") == "1m"]
    assert sorted(r["ts"] for r in minutes) == [iso_utc(T0 + 60.0 * i) for i in range(9)]


def test_a_station_whose_labels_change_is_grouped_as_batch_by_batch_whatever_is_aggregated_together(tmp_path):
    """Its floor changes from one batch to the next: the rows before take the old floor, as batch by
    batch, whether the writer aggregated between the batches (idle) or held both (review repro)."""

    def one(t: float, floor: str) -> ObservationBatch:
        return ObservationBatch(np.array([T0 + t]), ["x"], ["test"], {"temp_c": np.array([20.0 + t])},
                                tags=[{"building": "b1", "floor": floor}])

    def floors(name: str, coalesce: int, idle: bool) -> list:
        store = JsonlStore(tmp_path / name, max_bytes=1 << 30)
        sink = AggregateSink(store, Aggregator(lateness=0.0), restore=False, coalesce_rows=coalesce)
        sink.write(BatchResult(one(0, "1"), [], 0))
        if idle:
            sink.aggregate_pending()
        sink.write(BatchResult(one(10, "2"), [], 0))
        sink.close()
        store.close()
        return sorted((r["key"], r["count"]) for r in decode((tmp_path / name / AGGREGATES).read_bytes().splitlines())
                      if r.get("scope") == "building+floor" and r.get("window") == "1m")

    batch_by_batch = floors("plain", 0, False)
    assert batch_by_batch == [("b1/1", 1), ("b1/2", 1)]
    assert floors("held", 1 << 16, False) == batch_by_batch
    assert floors("idle", 1 << 16, True) == batch_by_batch
