"""Stuck sensors: a run of identical readings far longer than this series' usual run.

The score of a reading is its run length (identical readings in a row, the
current one included) over `factor` times the usual run: the longest
completed run so far, not counting runs at the series' running minimum or
maximum (a head count at 0 all night, no rain, a gauge pegged at its top
are rest states, not faults) nor runs that were themselves flagged (a
fault does not teach what is usual). 1.0 is the threshold. A series that
has not yet completed `warm_runs` runs scores 0: it has not shown its
usual run yet.
"""

from __future__ import annotations

import numpy as np

from detectors._blocks import FloatArray
from detectors.base import Detector


class StuckRun(Detector):
    name = "stuck"
    threshold_name = "factor"

    def __init__(self, factor: float = 3.0, min_usual: int = 3, warm_runs: int = 48) -> None:
        super().__init__()
        self.factor = float(factor)
        self.min_usual = int(min_usual)
        self.warm_runs = int(warm_runs)
        self._last = np.nan  # the previous reading
        self._run = 0  # its run length so far
        self._runs = 0  # completed runs
        self._usual = 0  # longest completed, unflagged run away from the extremes
        self._lo = np.inf  # running minimum and maximum
        self._hi = -np.inf

    def _step(self, x: FloatArray, t: FloatArray | None) -> FloatArray:
        n = x.size
        if n == 0:
            self.detail = {"run": np.zeros(0), "usual": np.zeros(0)}
            return np.zeros(0)
        lo = np.minimum.accumulate(x)
        np.minimum(lo, self._lo, out=lo)
        hi = np.maximum.accumulate(x)
        np.maximum(hi, self._hi, out=hi)
        change = np.empty(n, dtype=bool)
        change[0] = x[0] != self._last  # NaN before the first reading: a change
        np.not_equal(x[1:], x[:-1], out=change[1:])
        done = np.flatnonzero(change)  # each change completes the run before it
        if done.size == n:
            run = np.ones(n)  # nothing repeats (the common case for a continuous series)
        else:
            pos = np.arange(n)
            start = np.maximum.accumulate(np.where(change, pos, -1))
            run = np.where(start >= 0, pos - start + 1, self._run + pos + 1).astype(np.float64)
        first_done = 1 if (self._run == 0 and done.size and done[0] == 0) else 0  # the very first reading
        done = done[first_done:]
        # The completed runs longer than the usual one, and whether each sat at an extreme.
        u = self._usual
        has_head = bool(done.size) and done[0] == 0  # a change at 0 completes the previous call's run
        off = int(has_head)
        inner = done[off:]
        if inner.size and inner.size == n - 1:
            # every reading from the second on changed: runs of 1 but the one ending at position 0
            pick = [0] if run[0] > u else []
            if u < 1 and inner.size > 1:
                pick.append(1)
            cand = np.array(pick, dtype=np.int64) + off
        else:
            cand = np.flatnonzero(run[inner - 1] > u) + off
        if has_head and self._run > u:
            cand = np.concatenate(([0], cand))
        completed = np.zeros(done.size)
        if cand.size:
            completed[cand] = run[np.maximum(done[cand] - 1, 0)]
            if has_head and cand[0] == 0:
                completed[0] = self._run
        u_at = [(0, u)]
        if cand.size:
            at = done[cand]
            value = np.where(at > 0, x[np.maximum(at - 1, 0)], self._last)
            before_lo = np.where(at > 0, lo[np.maximum(at - 1, 0)], self._lo)
            before_hi = np.where(at > 0, hi[np.maximum(at - 1, 0)], self._hi)
            keep = ~((value <= before_lo) | (value >= before_hi))
            cand, at = cand[keep], at[keep]
            lengths = completed[cand]
            i = 0
            while i < cand.size:
                # the next run longer than the usual one: few, however many runs there are
                ahead = np.flatnonzero(lengths[i:] > u)
                if ahead.size == 0:
                    break
                i += int(ahead[0])
                length = int(lengths[i])
                if length <= self.factor * max(u, self.min_usual):
                    u = length
                    u_at.append((int(at[i]), u))
                i += 1
        if len(u_at) == 1:
            usual: FloatArray = np.full(n, float(u))
        else:
            usual = np.empty(n)
            for (p, val), (q, _) in zip(u_at, [*u_at[1:], (n, 0)], strict=True):
                usual[p:q] = val
        score = run / (self.factor * np.maximum(usual, self.min_usual))
        score[(x <= lo) | (x >= hi)] = 0.0
        if self._runs < self.warm_runs:
            runs_before = self._runs + np.cumsum(change) - first_done
            score[runs_before < self.warm_runs] = 0.0
        self._usual = u
        self._runs += int(done.size)
        self._run = int(run[-1])
        self._last = float(x[-1])
        self._lo, self._hi = float(lo[-1]), float(hi[-1])
        self.detail = {"run": run, "usual": usual}
        return score

    def _step_one(self, x: float, t: float | None) -> float:
        last = self._last
        if x == last:
            self._run += 1
        else:
            if self._run:
                rest = last <= self._lo or last >= self._hi
                u = self._usual
                if not rest and u < self._run <= self.factor * max(u, self.min_usual):
                    self._usual = self._run
                self._runs += 1
            self._run = 1
        self._lo = x if x < self._lo else self._lo
        self._hi = x if x > self._hi else self._hi
        self._last = x
        usual = self._usual
        self.detail = {"run": [float(self._run)], "usual": [float(usual)]}
        if x <= self._lo or x >= self._hi or self._runs < self.warm_runs:
            return 0.0
        return self._run / (self.factor * (usual if usual >= self.min_usual else self.min_usual))

    def reason(self, i: int, value: float, unit: str) -> str:
        run, usual = int(self.detail["run"][i]), int(self.detail["usual"][i])
        return (f"{value:.4g} {unit} repeated {run} readings in a row; its longest usual run is "
                f"{max(usual, self.min_usual)} (stuck sensor?)").replace("  ", " ")
