"""The faster paths of batch scoring give the numbers of the plain ones, bit for bit.

Each fast path is checked against a path that does not share its shortcut: the CUSUM's guessed
segments and its rows in lockstep against one value at a time, the relation view laid out by block
against small batches and one row at a time, the daily profiles' sums of hourly readings against
one reading at a time.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.cusum import _BLOCK, _GUESS_EVERY, Cusum
from detectors.relation import _BLOCKWISE_ROWS, BLOCK, RelationModel
from detectors.seasonal import DailyProfile, step_profiles


def _rainy(rng: np.random.Generator, n: int, every: int) -> np.ndarray:
    """z of a rain gauge: near 0, with a burst every `every` readings or so (one or a few values far
    past h + k, then some moderate ones that may or may not alarm)."""
    z = rng.normal(0.0, 0.3, n)
    at = 0
    while True:
        at += int(rng.integers(1, 2 * every))
        if at >= n:
            break
        z[at : at + int(rng.integers(1, 4))] = rng.choice([-1.0, 1.0]) * rng.uniform(6.0, 40.0)
        z[at + 4 : at + 4 + int(rng.integers(0, 12))] += rng.uniform(-2.5, 2.5)
    return z


def _detail(det: Cusum) -> np.ndarray:
    return np.array([det.detail[key] for key in ("up", "down", "alarm")]).reshape(3, -1)


def _state(det: Cusum) -> tuple:
    return det._start, det._seg, det._pos


def cusum_three_ways(z: np.ndarray, cuts: list[int], k: float) -> tuple:
    """A CUSUM (h 4, window 16) over standardised values `z` (count 16, mean 0, variance 1) run
    whole, one value at a time and in `cuts`: (the whole run's and the cut run's detectors,
    [scores whole, one at a time, in cuts], [S+/S-/alarm detail likewise]), each one array."""
    n = z.size
    count, mean, var = np.full(n, 16.0), np.zeros(n), np.ones(n)
    whole = Cusum(k=k, h=4.0, window=16, moments=False)
    want = whole.score_from(z, count, mean, var)
    one = Cusum(k=k, h=4.0, window=16, moments=False)
    got, got_detail = [], []
    for v in z:
        got.append(one.score_one_from(float(v), 16.0, 0.0, 1.0))
        got_detail.append(_detail(one))
    parts, i, c = Cusum(k=k, h=4.0, window=16, moments=False), 0, 0
    cut, cut_detail = [], []
    while i < n:
        m = cuts[c % len(cuts)]
        cut.append(parts.score_from(z[i : i + m], count[i : i + m], mean[i : i + m], var[i : i + m]))
        cut_detail.append(_detail(parts))
        i, c = i + m, c + 1
    return (whole, parts, [want, np.array(got), np.concatenate(cut)],
            [_detail(whole), np.hstack(got_detail), np.hstack(cut_detail)])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), every=st.sampled_from([3, 20, 60, 200]),
       cuts=st.lists(st.integers(1, 3000), min_size=1, max_size=6), k=st.sampled_from([0.5, 1.0, 0.0]))
def test_cusum_guessed_segments_are_the_recursion_one_value_at_a_time(seed, every, cuts, k):
    """Frequent alarms (the CUSUM guesses the segments between them, `_after_alarms`): a batch, any
    cuts and one value at a time give the same S+, S-, alarms and state."""
    rng = np.random.default_rng(seed)
    n = 4 * _BLOCK + 300
    z = _rainy(rng, n, every)
    if every <= 60 and k:
        assert np.count_nonzero(np.abs(z) - k > 4.0) >= n // _GUESS_EVERY  # the guessing path runs
    whole, parts, (want, got, cut), (detail, got_detail, cut_detail) = cusum_three_ways(z, cuts, k)
    assert np.array_equal(want, got) and np.array_equal(want, cut)
    assert np.array_equal(detail, got_detail) and np.array_equal(detail, cut_detail)
    assert _state(whole) == _state(parts)  # (one value at a time keeps its running minimum unclipped)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(2, 6), lead=st.integers(0, 1500),
       cuts=st.lists(st.integers(1, 2500), min_size=1, max_size=6), k=st.sampled_from([0.5, 0.0]))
def test_cusum_rows_in_lockstep_equal_each_alone(seed, size, lead, cuts, k):
    """Several CUSUMs at the same position step together (`Cusum._cusum_rows`), quiet ones and ones
    that alarm often side by side: each row's scores, detail and state are its own step's."""
    rng = np.random.default_rng(seed)
    n = lead + 3 * _BLOCK
    z = np.stack([_rainy(rng, n, int(rng.choice([5, 50, 400, 10**9]))) for _ in range(size)])
    count, var = np.full(n, 16.0), np.ones((size, n))
    mean = np.zeros((size, n))
    alone = [Cusum(k=k, h=4.0, window=16, moments=False) for _ in range(size)]
    together = [Cusum(k=k, h=4.0, window=16, moments=False) for _ in range(size)]
    i, c = 0, 0
    while i < n:
        part = slice(i, min(i + (lead if c == 0 and lead else cuts[c % len(cuts)]), n))
        want = [det.score_from(z[v, part], count[part], mean[v, part], var[v, part]) for v, det in enumerate(alone)]
        got = Cusum.score_rows(together, z[:, part], count[part], mean[:, part], var[:, part])
        for v in range(size):
            assert np.array_equal(got[v], want[v])
            assert np.array_equal(_detail(together[v]), _detail(alone[v]))
            assert _state(together[v]) == _state(alone[v])
        i, c = part.stop, c + 1


def _related(rng: np.random.Generator, n: int, p: int) -> np.ndarray:
    rows = rng.normal(size=(n, 1)) @ rng.normal(size=(1, p)) + 0.3 * rng.normal(size=(n, p))
    rows[rng.random(n) < 0.01, int(rng.integers(0, p))] += 9.0  # rows that break the relation
    return rows + rng.uniform(-100, 100, p)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.integers(2, 7), lead=st.integers(0, 3 * BLOCK),
       cuts=st.lists(st.integers(1, 2 * BLOCK - 1), min_size=1, max_size=8))
def test_relation_by_block_equals_small_batches_and_one_row_at_a_time(seed, p, lead, cuts):
    """A batch long enough to be laid out by block (`RelationModel._score_blocks`), from any position
    in a block, scores as batches too short for it and as rows one at a time do."""
    rng = np.random.default_rng(seed)
    n = lead + _BLOCKWISE_ROWS + 3 * BLOCK + 17
    rows = _related(rng, n, p)
    names = tuple(f"v{i}" for i in range(p))
    long, small, one = RelationModel(names), RelationModel(names), RelationModel(names)
    got: list[list[np.ndarray]] = [[], [], []]
    for part in (slice(0, lead), slice(lead, n)):  # the long batch starts `lead` rows into the stream
        for j, out in enumerate(long.step(rows[part])):
            got[j].append(out)
    want: list[list[np.ndarray]] = [[], [], []]
    i = c = 0
    while i < n:
        m = cuts[c % len(cuts)]
        for j, out in enumerate(small.step(rows[i : i + m])):
            want[j].append(out)
        i, c = i + m, c + 1
    pushed = [one.push(rows[i].tolist()) for i in range(n)]
    for j in range(3):
        a, b = np.concatenate(got[j]), np.concatenate(want[j])
        assert np.array_equal(a, b, equal_nan=True) and a.dtype == b.dtype
        assert np.array_equal(a, [row[j] for row in pushed], equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(1, 4), step=st.sampled_from([1800.0, 3600.0, 5400.0]),
       cuts=st.lists(st.integers(30, 2000), min_size=1, max_size=6))
def test_daily_profiles_of_sparse_readings_equal_one_reading_at_a_time(seed, size, step, cuts):
    """Readings half an hour or more apart put at most one value in a half hour of a day (the sums
    are then set, not added up): batches give each profile the offsets and the state of one
    reading at a time, signed zeros in the readings included."""
    rng = np.random.default_rng(seed)
    n = 4000
    t = 1736121600.0 + np.cumsum(rng.integers(1, 3, n)) * step
    x = np.round(np.sin(2 * np.pi * t / 86400)[None, :] * rng.uniform(0.5, 5, (size, 1))
                 + rng.normal(0, 0.3, (size, n)), 1)
    x[rng.random((size, n)) < 0.05] = -0.0
    together = [DailyProfile() for _ in range(size)]
    one = [DailyProfile() for _ in range(size)]
    got, i, c = [], 0, 0
    while i < n:
        part = slice(i, min(n, i + cuts[c % len(cuts)]))
        got.append(step_profiles(together, x[:, part], t[part]))
        i, c = part.stop, c + 1
    want = np.array([[prof.push(float(v), float(tt)) for v, tt in zip(x[r], t, strict=True)]
                     for r, prof in enumerate(one)])
    assert np.array_equal(np.concatenate(got, axis=1), want)
    for a, b in zip(together, one, strict=True):
        assert a._day == b._day and a._days == b._days and a._r2 == b._r2 and a._weight == b._weight
        assert np.array_equal(a._profile, b._profile) and np.array_equal(a._sum, b._sum)
        assert np.array_equal(np.signbit(a._sum), np.signbit(b._sum))
