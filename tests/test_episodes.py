"""Episodes: an onset announced once, a level that holds becomes the new normal, stuck sensors."""

from __future__ import annotations

import numpy as np

from detectors.bank import DetectorBank
from detectors.ensemble import Ensemble, EnsembleParams
from detectors.episodes import EpisodeTracker
from detectors.series import SeriesModel
from detectors.stuck import StuckRun

P = EnsembleParams()
T0 = 1.7e9


def _model() -> SeriesModel:
    return SeriesModel(Ensemble(P), P.alarm_rarity, P.episode_quiet, P.level_window, P.learning_hours * 3600.0)


def test_a_level_shift_is_announced_once_and_becomes_the_new_normal():
    rng = np.random.default_rng(5)
    n = 3000
    t = T0 + np.arange(n) * 300.0
    x = 20 + rng.normal(0, 0.5, n)
    x[2000:] += 6.0
    bank = DetectorBank(P)
    result = bank.step_series("s", "temp_c", t, x)
    onsets = [a for a in result.anomalies if a.ts >= t[2000]]
    assert len(onsets) == 1
    a = onsets[0]
    assert a.ts <= t[2003] and a.episode and a.episode_start == a.ts and a.episode_peak == a.score
    assert "becomes the new normal within 192 readings (about 16 h)" in a.reason
    # after the window has absorbed the new level the stored score is quiet again
    assert np.all(result.anomaly_score[2300:] < 0.5)


def test_inside_an_episode_readings_keep_half_their_score_unless_they_set_a_record():
    tracker = EpisodeTracker(alarm=6.0, low=2.0, quiet=5)
    sur = np.array([0.0, 6.5, 7.0, 7.2, 10.9, 3.0, 0.0, 0, 0, 0, 0, 0, 0, 6.5])
    score, flags, marks = tracker.step(sur, T0 + np.arange(sur.size))
    assert flags.tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert score[2] < 0.5 and score[3] < 0.5  # the same condition, already announced
    assert score[4] > 0.7  # 10.9 >= 1.5 x 7.2: a record keeps its score (still a warning)
    assert [m[0] for m in marks] == [1, 13]  # a quiet gap ends the episode: a new onset


def test_escalation_to_critical_is_announced_inside_the_episode():
    tracker = EpisodeTracker(alarm=4.0, low=2.0, quiet=5)
    sur = np.array([4.5, 5.0, 8.5, 9.0])
    _score, flags, marks = tracker.step(sur, T0 + np.arange(4))
    assert flags.tolist() == [1, 0, 2, 0]
    assert marks[1][3] == "critical" and marks[1][1] == T0  # same episode: same start


def test_a_stuck_sensor_is_flagged_and_a_rest_state_is_not():
    rng = np.random.default_rng(6)
    n = 2000
    humidity = np.round(40 + rng.normal(0, 0.8, n), 2)
    humidity[1500:1536] = 41.3  # frozen for 3 h at 5-minute readings
    det = StuckRun()
    score = det.step(humidity)
    assert score[1500:1536].max() >= 1.0 and score[:1500].max() < 1.0
    occupancy = np.where((np.arange(n) % 288) < 100, rng.poisson(3, n), 0).astype(float)  # empty every night
    assert StuckRun().step(occupancy).max() < 1.0


def test_the_model_announces_nothing_while_it_learns():
    rng = np.random.default_rng(7)
    n = 600
    t = T0 + np.arange(n) * 300.0
    x = rng.normal(0, 1, n)
    x[100] += 30  # inside the first 24 h
    model = _model()
    score = model.step(x, t)
    assert model.detail["flags"][100] == 0 and score[100] < 0.5
