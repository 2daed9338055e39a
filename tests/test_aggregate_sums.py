"""A window's sum is its readings added one at a time in the order they came (`Rows.fold`), so it is
the same bits however the readings were split into batches: one reading at a time (the live path),
a batch at a time, or several batches aggregated together (a bulk replay's writer, whichever batches
it finds waiting). Pairwise segment sums, and a merge adding each batch's partial sum, round
differently with the split: a replay of one file could store means differing in the 6th decimal."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.aggregates import Aggregator
from mass_tui.window_columns import Rows
from mass_tui.window_stats import FIGURES
from tests.test_aggregate_shortcuts import _LABELS, _VARIABLES, _time, batches

# decimals as sensors send them, and doubles with every bit used: sums of three or more round
# differently with the order they are added in
_value = st.one_of(st.none(), st.integers(-5000, 5000).map(lambda k: k / 100),
                   st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))
_rows = st.lists(st.tuples(st.sampled_from(sorted(_LABELS)), _time,
                           st.lists(_value, min_size=len(_VARIABLES), max_size=len(_VARIABLES))),
                 min_size=1, max_size=150)


def _state(rows: list, cuts: list[int], lateness: float) -> dict:
    """Every window's figures (count, sum, min, max, their times, late) after the rows, fed in
    batches of the sizes in `cuts` (in turn): the open windows exactly, as Stats."""
    agg = Aggregator(lateness=lateness)
    for groups, ts, columns in batches(rows, cuts):
        agg.add_many(groups, _LABELS, ts, columns)
    for key in list(agg._blocks):
        agg._materialize(key)
    return {key: {start: {name: FIGURES(s) for name, s in per.items()} for start, per in windows.items()}
            for key, windows in agg._open.items() if windows}


@settings(max_examples=150, deadline=None)
@given(_rows, st.lists(st.integers(1, 150), min_size=1, max_size=5), st.booleans())
def test_property_a_windows_sum_does_not_depend_on_the_batches(rows, cuts, ordered):
    """In time order or not, windows of one reading and of many, gaps (None): the same figures,
    sums bit for bit, whether the rows came one at a time, all at once or in batches of any sizes."""
    if ordered:
        rows = sorted(rows, key=lambda r: r[1])
    lateness = 1e9  # every window stays open: its figures are compared exactly, not as stored
    whole = _state(rows, [len(rows)], lateness)
    assert _state(rows, cuts, lateness) == whole
    assert _state(rows, [1], lateness) == whole


def test_a_sum_that_pairwise_summing_rounds_otherwise():
    """Nine readings in one window: np.add.reduceat sums them pairwise (eight partial sums), which
    gives another double than adding them in order; four then five gives a third."""
    values = np.array([0.1, 0.2, 0.3, 1e16, -1e16, 0.7, 0.1, 0.2, 0.3])
    in_order = 0.0
    for v in values:
        in_order += v
    assert float(np.add.reduceat(values, [0])[0]) != in_order  # the arithmetic this replaces
    t = np.arange(9.0)
    rows = Rows(np.zeros(9), t, np.zeros(9, dtype=bool), True)
    assert rows.fold(values).tolist() == [in_order]
    first = Rows(np.zeros(4), t[:4], np.zeros(4, dtype=bool), True).fold(values[:4])
    assert Rows(np.zeros(5), t[4:], np.zeros(5, dtype=bool), True).fold(values[4:], first).tolist() == [in_order]


def test_fold_takes_series_as_rows_and_windows_out_of_order():
    """A matrix (series x rows) folds each series alone; rows out of time order fold per window in
    row order, the windows in ascending order as `Rows.stats` lists them."""
    values = np.array([[1.5, 2.25, 4.0, 8.0], [0.1, 0.2, 0.3, 0.4]])
    bucket = np.array([3.0, 1.0, 3.0, 1.0])
    rows = Rows(bucket, bucket * 60.0, np.zeros(4, dtype=bool), False)
    got = rows.fold(values, np.array([[10.0, 20.0], [0.0, math.pi]]))
    assert got.tolist() == [[10.0 + 2.25 + 8.0, 20.0 + 1.5 + 4.0], [0.0 + 0.2 + 0.4, math.pi + 0.1 + 0.3]]
    assert rows.stats(values[0])[0].tolist() == [1.0, 3.0]
