"""Two-sided CUSUM on values standardised against an in-control baseline.

S+_t = max(0, S+_{t-1} + z_t - k) and S-_t = max(0, S-_{t-1} - z_t - k)
(Page 1954, "Continuous inspection schemes", Biometrika); an alarm when
either exceeds h, after which both restart at 0. Between resets the
recursion has a closed form, S_t = C_t - min(0, min_{j<=t} C_j) with C the
running sum of increments, computed with np.cumsum and
np.minimum.accumulate. Both continue from a carried state (the running
sum and minimum), so a batch that starts mid-segment gives the same numbers
as one that saw the whole segment, and no values are kept.
"""

from __future__ import annotations

import numpy as np

from detectors._blocks import FloatArray, RollingMoments, warm_where
from detectors.base import Detector
from detectors.zscore import guarded_sigma, guarded_sigma_one

_BLOCK = 1024  # the running sums restart from the current S every _BLOCK values (aligned)
_RESET = (0.0, 0.0)  # (S+, S-) after an alarm


class Cusum(Detector):
    name = "cusum"
    threshold_name = "h"

    def __init__(
        self, k: float = 0.5, h: float = 5.0, window: int = 48, min_periods: int | None = None,
        moments: bool = True,
    ) -> None:
        super().__init__()
        self.k = float(k)
        self.h = float(h)
        self.window = int(window)
        self.min_periods = int(min_periods if min_periods is not None else max(3, window // 4))
        self._moments = RollingMoments(self.window) if moments else None
        self._start = (0.0, 0.0)  # (S+, S-) a fresh segment starts from
        self._pos = 0  # position in the current block
        # The segment under way: [start S+, start S-, raw sum+, raw sum-, running min C+, C-]; None: fresh.
        self._seg: list[float] | None = None

    def set_params(self, **params: float) -> None:
        # k and h live inside the recursion: what was computed with the old values stays,
        # and a fresh segment (and block grid) starts here from the current S.
        self._start = self._state_now()
        self._seg = None
        self._pos = 0
        super().set_params(**params)

    def _state_now(self) -> tuple[float, float]:
        seg = self._seg
        if seg is None:
            return self._start
        c_up, c_down = seg[2] + seg[0], seg[3] + seg[1]
        return c_up - (seg[4] if seg[4] <= 0.0 else 0.0), c_down - (seg[5] if seg[5] <= 0.0 else 0.0)

    def _cusum(self, z: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(S+ and S- (2, n), alarm (n,)) over z.

        Segment by segment (each ends at an alarm or at a block's end), S+ and S- are computed over
        the rest of the block as if no alarm came, in place in the output (a segment after an alarm
        overwrites what followed it): the running sums of the steps (z - k, -z - k) from the
        segment's start, each row summed and its running minimum taken in order, as for one side
        alone."""
        n = z.size
        out, alarm = np.empty((2, n)), np.zeros(n)
        steps = np.empty((2, n))
        np.subtract(z, self.k, out=steps[0])
        np.negative(z, out=steps[1])
        steps[1] -= self.k
        h = self.h
        width = min(n, _BLOCK) + 1
        raw_buf, min_buf, over_buf = np.empty((2, width)), np.empty((2, width)), np.empty((2, width), dtype=bool)
        minimum, subtract, greater = np.minimum, np.subtract, np.greater
        # A segment that starts after an alarm and alarms at its first value, computed for every
        # position at once: S = c - min(c, 0) with c = step + 0 (a one-value segment's sum).
        # Alarms come in runs (a shift fires again and again); such a run is passed in one go.
        first = steps + 0.0
        first -= minimum(first, 0.0)
        single = (first > h).any(axis=0)
        others = np.flatnonzero(~single)
        i = 0
        while i < n:
            if self._seg is None and self._start is _RESET and single[i]:
                j = int(others[np.searchsorted(others, i)]) if others.size and others[-1] > i else n
                out[:, i:j] = first[:, i:j]
                alarm[i:j] = 1.0
                self._pos = (self._pos + j - i) % _BLOCK
                i = j
                continue
            size = min(n - i, _BLOCK - self._pos)
            part = steps[:, i : i + size]
            ud = out[:, i : i + size]
            seg = self._seg
            if seg is None:
                s_up, s_down = self._start
                raw = raw_buf[:, :size]
                part.cumsum(axis=1, out=raw)
                np.add(raw, ((s_up,), (s_down,)), out=ud)
                m = min_buf[:, :size]
                minimum.accumulate(ud, axis=1, out=m)
            else:
                s_up, s_down = seg[0], seg[1]
                # continued from the segment's running sums and minima: the same numbers as one pass
                buf = raw_buf[:, : size + 1]
                buf[0, 0], buf[1, 0] = seg[2], seg[3]
                buf[:, 1:] = part
                buf.cumsum(axis=1, out=buf)
                raw = buf[:, 1:]
                np.add(raw, ((s_up,), (s_down,)), out=ud)
                mb = min_buf[:, : size + 1]
                mb[0, 0], mb[1, 0] = seg[4], seg[5]
                mb[:, 1:] = ud
                minimum.accumulate(mb, axis=1, out=mb)
                m = mb[:, 1:]
            minimum(m, 0.0, out=m)
            subtract(ud, m, out=ud)
            over = over_buf[:, :size]
            greater(ud, h, out=over)
            hit = over.any(axis=0)
            at = int(hit.argmax())
            if hit[at]:
                stop = at + 1
                alarm[i + at] = 1.0
                self._seg, self._start = None, _RESET  # restart after an alarm
            else:
                stop = size
                self._seg = [s_up, s_down, float(raw[0, -1]), float(raw[1, -1]), float(m[0, -1]), float(m[1, -1])]
            self._pos += stop
            if self._pos == _BLOCK:
                self._pos = 0
                if self._seg is not None:
                    self._start, self._seg = (float(ud[0, stop - 1]), float(ud[1, stop - 1])), None
            i += stop
        return out, alarm

    def _push_z(self, z: float) -> tuple[float, float, float]:
        """One step of _cusum, in plain floats: (S+, S-, alarm)."""
        seg = self._seg
        step_up, step_down = z - self.k, -z - self.k
        if seg is None:
            s_up, s_down = self._start
            raw_up, raw_down = step_up, step_down
            m_up, m_down = raw_up + s_up, raw_down + s_down
            c_up, c_down = m_up, m_down
        else:
            s_up, s_down = seg[0], seg[1]
            raw_up, raw_down = seg[2] + step_up, seg[3] + step_down
            c_up, c_down = raw_up + s_up, raw_down + s_down
            # np.minimum(a, b) is `a if a <= b else b`; mirrored so -0.0 matches too.
            m_up = seg[4] if seg[4] <= c_up else c_up
            m_down = seg[5] if seg[5] <= c_down else c_down
        up = c_up - (m_up if m_up <= 0.0 else 0.0)
        down = c_down - (m_down if m_down <= 0.0 else 0.0)
        alarm = 0.0
        if up > self.h or down > self.h:
            alarm = 1.0
            self._seg, self._start = None, (0.0, 0.0)
        else:
            self._seg = [s_up, s_down, raw_up, raw_down, m_up, m_down]
        self._pos += 1
        if self._pos == _BLOCK:
            self._pos = 0
            if self._seg is not None:
                self._start, self._seg = (up, down), None
        return up, down, alarm

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        assert self._moments is not None
        return self.score_from(x, *self._moments.step(x))

    def score_from(self, x: FloatArray, count: FloatArray, mean: FloatArray, var: FloatArray,
                   floor: FloatArray | None = None) -> FloatArray:
        return Cusum.score_rows([self], x[None, :], count, mean[None, :], var[None, :],
                                None if floor is None else floor[None, :])[0]

    @staticmethod
    def score_rows(group: list[Cusum], x: FloatArray, count: FloatArray, mean: FloatArray, var: FloatArray,
                   floor: FloatArray | None = None, z: FloatArray | None = None) -> FloatArray:
        """`score_from` for several CUSUMs with the same k, h and min_periods: x, mean, var, floor
        (len(group), n), count (n,). The z values are computed together (or given: a rolling
        z-score's on the same window, floor and min_periods is the same number), each CUSUM's
        recursion (with its own alarms) a row at a time."""
        head = group[0]
        if z is None:
            z = warm_where(count, head.min_periods, (x - mean) / guarded_sigma(mean, var, floor=floor))
        score = np.empty_like(z)
        for v, det in enumerate(group):
            ud, alarm = det._cusum(z[v])
            up, down = ud
            det.detail = {"up": up, "down": down, "alarm": alarm, "mean": mean[v]}
            np.maximum(up, down, out=score[v])
        score /= head.h
        return score

    def _step_one(self, x: float, t: float | None) -> float:
        assert self._moments is not None
        return self.score_one_from(x, *self._moments.push(x))

    def score_one_from(self, x: float, count: float, mean: float, var: float, floor: float = 0.0) -> float:
        z = (x - mean) / guarded_sigma_one(mean, var, floor=floor) if count >= self.min_periods else 0.0
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
