from __future__ import annotations

import csv

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors._blocks import Ewma, RollingMoments
from detectors.cusum import Cusum
from detectors.ensemble import COMPONENTS, Ensemble, EnsembleParams, to_unit_score
from detectors.evaluation import NabFile, nab_score, nab_windows
from detectors.ewma import EwmaChart
from detectors.rules import Band, GustLimit, PressureTendency, RapidChange, ThresholdBands, window_extremes
from detectors.series import SeriesModel
from detectors.stuck import StuckRun
from detectors.zscore import RollingZScore
from sources.synthetic_series import make_corpus_series
from tests.test_scoring_fast_paths import cusum_three_ways

FACTORIES = {
    "zscore": lambda: RollingZScore(window=8, z=3.0, min_periods=3),
    "ewma": lambda: EwmaChart(lam=0.3, L=3.0, window=8),
    "cusum": lambda: Cusum(k=0.5, h=4.0, window=8),
    "ensemble": lambda: Ensemble(EnsembleParams(window=8, level_window=16)),
    # the full per-series path: views, daily profiles, calibration and episodes (short learning, quiet)
    "calibrated": lambda: SeriesModel(Ensemble(EnsembleParams(window=8, level_window=16)), 1e3, 3, 5, 3600.0),
    "stuck": lambda: StuckRun(factor=2.0, min_usual=1, warm_runs=3),
    "pressure": lambda: PressureTendency(drop_hpa=3.0, hours=3.0, rise_hpa=3.0),
    "rapid": lambda: RapidChange(max_change=2.0, per_minutes=60.0),
    "bands": lambda: ThresholdBands([Band(5, "info"), Band(20, "warning"), Band(50, "critical")], "above"),
    "bands_below": lambda: ThresholdBands([Band(-5, "warning"), Band(-30, "critical")], "below"),
    "gust": lambda: GustLimit(15.0),
}

values = st.lists(
    st.one_of(
        st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
        st.integers(-50, 50).map(float),
        st.just(float("nan")),
    ),
    min_size=1,
    max_size=400,
)


def _times(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # minutes to two hours apart: days (and daily-profile folds) pass within a few hundred values
    return 1.7e9 + np.cumsum(rng.integers(60, 7200, n)).astype(float)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=60, deadline=None)
@given(xs=values, cuts=st.lists(st.integers(1, 60), min_size=1, max_size=40), seed=st.integers(0, 1000))
def test_streaming_and_batch_give_identical_scores(name, xs, cuts, seed):
    x = np.array(xs)
    t = _times(x.size, seed)
    batch = FACTORIES[name]().step(x, t)
    streaming_det = FACTORIES[name]()
    parts, i, k = [], 0, 0
    while i < x.size:
        n = cuts[k % len(cuts)]
        parts.append(streaming_det.step(x[i : i + n], t[i : i + n]))
        i, k = i + n, k + 1
    stream = np.concatenate(parts)
    # Bit for bit, not approximately: an alarm must not depend on batching.
    assert np.array_equal(batch, stream, equal_nan=True)


@pytest.mark.parametrize("name", ["ensemble", "calibrated"])
@settings(max_examples=40, deadline=None)
@given(xs=values, seed=st.integers(0, 1000))
def test_one_value_at_a_time_equals_batch(name, xs, seed):
    x = np.array(xs)
    t = _times(x.size, seed)
    one = FACTORIES[name]()
    singles = np.concatenate([one.step(x[i : i + 1], t[i : i + 1]) for i in range(x.size)])
    assert np.array_equal(FACTORIES[name]().step(x, t), singles, equal_nan=True)


def test_rolling_moments_match_a_direct_computation():
    rng = np.random.default_rng(3)
    x = rng.normal(1013.0, 0.05, 500)  # pressure: large level, small spread
    count, mean, var = RollingMoments(12).step(x)
    for i in range(13, 500):
        assert count[i] == 12
        assert mean[i] == pytest.approx(x[i - 12 : i].mean(), rel=1e-12)
        assert var[i] == pytest.approx(x[i - 12 : i].var(), rel=1e-6)


def test_ewma_matches_the_recursion():
    x = np.random.default_rng(4).normal(size=3000)
    y, prev = [], x[0]
    for v in x:
        prev = 0.8 * prev + 0.2 * v
        y.append(prev)
    assert np.allclose(Ewma(0.2).step(x), y, rtol=1e-9, atol=1e-12)


