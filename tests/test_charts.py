from __future__ import annotations

import numpy as np

from mass_tui.ui.charts import BLOCKS, reduce_minmax, sparkline, to_units


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


def test_imperial_units():
    assert to_units(np.array([100.0]), "°C", True)[0][0] == 212.0
    value, unit = to_units(10.0, "m/s", True)
    assert unit == "mph" and abs(value - 22.37) < 0.01
    assert to_units(5.0, "°C", False) == (5.0, "°C")
