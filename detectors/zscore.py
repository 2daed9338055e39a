"""Rolling z-score: how far a value is from the mean of the values before it."""

from __future__ import annotations

import math

import numpy as np

from detectors._blocks import FloatArray, RollingMoments, warm_where
from detectors.base import Detector


def guarded_sigma(mean: FloatArray, var: FloatArray, rel_floor: float = 1e-6,
                  floor: FloatArray | None = None) -> FloatArray:
    """Standard deviation with a floor, so a flat-lined sensor gives no division by zero.

    The floor scales with the level (1e-6 of it, at least 1e-9) so a change
    on a constant series scores high but finite; `floor` (per value) raises
    it further, e.g. to half the series' measured resolution (the ensemble).
    """
    low = np.abs(mean)
    low *= rel_floor
    np.maximum(low, 1e-9, out=low)
    if floor is not None:
        np.maximum(low, floor, out=low)
    sigma = np.sqrt(var)
    return np.maximum(sigma, low, out=sigma)  # in place: these arrays are as long as the batch


def guarded_sigma_one(mean: float, var: float, rel_floor: float = 1e-6, floor: float = 0.0) -> float:
    """guarded_sigma for one value, with numpy's maximum (`a if a >= b else b`)."""
    low = abs(mean) * rel_floor
    low = low if low >= 1e-9 else 1e-9
    low = low if low >= floor else floor
    sigma = math.sqrt(var)
    return sigma if sigma >= low else low


class RollingZScore(Detector):
    """|x - mean| / std over the previous `window` values, the current one excluded.

    Scores are 0 until `min_periods` values are in the window.
    """

    name = "zscore"
    threshold_name = "z"

    def __init__(self, window: int = 48, z: float = 3.0, min_periods: int | None = None,
                 moments: bool = True) -> None:
        super().__init__()
        self.window = int(window)
        self.min_periods = int(min_periods if min_periods is not None else max(3, window // 4))
        if not 2 <= self.min_periods <= self.window:
            raise ValueError(f"min_periods must be in [2, window], got {self.min_periods}")
        self.z = float(z)
        # The ensemble shares one window between views and passes its moments in.
        self._moments = RollingMoments(self.window) if moments else None

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        assert self._moments is not None
        return self.score_from(x, *self._moments.step(x))

    def score_from(self, x: FloatArray, count: FloatArray, mean: FloatArray, var: FloatArray,
                   floor: FloatArray | None = None) -> FloatArray:
        """Scores of x given the window's (count, mean, variance) before each value."""
        sigma = guarded_sigma(mean, var, floor=floor)
        stat = x - mean
        stat /= sigma
        stat = warm_where(count, self.min_periods, stat)
        self.detail = {"z": stat, "mean": mean, "sigma": sigma}
        score = np.abs(stat)
        score /= self.z
        return score

    @staticmethod
    def score_rows(group: list[RollingZScore], x: FloatArray, count: FloatArray, mean: FloatArray,
                   var: FloatArray, floor: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
        """`score_from` for several detectors with the same z and min_periods at once: x, mean, var,
        floor (len(group), n), count (n,); each gets its row of the detail. Returns the scores and
        the z values (len(group), n): (x - mean) / guarded sigma, 0 before min_periods."""
        head = group[0]
        score = head.score_from(x, count, mean, var, floor=floor)
        detail = head.detail
        for v, det in enumerate(group):
            det.detail = {key: value[v] for key, value in detail.items()}
        return score, detail["z"]

    def _step_one(self, x: float, t: float | None) -> float:
        assert self._moments is not None
        return self.score_one_from(x, *self._moments.push(x))

    def score_one_from(self, x: float, count: float, mean: float, var: float, floor: float = 0.0) -> float:
        sigma = guarded_sigma_one(mean, var, floor=floor)
        stat = (x - mean) / sigma if count >= self.min_periods else 0.0
        self.detail = {"z": [stat], "mean": [mean], "sigma": [sigma]}
        return abs(stat) / self.z

    def reason(self, i: int, value: float, unit: str) -> str:
        z = self.detail["z"][i]
        mean, sigma = self.detail["mean"][i], self.detail["sigma"][i]
        return (
            f"{value:.4g} {unit} is {abs(z):.1f} σ {'above' if z > 0 else 'below'} "
            f"the recent mean {mean:.4g} ± {sigma:.2g} (z threshold {self.z:g})"
        ).replace("  ", " ")