def test_cusum_matches_the_textbook_recursion_with_reset():
    rng = np.random.default_rng(5)
    x = np.concatenate((rng.normal(0, 1, 300), rng.normal(1.5, 1, 200)))
    det = Cusum(k=0.5, h=5.0, window=50)
    det.step(x)
    # The same recursion, one value at a time, on the detector's own z values.
    _, mean, var = RollingMoments(50).step(x)
    sigma = np.maximum(np.sqrt(var), 1e-9)
    z = np.where(np.arange(x.size) >= det.min_periods, (x - mean) / sigma, 0.0)
    z[: det.min_periods] = 0.0
    up = down = 0.0
    alarms = []
    for i, zi in enumerate(z):
        up, down = max(0.0, up + zi - 0.5), max(0.0, down - zi - 0.5)
        assert det.detail["up"][i] == pytest.approx(up, abs=1e-9)
        if up > 5.0 or down > 5.0:
            alarms.append(i)
            up = down = 0.0
    assert np.flatnonzero(det.detail["alarm"]).tolist() == alarms
    assert sum(a >= 300 for a in alarms) >= 2 * sum(a < 300 for a in alarms) >= 0
    assert any(300 <= a < 320 for a in alarms)  # the shift is caught within 20 samples


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), bursts=st.lists(st.tuples(st.integers(0, 2999), st.integers(1, 300),
                                                             st.floats(-20, 20)), max_size=12),
       cuts=st.lists(st.integers(1, 1500), min_size=1, max_size=8), k=st.sampled_from([0.0, 0.5, 1.0]))
