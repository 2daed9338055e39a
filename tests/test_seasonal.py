"""Daily profiles: working mornings stop alarming; a series without a rhythm is left as it is."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.ensemble import Ensemble, EnsembleParams
from detectors.seasonal import DailyProfile, day_type, gaps_fit, step_profiles
from detectors.series import SeriesModel

MONDAY = 1736121600.0  # 2025-01-06T00:00Z
P = EnsembleParams()


def _building_energy(days: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """kWh per 5 minutes: 0.04 at night and weekends, a step to 0.09 from 08:00 to 18:00 on weekdays."""
    rng = np.random.default_rng(seed)
    t = MONDAY + np.arange(days * 288) * 300.0
    hour = (t % 86400) / 3600
    weekday = np.array([day_type(int(d)) == 0 for d in np.floor(t / 86400)])
    busy = weekday & (hour >= 8) & (hour < 18)
    return t, 0.04 + 0.05 * busy + rng.normal(0, 0.0025, t.size)


def test_day_types():
    assert day_type(int(MONDAY // 86400)) == 0
    assert day_type(int(MONDAY // 86400) + 5) == 1 and day_type(int(MONDAY // 86400) + 6) == 1


def test_working_mornings_stop_alarming_once_the_profile_is_learned():
    t, x = _building_energy(21)
    model = SeriesModel(Ensemble(P), P.alarm_rarity, P.episode_quiet, P.level_window, P.learning_hours * 3600)
    model.step(x, t)
    announced = t[model.detail["flags"] > 0]
    assert announced.size == 0, [f"day {int((a - MONDAY) // 86400)} {(a % 86400) / 3600:.1f} h" for a in announced]
    w_weekday, w_weekend = model.raw.seasonal.weight
    assert w_weekday == 1.0
    # without the profile, the same detector announces working mornings
    plain = SeriesModel(Ensemble(P), P.alarm_rarity, P.episode_quiet, P.level_window, P.learning_hours * 3600)
    plain.step(x, None)
    assert (plain.detail["flags"] > 0).sum() >= 3


def test_a_spike_at_the_busy_hour_is_still_caught():
    t, x = _building_energy(14, seed=1)
    at = 288 * 9 + 8 * 12 + 30  # Wednesday of the second week, 10:30
    x[at] *= 4.0
    model = SeriesModel(Ensemble(P), P.alarm_rarity, P.episode_quiet, P.level_window, P.learning_hours * 3600)
    model.step(x, t)
    assert model.detail["flags"][at] == 1


def test_white_noise_gets_no_profile():
    rng = np.random.default_rng(2)
    t = MONDAY + np.arange(288 * 14) * 300.0
    profile = DailyProfile()
    offset = profile.step(rng.normal(0, 1, t.size), t)
    assert profile.weight == (0.0, 0.0)
    assert np.all(offset == 0.0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 500), min_size=1, max_size=30),
       step=st.sampled_from([60.0, 300.0, 3600.0]))
def test_profile_streaming_equals_batch(seed, cuts, step):
    rng = np.random.default_rng(seed)
    n = 3000
    t = MONDAY + np.cumsum(rng.integers(1, 3, n)) * step
    x = np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.3, n)
    whole = DailyProfile().step(x, t)
    prof = DailyProfile()
    parts, i, k = [], 0, 0
    while i < n:
        m = cuts[k % len(cuts)]
        one = np.array([prof.push(float(x[i]), float(t[i]))]) if m == 1 else None
        parts.append(prof.step(x[i : i + m], t[i : i + m]) if one is None else one)
        i, k = i + m, k + 1
    assert np.array_equal(whole, np.concatenate(parts))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 700), min_size=1, max_size=30),
       step=st.sampled_from([600.0, 3600.0, 7200.0]))
def test_profile_streaming_equals_batch_with_gaps_sparse_days_and_a_clock_stepping_back(seed, cuts, step):
    """Batches of many days (folded together) against one value at a time: the same offsets and
    the same learned state, with days too sparse to learn from and times that go back."""
    rng = np.random.default_rng(seed)
    n = 3000
    dt = rng.integers(0, 4, n) * step - (rng.random(n) < 0.03) * 3 * step
    t = MONDAY + np.cumsum(dt)
    x = 5 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.3, n)
    whole = DailyProfile()
    want = whole.step(x, t)
    prof = DailyProfile()
    parts, i, k = [], 0, 0
    while i < n:
        m = cuts[k % len(cuts)]
        parts.append(np.array([prof.push(float(x[i]), float(t[i]))]) if m == 1 else prof.step(x[i:i + m], t[i:i + m]))
        i, k = i + m, k + 1
    assert np.array_equal(want, np.concatenate(parts))
    assert np.array_equal(whole._profile, prof._profile) and whole.weight == prof.weight
    assert whole._days == prof._days and sum(whole._days) > 0


def _state(p: DailyProfile) -> tuple:
    arrays = tuple(None if a is None else a.tolist() for a in (p._sum, p._sumsq, p._count, p._profile))
    return (p._day, p._days, p._r2, p._weight, p._level, p._hold, p._last, arrays)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(1, 6), cuts=st.lists(st.integers(2, 900), min_size=1, max_size=12),
       step=st.sampled_from([300.0, 3600.0, 7200.0]), lead=st.lists(st.integers(0, 400), min_size=6, max_size=6))
def test_profiles_stepped_together_equal_each_alone(seed, size, cuts, step, lead):
    """step_profiles (the station's series at once) gives each profile the offsets and the state its
    own step gives, whatever each learned before (here: from a different number of earlier days)."""
    rng = np.random.default_rng(seed)
    n = 2500
    t = MONDAY + np.cumsum(rng.integers(0, 3, n) * step - (rng.random(n) < 0.02) * 2 * step)
    x = (rng.uniform(-50, 50, size)[:, None] * np.sin(2 * np.pi * t / 86400)[None, :]
         + rng.normal(0, 1, (size, n)) + rng.uniform(-1000, 1000, size)[:, None])
    start = 600
    alone = [DailyProfile() for _ in range(size)]
    together = [DailyProfile() for _ in range(size)]
    for v in range(size):  # each learns from its own stretch before `start`, so their states differ
        for prof in (alone[v], together[v]):
            prof.step(x[v, lead[v] : start], t[lead[v] : start])
    i, k = start, 0
    while i < n:
        m = cuts[k % len(cuts)]
        part = slice(i, min(i + m, n))
        want = np.stack([alone[v].step(x[v, part], t[part]) for v in range(size)])
        by_day: dict = {}
        for v in range(size):
            by_day.setdefault(together[v].day, []).append(v)
        got = np.empty_like(want)
        for members in by_day.values():
            got[members] = step_profiles([together[v] for v in members], x[members, part], t[part])
        assert np.array_equal(want, got)
        i, k = i + m, k + 1
    assert [_state(p) for p in alone] == [_state(p) for p in together]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(1, 6), cuts=st.lists(st.integers(2, 900), min_size=1, max_size=8),
       step=st.sampled_from([300.0, 1800.0, 3600.0]), gaps=st.sampled_from([0.0, 0.01, 0.2, 0.9]),
       lead=st.lists(st.integers(0, 400), min_size=6, max_size=6))
def test_profiles_with_gaps_stepped_together_equal_each_alone(seed, size, cuts, step, gaps, lead):
    """step_profiles with each series' rows (`present`: series with gaps in the station's times, as
    DetectorBank.step_many steps them) gives each profile, at its own rows, the offsets and the state
    its own step over those rows gives; a series that does not fit (gaps_fit) steps alone."""
    rng = np.random.default_rng(seed)
    n = 2500
    t = MONDAY + np.cumsum(rng.integers(0, 3, n) * step)  # rising, some times repeated
    x = (rng.uniform(-50, 50, size)[:, None] * np.sin(2 * np.pi * t / 86400)[None, :]
         + np.round(rng.normal(0, 1, (size, n)), 1) + rng.uniform(-1000, 1000, size)[:, None])
    x[rng.random((size, n)) < 0.03] = -0.0
    has = rng.random((size, n)) >= gaps * rng.random(size)[:, None]  # each series its own share of gaps
    has[0] = True  # one series full
    if size > 2:  # and one that misses whole days
        has[-1] &= (np.floor(t / 86400) % 5 != 2)
    start = 600
    alone = [DailyProfile() for _ in range(size)]
    together = [DailyProfile() for _ in range(size)]
    for v in range(size):  # each learns from its own stretch before `start`, so their states differ
        for prof in (alone[v], together[v]):
            rows = np.flatnonzero(has[v, lead[v] : start]) + lead[v]
            prof.step(x[v, rows], t[rows])
    i, k, grouped = start, 0, 0
    while i < n:
        part = slice(i, min(i + cuts[k % len(cuts)], n))
        tp, here = t[part], has[:, part]
        live = [v for v in range(size) if here[v].any()]
        want = {v: alone[v].step(x[v, part][here[v]], tp[here[v]]) for v in live}
        got = {}
        by_day: dict = {}
        for v in live:
            by_day.setdefault(together[v].day, []).append(v)
        for day, members in by_day.items():
            fit = gaps_fit(tp, day, here[members])
            for v in [v for v, ok in zip(members, fit, strict=True) if not ok]:
                got[v] = together[v].step(x[v, part][here[v]], tp[here[v]])
            members = [v for v, ok in zip(members, fit, strict=True) if ok]
            if members:
                offsets = step_profiles([together[v] for v in members], np.where(here[members], x[members, part], 7.5),
                                        tp, here[members])
                for v, offset in zip(members, offsets, strict=True):
                    got[v] = offset[here[v]]
                grouped += len(members) > 1
        for v in live:
            assert np.array_equal(want[v], got[v])
        i, k = part.stop, k + 1
    assert [_state(p) for p in alone] == [_state(p) for p in together]
    # series with gaps stepped with others (in all but contrived cases: an empty day in most batches)
    assert grouped or size == 1 or gaps > 0.2


def test_gaps_fit_needs_rising_times_and_a_value_in_every_day():
    t = MONDAY + np.arange(96) * 3600.0  # four days
    every = np.ones(96, dtype=bool)
    some = every.copy()
    some[::2] = False
    no_day_two = every.copy()
    no_day_two[48:72] = False
    assert gaps_fit(t, None, np.stack([every, some, no_day_two])).tolist() == [True, True, False]
    back = t.copy()
    back[50] -= 7200.0  # a clock that steps back
    assert gaps_fit(back, None, np.stack([every, some])).tolist() == [False, False]
    # readings of an earlier day count in the day being accumulated
    assert gaps_fit(t, int(MONDAY // 86400) + 1, np.stack([every, no_day_two])).tolist() == [True, False]
