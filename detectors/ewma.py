"""EWMA control chart: a smoothed level against the in-control baseline.

The EWMA z_t = lam*x_t + (1-lam)*z_{t-1} averages noise away, so a small
persistent shift that a z-score never sees crosses the limits
mean +- L*sigma*sqrt(lam/(2-lam)) within a few samples (Roberts 1959,
"Control chart tests based on geometric moving averages", Technometrics).
"""

from __future__ import annotations

import numpy as np

from detectors._blocks import Ewma, FloatArray, RollingMoments, warm_where
from detectors.base import Detector
from detectors.zscore import guarded_sigma, guarded_sigma_one


class EwmaChart(Detector):
    name = "ewma"
    threshold_name = "L"

    def __init__(
        self, lam: float = 0.2, L: float = 3.0, window: int = 48, min_periods: int | None = None,
        moments: bool = True,
    ) -> None:
        super().__init__()
        self.lam = float(lam)
        self.L = float(L)
        self.window = int(window)
        self.min_periods = int(min_periods if min_periods is not None else max(3, window // 4))
        self._moments = RollingMoments(self.window) if moments else None
        self._ewma = Ewma(self.lam)
        self._width = float(np.sqrt(self.lam / (2.0 - self.lam)))

    def set_params(self, **params: float) -> None:
        if "lam" in params:
            raise AttributeError("ewma lambda is fixed for the life of a detector")
        super().set_params(**params)

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        assert self._moments is not None
        return self.score_from(x, *self._moments.step(x))

    def score_from(self, x: FloatArray, count: FloatArray, mean: FloatArray, var: FloatArray,
                   floor: FloatArray | None = None) -> FloatArray:
        return EwmaChart.score_rows([self], x[None, :], count, mean[None, :], var[None, :],
                                    None if floor is None else floor[None, :])[0]

    @staticmethod
    def score_rows(group: list[EwmaChart], x: FloatArray, count: FloatArray, mean: FloatArray, var: FloatArray,
                   floor: FloatArray | None = None) -> FloatArray:
        """`score_from` for several charts with the same lambda, L and min_periods and EWMAs in the same
        phase, at once: x, mean, var, floor (len(group), n), count (n,)."""
        head = group[0]
        smooth = Ewma.step_rows([det._ewma for det in group], x)
        sigma = guarded_sigma(mean, var, floor=floor) * head._width
        stat = warm_where(count, head.min_periods, (smooth - mean) / sigma)
        limit = sigma * head.L
        for v, det in enumerate(group):
            det.detail = {"ewma": smooth[v], "mean": mean[v], "limit": limit[v], "stat": stat[v]}
        return np.abs(stat) / head.L

    def _step_one(self, x: float, t: float | None) -> float:
        assert self._moments is not None
        return self.score_one_from(x, *self._moments.push(x))

    def score_one_from(self, x: float, count: float, mean: float, var: float, floor: float = 0.0) -> float:
        smooth = self._ewma.push(x)
        sigma = guarded_sigma_one(mean, var, floor=floor) * self._width
        stat = (smooth - mean) / sigma if count >= self.min_periods else 0.0
        self.detail = {"ewma": [smooth], "mean": [mean], "limit": [sigma * self.L], "stat": [stat]}
        return abs(stat) / self.L

    def reason(self, i: int, value: float, unit: str) -> str:
        smooth, mean = self.detail["ewma"][i], self.detail["mean"][i]
        limit = self.detail["limit"][i]
        word = "above" if smooth > mean else "below"
        return (
            f"EWMA {smooth:.4g} {unit} drifted {word} the baseline {mean:.4g} "
            f"by more than {limit:.2g} (L={self.L:g})"
        ).replace("  ", " ")
