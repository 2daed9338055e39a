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
_GUESS_EVERY = 128  # segments are guessed where a value in this many would alarm from S = 0


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
        # Guessing the segments after an alarm (`_after_alarms`) pays where alarms are frequent.
        guess = self.k != 0.0 and n - others.size >= max(2, n // _GUESS_EVERY)
        singles = np.flatnonzero(single) if guess else others
        i = 0
        while i < n:
            if self._seg is None and self._start is _RESET:
                if single[i]:
                    j = int(others[np.searchsorted(others, i)]) if others.size and others[-1] > i else n
                    out[:, i:j] = first[:, i:j]
                    alarm[i:j] = 1.0
                    self._pos = (self._pos + j - i) % _BLOCK
                    i = j
                    continue
                if guess:
                    j = self._after_alarms(steps, first, single, singles, out, alarm, i,
                                           i + min(n - i, _BLOCK - self._pos))
                    if j > i:
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

    def _after_alarms(self, steps: FloatArray, first: FloatArray, single: np.ndarray, singles: np.ndarray,
                      out: FloatArray, alarm: FloatArray, i: int, end: int) -> int:
        """After an alarm, at i (no alarm at its first value) up to `end` (at most the block's end): the
        segments that come next, guessed and computed at once, as far as the guess holds. Returns
        where `_cusum` goes on (i: nothing done), the state set for there.

        Where a fresh segment would alarm at its first value (`single`), a segment under way alarms
        too, as a rule (its S is then at least about that step): the guess is that each segment from
        i ends with an alarm at the next such position, the run of them alarms one by one, and a
        fresh segment starts after it. The guessed segments are independent (each starts from
        S = 0), so their running sums and minima are computed together, a row each, with the same
        operations as the segment loop's; a guess is kept only where the numbers confirm it (the
        segment's first alarm where it was guessed), and the segment that breaks it keeps what it
        computed up to its own alarm, or is left under way."""
        lo, hi = np.searchsorted(singles, (i + 1, end))
        ahead = singles[lo:hi]
        if ahead.size == 0:
            return i
        breaks = np.flatnonzero(np.diff(ahead) != 1) + 1
        run_first = ahead[np.concatenate(([0], breaks))]
        run_last = ahead[np.concatenate((breaks - 1, [ahead.size - 1]))]
        begin = np.concatenate(([i], run_last + 1))
        stop = np.concatenate((run_first, [end - 1]))  # each guessed segment's last position
        # The segment after the last run of alarms is left to the segment loop: it is often the
        # longest, and every guessed segment is computed over the longest one's width.
        tail = False
        begin, stop = begin[:-1], stop[:-1]
        count = begin.size
        lengths = stop - begin + 1
        width = int(lengths.max())
        where = begin[:, None] + np.arange(width)
        np.minimum(where, end - 1, out=where)  # past a segment's end: values of no use, read within the block
        ud = steps[:, where]  # (2, segments, width)
        np.cumsum(ud, axis=2, out=ud)
        ends = (slice(None), np.arange(count), lengths - 1)
        raw_end = ud[ends]  # each segment's running sum at its last position
        ud += 0.0  # + the fresh segment's start S = 0, as the segment loop adds it
        m = np.minimum.accumulate(ud, axis=2)
        np.minimum(m, 0.0, out=m)
        ud -= m
        over = (ud > self.h).any(axis=0)
        over &= np.arange(width) < lengths[:, None]
        hit = over.any(axis=1)
        at = np.where(hit, over.argmax(axis=1), width)  # each segment's first alarm (width: none)
        guessed = lengths - 1
        if tail:
            guessed[-1] = width  # the last segment holds when it does not alarm at all
        wrong = np.flatnonzero(at != guessed)
        good = int(wrong[0]) if wrong.size else count
        # the confirmed segments and the runs of alarms after them, and what a wrong one computed
        upto = min(good + 1, count)
        keep = np.arange(width) < np.minimum(lengths, at + 1)[:upto, None]
        out[:, where[:upto][keep]] = ud[:, :upto][:, keep]
        runs = min(good, run_first.size)
        if runs:
            done = ahead[: np.searchsorted(ahead, run_last[runs - 1], side="right")]
            alarm[done] = 1.0
            later = done[1:][np.diff(done) == 1]  # within a run: alarms at a fresh segment's first value
            out[:, later] = first[:, later]
        if good == count and not tail:  # every guess held: on after the last run of alarms
            self._seg, self._start = None, _RESET
            return int(run_last[count - 1]) + 1
        j = min(good, count - 1)
        if at[j] < lengths[j]:  # an alarm where none was guessed, or sooner
            stop_at = int(begin[j] + at[j])
            alarm[stop_at] = 1.0
            self._seg, self._start = None, _RESET
            return stop_at + 1
        # the segment goes on past its last position here
        after = int(stop[j]) + 1
        if self._pos + (after - i) == _BLOCK:  # the block's end: the next starts from this S
            self._start, self._seg = (float(ud[0, j, lengths[j] - 1]), float(ud[1, j, lengths[j] - 1])), None
        else:
            self._seg = [0.0, 0.0, float(raw_end[0, j]), float(raw_end[1, j]), float(m[0, j, lengths[j] - 1]),
                         float(m[1, j, lengths[j] - 1])]
        return after

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
        if len(group) > 1 and head.k != 0.0 and all(det._pos == head._pos for det in group):
            ud, alarm = Cusum._cusum_rows(group, z)
        else:
            ud, alarm = np.empty((len(group), 2, z.shape[1])), np.empty(z.shape)
            for v, det in enumerate(group):
                ud[v], alarm[v] = det._cusum(z[v])
        for v, det in enumerate(group):
            det.detail = {"up": ud[v, 0], "down": ud[v, 1], "alarm": alarm[v], "mean": mean[v]}
        np.maximum(ud[:, 0], ud[:, 1], out=score)
        score /= head.h
        return score

    @staticmethod
    def _cusum_rows(group: list[Cusum], z: FloatArray) -> tuple[FloatArray, FloatArray]:
        """`_cusum` of several CUSUMs at the same position in their blocks (and the same k != 0, h),
        z (len(group), n): (S+ and S- (len(group), 2, n), alarms (len(group), n)).

        Block by block, the segment under way in every row (from a block's start, or continued) is
        computed for all rows at once, as `_cusum` computes a row's; a row that alarms in the block
        goes on alone from the value after its alarm (`_cusum` over the rest of the block). A fresh
        segment is a continued one whose running sum is 0.0 and running minimum +inf: 0.0 + a step
        is the step (never -0.0, k != 0) and min(+inf, c) is c, so the numbers are the same."""
        size, n = z.shape
        head = group[0]
        k, h = head.k, head.h
        steps = np.empty((size, 2, n))
        np.subtract(z, k, out=steps[:, 0])
        np.negative(z, out=steps[:, 1])
        steps[:, 1] -= k
        out, alarm = np.empty((size, 2, n)), np.zeros((size, n))
        width = min(n, _BLOCK) + 1
        sums, lows = np.empty((size, 2, width)), np.empty((size, 2, width))
        state = np.empty((3, size, 2))  # per row: its segment's start S, running sum and running minimum
        pos = head._pos
        i = 0
        while i < n:
            size_r = min(n - i, _BLOCK - pos)
            for v, det in enumerate(group):
                seg = det._seg
                if seg is None:
                    state[0, v] = det._start
                    state[1, v] = 0.0
                    state[2, v] = np.inf
                else:
                    state[:, v] = ((seg[0], seg[1]), (seg[2], seg[3]), (seg[4], seg[5]))
            buf = sums[:, :, : size_r + 1]
            buf[:, :, 0] = state[1]
            buf[:, :, 1:] = steps[:, :, i : i + size_r]
            np.cumsum(buf, axis=2, out=buf)
            raw = buf[:, :, 1:]
            ud = out[:, :, i : i + size_r]
            np.add(raw, state[0][:, :, None], out=ud)
            mb = lows[:, :, : size_r + 1]
            mb[:, :, 0] = state[2]
            mb[:, :, 1:] = ud
            np.minimum.accumulate(mb, axis=2, out=mb)
            m = mb[:, :, 1:]
            np.minimum(m, 0.0, out=m)
            ud -= m
            over = (ud > h).any(axis=1)  # (rows, values)
            hit = over.any(axis=1).tolist()
            ends = pos + size_r == _BLOCK
            starts, lasts, mins, news = (state[0].tolist(), raw[:, :, -1].tolist(), m[:, :, -1].tolist(),
                                         ud[:, :, -1].tolist())
            for v, det in enumerate(group):
                if hit[v]:
                    at = int(over[v].argmax())
                    alarm[v, i + at] = 1.0
                    det._seg, det._start = None, _RESET  # restart after an alarm
                    det._pos = (pos + at + 1) % _BLOCK
                    if at + 1 < size_r:
                        out[v, :, i + at + 1 : i + size_r], alarm[v, i + at + 1 : i + size_r] = det._cusum(
                            z[v, i + at + 1 : i + size_r])
                    continue
                if ends:
                    det._start, det._seg = (news[v][0], news[v][1]), None
                else:
                    det._seg = [starts[v][0], starts[v][1], lasts[v][0], lasts[v][1], mins[v][0], mins[v][1]]
                det._pos = (pos + size_r) % _BLOCK
            pos = (pos + size_r) % _BLOCK
            i += size_r
        return out, alarm

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
