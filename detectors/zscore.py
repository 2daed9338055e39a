"""Rolling z-score: how far a value is from the mean of the values before it."""

from __future__ import annotations

import math

import numpy as np

from detectors._blocks import FloatArray, RollingMoments, warm_where
from detectors.base import Detector


def guarded_sigma(mean: FloatArray, var: FloatArray, rel_floor: float = 1e-6) -> FloatArray:
    """Standard deviation with a floor, so a flat-lined sensor gives no division by zero.

    The floor scales with the level (1e-6 of it, at least 1e-9) so a change
    on a constant series scores high but finite.
    """
    floor = np.abs(mean)
    floor *= rel_floor
    np.maximum(floor, 1e-9, out=floor)
    sigma = np.sqrt(var)
    return np.maximum(sigma, floor, out=sigma)  # in place: these arrays are as long as the batch


def guarded_sigma_one(mean: float, var: float, rel_floor: float = 1e-6) -> float:
    """guarded_sigma for one value, with numpy's maximum (`a if a >= b else b`)."""
    floor = abs(mean) * rel_floor
    floor = floor if floor >= 1e-9 else 1e-9
    sigma = math.sqrt(var)
    return sigma if sigma >= floor else floor


class RollingZScore(Detector):
    """|x - mean| / std over the previous `window` values, the current one excluded.

    Scores are 0 until `min_periods` values are in the window.
    """

    name = "zscore"
    threshold_name = "z"

    def __init__(self, window: int = 48, z: float = 3.0, min_periods: int | None = None) -> None:
        super().__init__()
        self.window = int(window)
        self.min_periods = int(min_periods if min_periods is not None else max(3, window // 4))
        if not 2 <= self.min_periods <= self.window:
            raise ValueError(f"min_periods must be in [2, window], got {self.min_periods}")
        self.z = float(z)
        self._moments = RollingMoments(self.window)

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        count, mean, var = self._moments.step(x)
        sigma = guarded_sigma(mean, var)
        stat = x - mean
        stat /= sigma
        stat = warm_where(count, self.min_periods, stat)
        self.detail = {"z": stat, "mean": mean, "sigma": sigma}
        score = np.abs(stat)
        score /= self.z
        return score

    def _step_one(self, x: float, t: float | None) -> float:
        count, mean, var = self._moments.push(x)
        sigma = guarded_sigma_one(mean, var)
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
