"""Two-sided CUSUM on values standardised against an in-control baseline.

S+_t = max(0, S+_{t-1} + z_t - k) and S-_t = max(0, S-_{t-1} - z_t - k);
an alarm when either exceeds h, after which both restart at 0. Between
resets the recursion has a closed form, S_t = C_t - min(0, min_{j<=t} C_j)
with C the running sum of increments, computed with np.minimum.accumulate.
"""

from __future__ import annotations

import numpy as np

from detectors._blocks import Blocked, FloatArray, RollingMoments
from detectors.base import Detector
from detectors.zscore import guarded_sigma

_BLOCK = 1024


def _lindley(start: float, steps: FloatArray) -> FloatArray:
    """S_t = max(0, S_{t-1} + d_t) from S_{-1} = start, in closed form."""
    c = np.cumsum(steps) + start
    return c - np.minimum(np.minimum.accumulate(c), 0.0)


class Cusum(Detector):
    name = "cusum"
    threshold_name = "h"

    def __init__(
        self, k: float = 0.5, h: float = 5.0, window: int = 48, min_periods: int | None = None
    ) -> None:
        super().__init__()
        self.k = float(k)
        self.h = float(h)
        self.window = int(window)
        self.min_periods = int(min_periods if min_periods is not None else max(3, window // 4))
        self._moments = RollingMoments(self.window)
        self._runner = Blocked(_BLOCK, 1, (0.0, 0.0), self._block, out_channels=3)

    def set_params(self, **params: float) -> None:
        # k and h live inside the recursion: commit what was computed with the
        # old values before the new ones apply.
        self._runner.seal()
        super().set_params(**params)

    def _block(self, state: tuple[float, ...], z: FloatArray) -> tuple[FloatArray, tuple[float, ...]]:
        z = z[0]
        n = z.size
        up = np.empty(n)
        down = np.empty(n)
        alarm = np.zeros(n)
        s_up, s_down = state
        start = 0
        while start < n:
            seg = z[start:]
            u = _lindley(s_up, seg - self.k)
            d = _lindley(s_down, -seg - self.k)
            over = np.flatnonzero((u > self.h) | (d > self.h))
            stop = n if over.size == 0 else start + int(over[0]) + 1
            up[start:stop] = u[: stop - start]
            down[start:stop] = d[: stop - start]
            if over.size == 0:
                s_up, s_down = float(u[-1]), float(d[-1])
            else:
                alarm[stop - 1] = 1.0
                s_up = s_down = 0.0  # restart after an alarm
            start = stop
        return np.stack((up, down, alarm)), (s_up, s_down)

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        count, mean, var = self._moments.step(x)
        z = np.where(count >= self.min_periods, (x - mean) / guarded_sigma(mean, var), 0.0)
        up, down, alarm = self._runner.run(z[None, :])
        self.detail = {"up": up, "down": down, "alarm": alarm, "mean": mean}
        return np.maximum(up, down) / self.h

    @property
    def statistic(self) -> tuple[float, float]:
        """(S+, S-) after the last value."""
        up, down = self._runner.current_state()
        return up, down

    def reason(self, i: int, value: float, unit: str) -> str:
        up, down = self.detail["up"][i], self.detail["down"][i]
        word, s = ("upward", up) if up >= down else ("downward", down)
        return (
            f"CUSUM {word} shift: S={s:.1f} σ over h={self.h:g} "
            f"(baseline {self.detail['mean'][i]:.4g} {unit})"
        ).replace("  ", " ")
