"""One absurd reading (NaN, an infinity, a magnitude past any physical range, a time that is no time)
must not poison a detector: the other readings score as if it were a missing row, in the batch, the
chunked and the one-value-at-a-time paths, and in the daily profile on its own."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors._blocks import MAX_ABS
from detectors.seasonal import DailyProfile
from sources.variables import REGISTRY

from .test_detectors import FACTORIES, _times

ABSURD = st.sampled_from([1e308, -1e308, math.inf, -math.inf, math.nan, 1.5e12, -3e15, 1e200])
series = st.lists(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), min_size=2, max_size=300)


def test_the_detector_bound_is_the_registry_s_widest_physical_range():
    assert max(max(abs(v.low), abs(v.high)) for v in REGISTRY.values()) == MAX_ABS


def _insert(x: np.ndarray, t: np.ndarray, at: int, value: float, when: float | None = None):
    """x and t with one reading inserted before position `at` (its time between its neighbours')."""
    before = t[at - 1] if at > 0 else t[0] - 60.0
    tt = (before + t[at]) / 2.0 if when is None else when
    return np.insert(x, at, value), np.insert(t, at, tt)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=40, deadline=None)
@given(xs=series, absurd=ABSURD, where=st.floats(0, 1), seed=st.integers(0, 1000), one_by_one=st.booleans())
def test_one_absurd_value_changes_the_others_no_more_than_a_missing_row(name, xs, absurd, where, seed, one_by_one):
    x = np.array(xs)
    t = _times(x.size, seed)
    at = int(where * (x.size - 1))
    xa, ta = _insert(x, t, at, absurd)
    xm, _ = _insert(x, t, at, math.nan)  # the same row, missing

    def run(values: np.ndarray, times: np.ndarray) -> np.ndarray:
        det = FACTORIES[name]()
        if one_by_one:  # the streaming path: one value per call
            return np.array([det.step_one(float(v), float(s)) for v, s in zip(values, times, strict=True)])
        return det.step(values, times)

    with np.errstate(over="raise", invalid="raise"):  # no overflow, no invalid operation
        with_absurd = run(xa, ta)
    missing = run(xm, ta)
    assert math.isnan(with_absurd[at])
    assert np.array_equal(np.delete(with_absurd, at), np.delete(missing, at), equal_nan=True)


@pytest.mark.parametrize("name", ["ensemble", "calibrated", "zscore"])
@settings(max_examples=30, deadline=None)
@given(xs=series, bad_t=st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300]),
       where=st.floats(0, 1), seed=st.integers(0, 1000))
def test_a_reading_at_no_time_is_a_missing_row(name, xs, bad_t, where, seed):
    x = np.array(xs)
    t = _times(x.size, seed)
    at = int(where * (x.size - 1))
    xa, ta = _insert(x, t, at, 5.0, when=bad_t)
    xm, _ = _insert(x, t, at, math.nan, when=bad_t)
    with np.errstate(over="raise", invalid="raise"):
        got = FACTORIES[name]().step(xa, ta)
    assert math.isnan(got[at])
    assert np.array_equal(np.delete(got, at), np.delete(FACTORIES[name]().step(xm, ta), at), equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(xs=series, absurd=ABSURD, bad_t=st.sampled_from([None, math.nan, 1e300]), where=st.floats(0, 1),
       seed=st.integers(0, 1000))
def test_the_daily_profile_skips_an_unusable_reading_in_batch_and_push(xs, absurd, bad_t, where, seed):
    x = np.array(xs)
    t = _times(x.size, seed)
    at = int(where * (x.size - 1))
    xa, ta = _insert(x, t, at, absurd, when=bad_t)
    clean = DailyProfile().step(x, t)
    batch = DailyProfile().step(xa, ta)
    pushed = DailyProfile()
    one = np.array([pushed.push(float(v), float(s)) for v, s in zip(xa, ta, strict=True)])
    for got in (batch, one):
        assert np.array_equal(np.delete(got, at), clean)
        # the skipped reading gets the offset in force before it
        assert got[at] == (clean[at - 1] if at > 0 else 0.0)
