from __future__ import annotations

import csv

import numpy as np

from detectors.ensemble import COMPONENTS, Ensemble, EnsembleParams
from mass_tui.ui.charts import BLOCKS, Thresholds, reduce_minmax, sparkline, to_units, what_if_scores


def test_reduce_keeps_every_column_extreme_and_order():
    t = np.arange(10_000, dtype=float)
    y = np.sin(t / 50.0)
    y[4321] = 9.0  # a one-point spike must survive the reduction
    tx, yx = reduce_minmax(t, y, 100)
    assert len(tx) <= 200 and np.all(np.diff(tx) > 0)
    assert 9.0 in yx and yx.min() == y.min()
    assert reduce_minmax(t[:50], y[:50], 100)[0].size == 50  # short series untouched


def test_sparkline_levels_width_and_flat_series():
    line = sparkline(np.arange(100, dtype=float), 20)
    assert len(line) == 20 and line[0] == BLOCKS[0] and line[-1] == BLOCKS[-1]
    assert sparkline(np.full(5, 3.0), 20) == BLOCKS[3] * 5
    assert sparkline(np.array([np.nan]), 10) == ""


def test_what_if_recount_follows_thresholds():
    p = EnsembleParams()
    spike = np.array([0.0, 3.0, 4.0, 5.0, 6.0])
    zeros = np.zeros(5)
    at3 = what_if_scores(spike, zeros, zeros, zeros, Thresholds(3.0, 5.0), p)
    at2 = what_if_scores(spike, zeros, zeros, zeros, Thresholds(2.0, 5.0), p)
    assert (at2 >= 1).sum() > (at3 >= 1).sum()
    cusum = np.array([0.0, 4.0, 6.0, 8.0, 10.0])
    assert (what_if_scores(zeros, zeros, cusum, zeros, Thresholds(3.0, 4.0), p) >= 1).sum() == 3


def test_imperial_units():
    assert to_units(np.array([100.0]), "°C", True)[0][0] == 212.0
    value, unit = to_units(10.0, "m/s", True)
    assert unit == "mph" and abs(value - 22.37) < 0.01
    assert to_units(5.0, "°C", False) == (5.0, "°C")


def test_what_if_at_unchanged_thresholds_flags_what_the_ensemble_flagged(shared):
    """With z and h untouched the recount must equal the recorded flags, drift-led ones
    included (Chicago's pressure in the 2010 cyclone has some)."""
    rows = [r for r in csv.DictReader((shared / "weather" / "asos_midwest_cyclone_2010-10.csv").open())
            if r["station"] == "ORD" and r["pressure_msl_hpa"]]
    x = np.array([float(r["pressure_msl_hpa"]) for r in rows])
    p = EnsembleParams()
    ens = Ensemble(p)
    flagged = ens.step(x) >= 1.0
    d = ens.detail
    assert (d["best"][flagged] == COMPONENTS.index("drift")).any()
    again = what_if_scores(d["resid_z"], d["level_z"], np.maximum(d["cusum_up"], d["cusum_down"]), d["burst_ratio"],
                           Thresholds(p.z, p.h, p.burst_ratio), p, d["drift"])
    assert np.array_equal(again >= 1.0, flagged)
