"""The NAB v1.1 scoring rules (detectors.evaluation), checked on small cases worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.evaluation import (
    OUTSIDE,
    PROBATIONARY,
    NabFile,
    episodes,
    event_score,
    nab_score,
    nab_windows,
    row_weights,
    scaled_sigmoid,
)


def test_scaled_sigmoid_values_from_the_nab_sweeper():
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0 and scaled_sigmoid(10.0) == -1.0


def test_row_weights_inside_after_and_before_windows():
    n = 2000  # probation: 15 % = 300 rows
    w, where = row_weights(n, [(1000, 1099)])
    assert (where[:300] == PROBATIONARY).all() and where[300] == OUTSIDE
    assert where[1000] == 0 and where[1099] == 0 and where[1100] == OUTSIDE
    assert w[1000] == pytest.approx(1.0)  # the earliest detection is worth A_TP
    assert 0 < w[1099] < 0.1  # the last row of the window: almost nothing
    assert w[500] == pytest.approx(-0.11)  # before any window: a full false positive
    assert -0.02 < w[1101] < 0  # just after a window a false positive costs little
    assert w[1099 + 3 * 99] == pytest.approx(-0.11)  # three widths after it, the full price


def test_perfect_null_and_single_false_positive():
    n = 2000
    windows = [(1000, 1099)]
    perfect = np.zeros(n)
    perfect[1000] = 1.0
    assert nab_score([NabFile("a", perfect, windows)]).score == pytest.approx(100.0)
    assert nab_score([NabFile("a", np.zeros(n), windows)]).score == pytest.approx(0.0)
    one_fp = perfect.copy()
    one_fp[500] = 1.0
    r = nab_score([NabFile("a", one_fp, windows)])
    # raw = 1 - 0.11, normalised over [-1, 1]
    assert r.raw == pytest.approx(0.89) and r.score == pytest.approx(100 * 1.89 / 2)
    assert r.false_positives == 1 and r.detected == 1


def test_one_threshold_for_the_whole_corpus():
    """Two files that want different thresholds: the corpus gets the single best one."""
    n = 2000
    a = np.zeros(n)
    a[1000] = 0.9  # file a: detected only at a threshold <= 0.9
    b = np.zeros(n)
    b[1000], b[500:515] = 0.6, 0.7  # file b: a threshold <= 0.6 also buys 15 false positives
    files = [NabFile("a", a, [(1000, 1099)]), NabFile("b", b, [(1000, 1099)])]
    r = nab_score(files)
    assert r.threshold == pytest.approx(0.6)  # b: -1 -> +1 for its window outweighs 15 x 0.11
    assert r.raw == pytest.approx(2 - 15 * 0.11)
    assert r.score == pytest.approx(100 * (r.raw + 2) / 4)


def test_windows_by_the_nab_rule():
    assert nab_windows(1000, [500]) == [(450, 550)]
    assert nab_windows(1000, [300, 700]) == [(275, 325), (675, 725)]
    assert nab_windows(1000, []) == []


def test_a_window_inside_the_probation_is_not_scored():
    n = 2000
    r = nab_score([NabFile("a", np.zeros(n), [(10, 20), (1000, 1099)])])
    assert r.windows == 1 and r.null == -1.0


def test_event_scores_and_episodes():
    t = np.array([0.0, 60.0, 3000.0, 9000.0, 9100.0])
    assert episodes(t, 3600.0) == [(0.0, 3000.0), (9000.0, 9100.0)]
    s = event_score(t, [(2000.0, 2500.0), (20000.0, 30000.0)], gap=3600.0)
    assert s.events == 2 and s.detected == 0 and s.episodes == 2 and s.true_episodes == 1
    s = event_score(t, [(2500.0, 4000.0)], gap=3600.0)
    assert s.detected == 1 and s.delays == [500.0] and math.isclose(s.precision, 0.5)
