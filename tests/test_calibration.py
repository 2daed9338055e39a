"""Calibrated scores: the same meaning on every series, streaming = batch, never exactly 1."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.calibration import BLOCK, EARLY, EDGES, EPOCH, TailCalibrator, bin_of
from detectors.ensemble import Ensemble, EnsembleParams
from detectors.episodes import TOP
from detectors.series import SeriesModel

P = EnsembleParams()


def _model(**kw) -> SeriesModel:
    return SeriesModel(Ensemble(P), kw.get("rarity", P.alarm_rarity), P.episode_quiet, P.level_window,
                       P.learning_hours * 3600.0)


def _times(n: int, step: float = 300.0) -> np.ndarray:
    return 1.7e9 + np.arange(n) * step


@settings(max_examples=60, deadline=None)
@given(r=st.lists(st.one_of(st.floats(0, 5), st.floats(0, 1e4), st.just(0.0)), min_size=1, max_size=EARLY + 3 * BLOCK),
       cuts=st.lists(st.integers(1, 200), min_size=1, max_size=20))
def test_calibrator_streaming_equals_batch(r, cuts):
    x = np.array(r)
    whole = TailCalibrator().step(x)
    cal = TailCalibrator()
    parts, i, k = [], 0, 0
    while i < x.size:
        n = cuts[k % len(cuts)]
        parts.append(cal.step(x[i : i + n]) if n > 1 else np.array([cal.push(float(x[i]))]))
        i, k = i + n, k + 1
    assert np.array_equal(whole, np.concatenate(parts))


def test_calibrator_across_the_halving_epochs_stays_equal_and_bounded():
    rng = np.random.default_rng(1)
    r = np.abs(rng.standard_t(2, EPOCH * 3 + 17))
    whole = TailCalibrator().step(r)
    cal = TailCalibrator()
    singles = np.array([cal.push(float(v)) for v in r[:5000]])
    rest = cal.step(r[5000:])
    assert np.array_equal(whole, np.concatenate((singles, rest)))
    assert cal._counts is not None and cal._counts.sum() <= 2 * EPOCH + 200  # halving keeps memory finite


def test_white_noise_is_calibrated_to_its_nominal_rarity():
    """On white noise about 1 reading in 10,000 reaches the alarm: the calibration keeps its meaning."""
    rng = np.random.default_rng(2)
    n = 200_000
    model = _model()
    score = model.step(rng.normal(0, 1, n), _times(n))
    over = (score[2000:] >= 0.5).mean()
    assert 1e-5 < over < 1e-3
    assert np.all(score < 1.0) and score.max() <= TOP


def test_an_always_noisy_series_is_not_always_red():
    """Heavy tails and frequent spikes (a busy machine) alarm far less than a raw threshold would."""
    rng = np.random.default_rng(3)
    n = 20_000
    x = 50 + 3 * rng.standard_t(2, n)
    spikes = rng.random(n) < 0.01
    x[spikes] += rng.uniform(20, 60, spikes.sum())
    model = _model()
    model.step(x, _times(n))
    raw_over = int((model.detail["raw"][2000:] >= 1.0).sum())
    announced = int((model.detail["flags"][2000:] > 0).sum())
    assert raw_over > 200  # a fixed threshold would flag hundreds
    assert announced < raw_over / 10


def test_a_flat_series_moving_one_step_does_not_explode():
    """A slow sensor read to 0.1: flat for hours between steps of its resolution. A step is no alarm
    and scores finitely; a jump of 30 steps is announced."""
    rng = np.random.default_rng(4)
    n = 3000
    steps = np.zeros(n)
    moves = np.flatnonzero(rng.random(n) < 1 / 40)  # one 0.1 step every 40 readings or so
    steps[moves] = rng.choice([-0.1, 0.1], moves.size)
    x = np.round(21.0 + np.cumsum(steps), 1)
    x[2600:] += 3.0
    model = _model()
    score = model.step(x, _times(n))
    quiet = [i for i in moves.tolist() if 400 < i < 2600]
    assert quiet and max(score[i] for i in quiet) < 0.5
    assert np.isfinite(model.detail["raw"]).all() and max(model.detail["raw"][i] for i in quiet) < 2.0
    assert model.detail["flags"][2600] == 1


def test_a_series_flat_from_its_first_reading_uses_its_decimal_step():
    n = 1000
    x = np.full(n, 7.0)
    x[900] = 8.0  # one unit on a series written without decimals
    model = _model()
    model.step(x, _times(n))
    assert model.detail["raw"][900] <= 2.0
    assert model.detail["flags"][900] == 0


_edges_and_neighbours = st.sampled_from(
    [float(v) for e in EDGES for v in (np.nextafter(e, -np.inf), e, np.nextafter(e, np.inf))])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(min_value=0.0), _edges_and_neighbours,
                          st.sampled_from([0.0, -0.0, np.inf, 5e-324, 1e308])), min_size=1, max_size=50),
       st.lists(st.floats(allow_nan=True), max_size=3))
def test_the_bin_lookup_is_the_binary_search(scores, odd):
    """bin_of (a table on the double's bits) finds the bin np.searchsorted finds, for every score:
    on an edge, one ulp either side, zero, subnormal, huge, infinite; NaN and negatives too."""
    for r in (np.array(scores), np.array(scores + odd)):
        assert np.array_equal(bin_of(r), np.searchsorted(EDGES, r, side="right") - 1)


def _tables_as_first_written(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The calibration tables as first written (each shoulder searched with argmax, 2-D indexing)."""
    import detectors.calibration as cal

    def r_at(sur, level):
        reached = sur >= level
        k = np.where(reached.any(axis=1), np.argmax(reached, axis=1), cal._NB - 1)
        k = np.maximum(k, 1)
        rows = np.arange(sur.shape[0])
        lo, hi = sur[rows, k - 1], sur[rows, k]
        frac = np.clip((level - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)
        return EDGES[k - 1] + frac * (EDGES[k] - EDGES[k - 1])

    tot = counts + cal.PRIOR
    ge = np.cumsum(tot[:, ::-1], axis=1)[:, ::-1]
    sur = cal._LOG10[ge[:, :1]] - cal._LOG10[ge]
    beta = np.maximum((r_at(sur, cal.SHOULDER[1]) - r_at(sur, cal.SHOULDER[0])) / cal._LN10, cal.BETA_MIN)
    tail_slope = 1.0 / (beta * cal._LN10)
    kstar = cal._NB - 1 - np.argmax((sur <= cal.EMPIRICAL)[:, ::-1], axis=1)
    rows = np.arange(tot.shape[0])
    extrapolated = sur[rows, kstar][:, None] + (EDGES[None, :] - EDGES[kstar][:, None]) * tail_slope[:, None]
    sur = np.minimum(np.where(np.arange(cal._NB)[None, :] > kstar[:, None], extrapolated, sur), cal.NOMINAL[None, :])
    slope = np.empty_like(sur)
    slope[:, :-1] = (sur[:, 1:] - sur[:, :-1]) / cal._WIDTH
    slope[:, -1] = np.minimum(tail_slope, 1.0 / (cal.PRIOR_BETA * cal._LN10))
    return sur, slope


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 40), scale=st.sampled_from([0, 1, 10, 100, 800]),
       empty=st.floats(0.0, 0.9))