# found by hypothesis: a burst at the series' last value is one value long, whatever its length says
@example(seed=0, bursts=[(2999, 3, 7.0)], cuts=[1], k=0.0)
def test_cusum_runs_of_alarms_in_a_batch_are_the_recursion_one_value_at_a_time(seed, bursts, cuts, k):
    """Standardised values past h + k fire the CUSUM at every reading (a run of one-value segments,
    which the batch path passes in one go): the batch, any cuts, and one value at a time give the
    same S+, S- and alarms."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=3000)
    for at, length, size in bursts:
        z[at : at + length] += size
    _whole, _parts, (want, got, cut), (detail, got_detail, cut_detail) = cusum_three_ways(z, cuts, k)
    assert np.array_equal(want, got) and np.array_equal(want, cut)
    assert np.array_equal(detail, got_detail) and np.array_equal(detail, cut_detail)
    if any(_lone_burst(bursts, b, z.size) for b in range(len(bursts))):
        assert (np.diff(np.flatnonzero(detail[2])) == 1).any()  # a run of alarms


def _lone_burst(bursts: list[tuple[int, int, float]], k: int, n: int) -> bool:
    """Burst k is at least 3 values inside the series, over 6 sigma, and no other burst overlaps it
    (one running past the end is cut short; an overlapping one may cancel it)."""
    at, length, size = bursts[k]
    end = min(at + length, n)
    alone = all(o_at + o_len <= at or o_at >= end for j, (o_at, o_len, _s) in enumerate(bursts) if j != k)
    return end - at >= 3 and abs(size) > 6 and alone


def test_zscore_excludes_the_current_point_and_guards_flat_series():
    det = RollingZScore(window=10, z=3.0, min_periods=5)
    flat = det.step(np.full(20, 7.0))
    assert np.all(flat == 0.0)
    jump = det.step([7.5])
    assert np.isfinite(jump[0]) and jump[0] > 1.0  # a change on a flat line is flagged, finitely


def test_threshold_change_keeps_state_and_applies_at_once():
    x = np.random.default_rng(6).normal(size=400)
    a = RollingZScore(window=30, z=3.0)
    a.step(x[:200])
    a.threshold = 1.5
    lowered = a.step(x[200:])
    b = RollingZScore(window=30, z=3.0)
    b.step(x[:200])
    same_state = b.step(x[200:])
    assert np.allclose(lowered, same_state * 2.0)  # score scales with 1/z, baseline unchanged


def test_cusum_h_change_mid_stream_matches_between_streaming_and_batch():
    x = np.random.default_rng(7).normal(size=3000)
    a, b = Cusum(h=5.0, window=20), Cusum(h=5.0, window=20)
    first_a = a.step(x[:1500])
    first_b = np.concatenate([b.step(x[i : min(i + 7, 1500)]) for i in range(0, 1500, 7)])
    a.set_params(h=3.0)
    b.set_params(h=3.0)
    assert np.array_equal(first_a, first_b)
    assert np.array_equal(a.step(x[1500:]), np.concatenate([b.step(x[i : i + 11]) for i in range(1500, 3000, 11)]))


def test_unit_score_is_graded_not_saturated():
    s = to_unit_score(np.array([0.0, 1.0, 2.0, 3.0, 10.0]))
    assert s[0] == 0.0 and s[1] == pytest.approx(0.5) and s[2] == pytest.approx(0.8)
    assert s[3] < 0.95 and s[4] < 1.0
    assert np.all(np.diff(s) > 0)


def test_calibrated_ensemble_beats_plain_zscore_on_the_design_corpus():
    """NAB v1.1 score (standard profile, one threshold for the corpus) on the varied synthetic corpus."""
    p = EnsembleParams()
    ours, plain = [], []
    for seed in range(24):
        c = make_corpus_series(seed)
        windows = nab_windows(c.x.size, c.anomalies)
        model = SeriesModel(Ensemble(p), p.alarm_rarity, p.episode_quiet, p.level_window, p.learning_hours * 3600)
        ours.append(NabFile(c.name, model.step(c.x, c.t), windows))
        plain.append(NabFile(c.name, to_unit_score(RollingZScore(window=48).step(c.x)), windows))
    mine, theirs = nab_score(ours).score, nab_score(plain).score
    assert mine > theirs + 15
    assert mine > 50


def test_ensemble_flags_a_spike_hidden_in_a_daily_cycle():
    n = 24 * 20
    t = 1.7e9 + np.arange(n) * 3600.0
    x = 15 + 8 * np.sin(2 * np.pi * np.arange(n) / 24) + np.random.default_rng(8).normal(0, 0.3, n)
    x[300] += 6.0  # well inside the daily swing: a plain z-score cannot see it
    model = SeriesModel(Ensemble(), 1e4, 12, 192, 86400.0)
    score = model.step(x, t)
    assert score[300] >= 0.5 and model.detail["flags"][300] == 1  # announced: an episode's onset
    assert [m[0] for m in model.marks] == [300]  # and nothing else in 20 days
    assert "off the forecast" in model.raw.reason(300, x[300], "°C")
    assert to_unit_score(RollingZScore(window=48).step(x))[300] < 0.5


def test_bands_ladder_scores_and_severities():
    bands = ThresholdBands([Band(660, "info"), Band(2200, "warning"), Band(5500, "critical")], "above", "tvoc_ppb")
    s = bands.step([100, 660, 1430, 2200, 6000])
    assert s[1] == pytest.approx(1.0) and s[2] == pytest.approx(1.5) and s[3] == pytest.approx(2.0)
    assert s[0] < 1.0 and s[4] > 3.0
    assert bands.severity(s[3], 2200) == "warning" and bands.severity(s[4], 6000) == "critical"
    low = ThresholdBands([Band(20, "warning"), Band(10, "critical")], "below")
    assert low.step([50, 20, 10, 5]).tolist()[1:3] == [1.0, 2.0]


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixed_single_and_batch_steps_across_block_boundaries(name, seed):
    # Long enough to cross the 1024-value blocks of the EWMA and CUSUM, with
    # a level shift so the CUSUM alarms and restarts inside blocks.
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 5000) + np.where(np.arange(5000) > 2500, 3.0, 0.0)
    x[rng.integers(0, 5000, 40)] = np.nan
    t = _times(x.size, seed)
    batch = FACTORIES[name]().step(x, t)
    det = FACTORIES[name]()
    parts, i = [], 0
    while i < x.size:
        n = 1 if rng.random() < 0.7 else int(rng.integers(2, 300))
        parts.append(det.step(x[i : i + n], t[i : i + n]))
        i += n
    assert np.array_equal(batch, np.concatenate(parts), equal_nan=True)


@pytest.mark.parametrize("narrow", [0, 8, 10**6])
@settings(max_examples=200, deadline=None)
@given(xs=st.lists(st.integers(0, 6).map(float), min_size=1, max_size=300), seed=st.integers(0, 1000),
       span=st.integers(1, 400))
def test_window_extremes_equal_a_direct_scan_ties_included(narrow, xs, seed, span):
    """The sparse-table search (narrow=0) and the position-at-a-time one for narrow windows find the
    same extreme, and the first of equal ones, as a plain scan."""
    v = np.array(xs)
    t = np.cumsum(np.random.default_rng(seed).integers(0, 4, v.size) * 60.0)
    idx = np.arange(v.size)
    first = np.searchsorted(t, t - span * 60.0, side="left")
    fall, fall_dt, rise, rise_dt = window_extremes(t, v, first, idx, narrow)
    for i in range(v.size):
        window = v[first[i] : i]
        if window.size == 0:
            assert fall[i] == rise[i] == fall_dt[i] == rise_dt[i] == 0.0
            continue
        top, bottom = first[i] + int(np.argmax(window)), first[i] + int(np.argmin(window))
        assert (fall[i], fall_dt[i]) == (v[top] - v[i], t[i] - t[top])
        assert (rise[i], rise_dt[i]) == (v[i] - v[bottom], t[i] - t[bottom])


def test_drift_reason_speaks_of_forecast_errors_not_readings(shared):
    """The drift view watches forecast errors: its reason must not set an error beside a reading's mean.
    Chicago's pressure during the October 2010 cyclone is where it leads."""
    rows = [r for r in csv.DictReader((shared / "weather" / "asos_midwest_cyclone_2010-10.csv").open())
            if r["station"] == "ORD" and r["pressure_msl_hpa"]]
    x = np.array([float(r["pressure_msl_hpa"]) for r in rows])
    ens = Ensemble()
    ens.step(x)
    drift_led = [i for i in range(x.size) if ens.detail["best"][i] == COMPONENTS.index("drift")
                 and ens.detail["combined"][i] >= 1.0]
    assert drift_led
    i = drift_led[0]
    reason = ens.reason(i, float(x[i]), "hPa")
    assert reason.startswith("readings keep running ") and " the forecast: the errors' EWMA " in reason
    assert f"{ens.detail['ewma'][i]:+.3g} hPa" in reason and f"{x.mean():.4g}" not in reason


