"""Calibrated scores: the same meaning on every series, streaming = batch, never exactly 1."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.calibration import BLOCK, EARLY, EPOCH, TailCalibrator
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