def test_the_tables_are_the_first_formula(seed, rows, scale, empty):
    from detectors.calibration import tables

    rng = np.random.default_rng(seed)
    counts = rng.integers(0, scale + 1, (rows, EDGES.size)) * (rng.random((rows, EDGES.size)) >= empty)
    want, got = _tables_as_first_written(counts), tables(counts)
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 5),
       cuts=st.lists(st.integers(1, 700), min_size=1, max_size=10))
def test_calibrators_stepped_together_equal_each_alone(seed, size, cuts):
    """TailCalibrator.step_rows (the series of a station, their tables at once) gives each calibrator
    the surprises and the counts its own step gives, across early blocks and epochs."""
    rng = np.random.default_rng(seed)
    n = EPOCH + 3 * BLOCK
    r = rng.exponential(rng.uniform(0.05, 0.5, (size, 1)), (size, n)) + rng.uniform(0.0, 0.5, (size, 1))
    r[rng.random((size, n)) < 0.01] = 0.0
    alone = [TailCalibrator() for _ in range(size)]
    together = [TailCalibrator() for _ in range(size)]
    i = c = 0
    while i < n:
        part = slice(i, min(i + cuts[c % len(cuts)], n))
        want = np.stack([cal.step(r[v, part]) for v, cal in enumerate(alone)])
        assert np.array_equal(TailCalibrator.step_rows(together, r[:, part]), want)
        i, c = part.stop, c + 1
    for a, b in zip(alone, together, strict=True):
        assert np.array_equal(a._counts, b._counts) and a.seen == b.seen
        assert (a._part is None) == (b._part is None) and (a._part is None or np.array_equal(a._part, b._part))
        assert a._table_now() == b._table_now()
