"""Two-sided CUSUM on values standardised against an in-control baseline.

S+_t = max(0, S+_{t-1} + z_t - k) and S-_t = max(0, S-_{t-1} - z_t - k);
an alarm when either exceeds h, after which both restart at 0. Between
resets the recursion has a closed form, S_t = C_t - min(0, min_{j<=t} C_j)
with C the running sum of increments, computed with np.minimum.accumulate.
"""

from __future__ import annotations

import numpy as np

from detectors._blocks import FloatArray, RollingMoments, warm_where
from detectors.base import Detector
from detectors.zscore import guarded_sigma, guarded_sigma_one

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
        self._start = (0.0, 0.0)  # (S+, S-) before the current block
        self._pending: list[float] = []  # standardised inputs of the current block
        # push() state: the running sums of the current segment (since the
        # block start or the last alarm), rebuilt from _pending when needed.
        self._run: list[float] | None = None

    def set_params(self, **params: float) -> None:
        # k and h live inside the recursion: commit what was computed with the
        # old values before the new ones apply; the block grid restarts here.
        self._start = self._state_now()
        self._pending = []
        self._run = None
        super().set_params(**params)

    def _block(self, state: tuple[float, float], z: FloatArray) -> tuple[FloatArray, tuple[float, float]]:
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

    def _state_now(self) -> tuple[float, float]:
        if not self._pending:
            return self._start
        return self._block(self._start, np.array(self._pending))[1]

    def _cusum(self, z: FloatArray) -> FloatArray:
        if z.size == 0:
            return np.zeros((3, 0))
        skip = len(self._pending)
        data = np.concatenate((self._pending, z)) if skip else z
        full = data.size // _BLOCK
        outs = []
        for i in range(full):
            out, self._start = self._block(self._start, data[i * _BLOCK : (i + 1) * _BLOCK])
            outs.append(out)
        rest = data[full * _BLOCK :]
        if rest.size:
            outs.append(self._block(self._start, rest)[0])
        self._pending = rest.tolist()
        self._run = None
        return (outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1))[:, skip:]

    def _push_z(self, z: float) -> tuple[float, float, float]:
        """One step of _block's closed form, in plain floats: (S+, S-, alarm)."""
        if self._run is None:
            self._run = [*self._start, 0.0, 0.0, np.inf, np.inf]
            for old in self._pending:
                self._advance(old)
        up, down, alarm = self._advance(z)
        self._pending.append(z)
        if len(self._pending) == _BLOCK:
            self._start = (0.0, 0.0) if alarm else (up, down)
            self._pending, self._run = [], None
        return up, down, alarm

    def _advance(self, z: float) -> tuple[float, float, float]:
        # run = [segment start S+, S-, cumsum+, cumsum-, running min of C+, C-]
        run = self._run
        assert run is not None
        run[2] += z - self.k
        run[3] += -z - self.k
        c_up, c_down = run[2] + run[0], run[3] + run[1]
        # np.minimum(a, b) is `a if a <= b else b`; mirrored so -0.0 matches too.
        run[4] = run[4] if run[4] <= c_up else c_up
        run[5] = run[5] if run[5] <= c_down else c_down
        up = c_up - (run[4] if run[4] <= 0.0 else 0.0)
        down = c_down - (run[5] if run[5] <= 0.0 else 0.0)
        if up > self.h or down > self.h:
            run[:] = [0.0, 0.0, 0.0, 0.0, np.inf, np.inf]
            return up, down, 1.0
        return up, down, 0.0

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        count, mean, var = self._moments.step(x)
        z = warm_where(count, self.min_periods, (x - mean) / guarded_sigma(mean, var))
        up, down, alarm = self._cusum(z)
        self.detail = {"up": up, "down": down, "alarm": alarm, "mean": mean}
        return np.maximum(up, down) / self.h

    def _step_one(self, x: float, t: float | None) -> float:
        count, mean, var = self._moments.push(x)
        z = (x - mean) / guarded_sigma_one(mean, var) if count >= self.min_periods else 0.0
        up, down, alarm = self._push_z(z)
        self.detail = {"up": [up], "down": [down], "alarm": [alarm], "mean": [mean]}
        return (up if up >= down else down) / self.h

    def reason(self, i: int, value: float, unit: str) -> str:
        up, down = self.detail["up"][i], self.detail["down"][i]
        word, s = ("upward", up) if up >= down else ("downward", down)
        return (
            f"CUSUM {word} shift: S={s:.1f} σ over h={self.h:g} "
            f"(baseline {self.detail['mean'][i]:.4g} {unit})"
        ).replace("  ", " ")