@pytest.mark.parametrize(("value", "word"), [(15.0, "at"), (15.04, "at"), (15.06, "over"), (22.5, "over")])
def test_gust_reason_says_at_the_limit_when_the_shown_value_is_the_limit(value, word):
    rule = GustLimit(15.0)
    assert rule._step_one(value, None) >= 1.0  # it fires at the limit, so the words must not say "over"
    assert rule.reason(0, value, "m/s") == f"gust {value:.1f} m/s {word} the 15 m/s limit"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(1, 5), cuts=st.lists(st.integers(2, 400), min_size=1, max_size=10),
       lead=st.lists(st.sampled_from([0, 0, 0, 37, 300]), min_size=5, max_size=5), step=st.sampled_from([60.0, 3600.0]))
def test_ensembles_stepped_together_equal_each_alone(seed, size, cuts, lead, step):
    """Ensemble.step_rows (a station's series read at the same times, at once; the windows and EWMAs
    in 2-D) gives each ensemble the raw scores, the detail and the state its own step gives."""
    from detectors.seasonal import step_profiles

    rng = np.random.default_rng(seed)
    n = 1500
    t = 1.7e9 + np.arange(n) * step
    x = np.round(rng.uniform(-50, 50, (size, 1)) + rng.uniform(0.1, 10, (size, 1)) * np.sin(t / 9000.0)
                 + rng.normal(0, 1, (size, n)) * (rng.random((size, n)) < 0.7), int(rng.integers(0, 3)))
    p = EnsembleParams(window=16, level_window=48)
    alone, together = [Ensemble(p) for _ in range(size)], [Ensemble(p) for _ in range(size)]
    start = 400
    for v in range(size):  # histories of different lengths: some phases differ, those step apart
        for ens in (alone[v], together[v]):
            ens._step(x[v, start - lead[v] - 200 : start - lead[v]], t[start - lead[v] - 200 : start - lead[v]])
    i, c = start, 0
    while i < n:
        part = slice(i, min(i + cuts[c % len(cuts)], n))
        want = [ens._step(x[v, part], t[part]) for v, ens in enumerate(alone)]
        groups: dict = {}
        for v, ens in enumerate(together):
            groups.setdefault((ens.phase(), ens.seasonal.day), []).append(v)
        for members in groups.values():
            rows = x[members, part]
            offsets = step_profiles([together[v].seasonal for v in members], rows, t[part])
            got = Ensemble.step_rows([together[v] for v in members], rows, t[part], offsets)
            for row, v in enumerate(members):
                assert np.array_equal(got[row], want[v])
                a, b = alone[v].detail, together[v].detail
                assert a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)
        i, c = part.stop, c + 1
    assert [_state(ens) for ens in alone] == [_state(ens) for ens in together]


def _state(obj: object, depth: int = 0) -> object:
    """A detector's state as plain values (arrays as lists, NaN as a string), its detail left out."""
    if isinstance(obj, float):
        return "nan" if obj != obj else obj
    if isinstance(obj, int | str | bool | type(None)):
        return obj
    if isinstance(obj, np.ndarray | list | tuple) or type(obj).__name__ == "array":
        return [_state(v, depth + 1) for v in np.asarray(obj, dtype=object).ravel().tolist()]
    if isinstance(obj, dict):
        return {k: _state(v, depth + 1) for k, v in obj.items()}
    names = list(getattr(obj, "__slots__", ())) + list(getattr(obj, "__dict__", {}))
    return {name: _state(getattr(obj, name), depth + 1) for name in names
            if name not in ("detail", "_tab", "params") and hasattr(obj, name) and depth < 4}
