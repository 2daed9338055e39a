"""The window-column fast paths against their plain forms, bit for bit (so -0.0 is not 0.0):
`Rows.stats_of` (series computed together, windows of equal row counts by argmin/argmax) against
`Rows.stats` of each series without shortcuts, `window_lines` against `window_line` per series,
`Dumps` (arrays dumped once by identity and by content) against orjson, `member` against np.isin,
and a group's rows found by station lookup against the sorted concatenation (the plain path)."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.aggregates import Aggregator
from mass_tui.sinks.aggregates import _by_station_rows
from mass_tui.window_columns import ROWS, Dumps, Rows, member, window_line, window_lines

_NAMES = ["temp_c", "precip_mm", "pressure_hpa"]
# Few distinct values: ties within a window (the earliest time wins), zeros of both signs.
_value = st.sampled_from([-2.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.675, 1e-7, 1e300])


@st.composite
def _windows(draw):
    """Rows in time order in windows of `width` s: each window k rows (the regular case) or any
    count; several rows may share a time. Returns (bucket, t, values series x rows)."""
    width = draw(st.sampled_from([60.0, 3600.0]))
    n_windows = draw(st.integers(1, 12))
    shape = draw(st.sampled_from(["equal", "moved", "any"]))
    k = draw(st.integers(1, 9))
    counts = [k] * n_windows
    if shape == "moved" and n_windows > 1 and k > 1:  # as many rows as k per window, not k in each
        give, take = draw(st.permutations(range(n_windows)))[:2]
        counts[give] -= 1
        counts[take] += 1
    elif shape == "any":
        counts = draw(st.lists(st.integers(1, 9), min_size=n_windows, max_size=n_windows))
    first = draw(st.integers(0, 10_000))
    t = []
    for w, c in enumerate(counts):
        offsets = sorted(draw(st.lists(st.integers(0, int(width) - 1), min_size=c, max_size=c)))
        t += [(first + w) * width + o for o in offsets]
    t_arr = np.array(t, dtype=np.float64) + 1_700_000_000 // width * width
    values = np.array(draw(st.lists(st.lists(_value, min_size=len(t), max_size=len(t)),
                                    min_size=len(_NAMES), max_size=len(_NAMES))), dtype=np.float64)
    if draw(st.booleans()):  # no -0.0 (the regular windows' shortcut takes only those)
        values += 0.0
    return np.floor(t_arr / width), t_arr, values, width


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        a, b = a.astype(np.float64), b.astype(np.float64)
        return a.shape == b.shape and a.tobytes() == b.tobytes()
    return a.shape == b.shape and bool(np.array_equal(a, b))


@settings(max_examples=300, deadline=None)
@given(_windows())
def test_property_stats_together_are_each_series_plain_stats_bit_for_bit(case):
    bucket, t, values, _width = case
    late = np.zeros(len(t), dtype=bool)
    together = Rows(bucket, t, late, True).stats_of(_NAMES, values)
    for name, v in zip(_NAMES, values, strict=True):
        plain = Rows(bucket, t, late, False, shortcuts=False).stats(v)
        assert all(_same(x, y) for x, y in zip(together[name], plain, strict=True)), name
    plain_rows = Rows(bucket, t, late, False, shortcuts=False).stats(np.zeros(len(t)))
    assert all(_same(x, y) for x, y in zip(together[ROWS], plain_rows, strict=True))


@settings(max_examples=300, deadline=None)
@given(_windows(), st.booleans())
def test_property_window_lines_are_window_line_per_series(case, final):
    bucket, t, values, width = case
    rows = Rows(bucket, t, np.zeros(len(t), dtype=bool), True)
    per_series = rows.stats_of(_NAMES, values)
    assert rows.matrices is not None
    scope = ("building+floor", "b1/2")
    got = window_lines(scope, "1m", width, _NAMES, rows.matrices, final, Dumps())
    alone = Dumps()
    want = [window_line(scope, "1m", width, name, per_series[name], final, alone) for name in _NAMES]
    assert [b"".join(g) for g in got] == [b"".join(w) if isinstance(w, list) else w for w in want]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_value, min_size=0, max_size=6), min_size=1, max_size=12))
def test_property_dumps_writes_each_array_as_orjson_does(arrays):
    """Arrays equal but for the sign of a zero, of one length, sharing ends: never confused."""
    dumps = Dumps()
    made = [np.array(a, dtype=np.float64) for a in arrays]
    for a in made + made[::-1]:
        assert dumps(a) == orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)


@given(st.lists(st.integers(-5, 5), max_size=30), st.lists(st.integers(-5, 5), max_size=8))
def test_property_member_is_isin(values, known):
    v, k = np.array(values, dtype=np.int64), np.array(known, dtype=np.int64)
    assert np.array_equal(member(v, k), np.isin(v, k))


# no -0.0 here: where a window's min is a zero of either sign, which one the block path and the
# plain path keep differs (before these shortcuts too); the group's rows are the point here
_signless = st.sampled_from([-2.0, 0.0, 0.5, 1.0, 2.675])

_LABELS = {"a": {"building": "b1", "floor": "1"}, "b": {"building": "b1", "floor": "1"},
           "c": {"building": "b1", "floor": "2"}, "d": {}}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(_LABELS)), st.integers(0, 7200),
                          st.one_of(st.none(), _signless)), min_size=2, max_size=80),
       st.sampled_from([0.0, 3600.0]))
def test_property_group_rows_by_lookup_are_the_sorted_concatenation(rows, lateness):
    """A group scope's rows found by each row's station (the shortcut) are those of the sorted
    concatenation of its stations' rows (what `_shortcuts=False` does): the same lines."""
    rows = sorted(rows, key=lambda r: r[1])
    ts = 1_700_000_000.0 + np.array([t for _s, t, _v in rows], dtype=np.float64)
    columns = {"temp_c": np.array([np.nan if v is None else v for _s, _t, v in rows]),
               "pressure_hpa": np.array([1000.0 + i for i in range(len(rows))])}
    groups = _by_station_rows([s for s, _t, _v in rows])
    out = []
    for flag in (True, False):
        agg = Aggregator(lateness=lateness)
        agg._shortcuts = flag
        lines = agg.add_many(groups, _LABELS, ts, columns) + agg.flush()
        out.append(sorted(orjson.dumps(r) for line in lines for r in _records(line)))
    assert out[0] == out[1]


def _records(line: bytes) -> list:
    from mass_tui.aggregates import expand

    return [dict(sorted(r.items())) for r in expand(orjson.loads(line))]



def test_group_rows_of_stations_sharing_rows_take_the_sorted_concatenation():
    """Stations whose row lists overlap (not what the sink passes, but `add_many` takes it): the
    lookup does not apply, and the group's rows are the sorted concatenation, repeats and all."""
    ts = 1_700_000_000.0 + np.arange(6, dtype=np.float64) * 20
    columns = {"temp_c": np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])}
    rows = {"a": np.array([0, 1, 2, 3]), "b": np.array([2, 3, 4, 5])}
    out = []
    for flag in (True, False):
        agg = Aggregator()
        agg._shortcuts = flag
        lines = agg.add_many(rows, _LABELS, ts, columns) + agg.flush()
        out.append(sorted(orjson.dumps(r) for line in lines for r in _records(line)))
    assert out[0] == out[1]
    days = [r for r in map(orjson.loads, out[0]) if r["scope"] == "building+floor" and r["window"] == "1d"]
    assert [r["count"] for r in days] == [8]
