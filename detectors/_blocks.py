"""Chunk-invariant streaming primitives.

Every detector here must give bit-identical results whether a series arrives
one value at a time or a million at once. Floating-point sums depend on the
order of additions, so a running `cumsum` restarted at each call would not
do. Instead the stream is cut into blocks aligned to absolute positions
(0, B, 2B, ...). Each block is computed from the state at its start and the
values inside it only, with prefix-consistent numpy operations (element-wise
arithmetic and sequential `cumsum`/`accumulate`), so the first r outputs of a
block are the same whether the block is complete or not. A partial block is
kept and recomputed when more values arrive; state is committed only at
block boundaries.
"""

from __future__ import annotations

from array import array

import numpy as np

FloatArray = np.ndarray


def as_float_array(values: object) -> FloatArray:
    return np.ascontiguousarray(values, dtype=np.float64).reshape(-1)


class RollingMoments:
    """Count, mean and variance of the previous `window` values (current excluded).

    Blocks have the size of the window, so the window ending just before
    position i is a suffix of the previous block plus a prefix of the
    current one: `suffix_sum(prev, k) + prefix_sum(cur, k)`, with no
    subtraction and hence no cancellation. Values are shifted by the first
    value seen, which keeps `E[x^2] - E[x]^2` accurate for series such as
    pressure (about 1000 with a spread of 0.1).

    State is two blocks of doubles at most (the previous full block and the
    current partial one, `array('d')`, allocated on first use) and six
    running sums for `push()`: 2 * window * 8 bytes, 3 KB for 192 points.
    """

    __slots__ = ("window", "ref", "_prev", "_cur", "_seen", "_run")

    def __init__(self, window: int) -> None:
        if window < 2:
            raise ValueError(f"window must be at least 2, got {window}")
        self.window = window
        self.ref: float | None = None
        self._prev: array | None = None  # shifted values of the previous full block (None: zeros)
        self._cur: array | None = None  # shifted values of the current partial block
        self._seen = 0  # values before this call
        # push() state: [prefix of prev, of prev^2, total of prev, of prev^2, prefix of cur, of cur^2]
        # at the current position, each summed in the order np.cumsum sums (see _window_sums).
        self._run: list[float] | None = None

    def step(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(count, mean, variance) of the window before each value of x (finite values only)."""
        count, mean, var = RollingMoments.step_rows([self], x[None, :])
        return count, mean[0], var[0]

    def phase(self) -> tuple[int, int]:
        """What `step_rows` needs equal across the windows it steps together: (window, values seen)."""
        return self.window, self._seen

    @staticmethod
    def step_rows(group: list[RollingMoments], x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """`step` for several windows of the same `phase` at once, x (len(group), n): (count (n,), mean and
        variance (len(group), n)), each row what its window's own step gives (the same operations)."""
        size, n = x.shape
        if n == 0:
            empty = np.zeros((size, 0))
            return np.zeros(0), empty, empty
        head = group[0]
        w, seen = head.phase()
        for v, m in enumerate(group):
            if m.phase() != (w, seen):
                raise ValueError("RollingMoments.step_rows: windows of different phases")
            if m.ref is None:
                m.ref = float(x[v, 0])
        refs = np.array([[m.ref] for m in group])
        cur = head._cur
        r = len(cur) if cur is not None else 0
        total_len = r + n
        rows = -(-total_len // w)
        values = np.zeros((size, rows + 1, w))
        flat = values.reshape(size, -1)
        for v, m in enumerate(group):
            if m._prev is not None:
                values[v, 0] = np.frombuffer(m._prev)
            if r:
                flat[v, w : w + r] = np.frombuffer(m._cur)  # type: ignore[arg-type]
        np.subtract(x, refs, out=flat[:, w + r : w + total_len])  # written in place: no temporary
        body = flat[:, w : w + total_len]
        total = RollingMoments._window_sums(values)
        squares = RollingMoments._window_sums(np.multiply(values, values))

        take = slice(r, r + n)
        # Values never go missing inside (NaN is filtered out before), so the
        # count is just how many came before, capped at the window.
        if seen >= w:
            count = np.full(n, float(w))
            safe: FloatArray | float = float(w)  # dividing by a scalar w gives the same numbers, faster
        else:
            count = np.minimum(np.arange(seen, seen + n, dtype=np.float64), w)
            safe = np.maximum(count, 1.0)
        mean = total.reshape(size, -1)[:, take] / safe
        var = squares.reshape(size, -1)[:, take] / safe
        var -= mean * mean
        np.maximum(var, 0.0, out=var)
        mean += refs

        full = total_len // w
        for v, m in enumerate(group):
            if full:
                m._prev = array("d", values[v, full].tobytes())
            m._cur = array("d", body[v, full * w :].tobytes())
            m._seen = seen + n
            m._run = None
        return count, mean, var

    def push(self, x: float) -> tuple[float, float, float]:
        """step() for one value, in plain floats: the same operations in the same order."""
        if self.ref is None:
            self.ref = x
        run = self._run
        if run is None:
            run = self._run = self._rebuild()
        w = self.window
        cur = self._cur
        if cur is None:
            cur = self._cur = array("d")
        r = len(cur)
        d = x - self.ref
        count = float(self._seen if self._seen < w else w)
        self._seen += 1
        safe = count if count >= 1.0 else 1.0
        mean = ((run[2] - run[0]) + run[4]) / safe
        var = ((run[3] - run[1]) + run[5]) / safe - mean * mean
        var = var if var >= 0.0 else 0.0
        mean = mean + self.ref
        cur.append(d)
        if r + 1 == w:
            # The block is complete: its running sums are its totals (np.cumsum's last element).
            total1 = d if r == 0 else run[4] + d
            total2 = d * d if r == 0 else run[5] + d * d
            self._prev, self._cur = cur, array("d")
            run[:] = [0.0, 0.0, total1, total2, 0.0, 0.0]
        else:
            prev = self._prev
            p = prev[r] if prev is not None else 0.0
            run[0] = p if r == 0 else run[0] + p
            run[1] = p * p if r == 0 else run[1] + p * p
            run[4] = d if r == 0 else run[4] + d
            run[5] = d * d if r == 0 else run[5] + d * d
        return count, mean, var

    def _rebuild(self) -> list[float]:
        """push() state after a batch step: the prefix sums np.cumsum gives, at the current position."""
        r = len(self._cur) if self._cur is not None else 0
        out = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        if self._prev is not None:
            prev = np.frombuffer(self._prev)
            c1, c2 = np.cumsum(prev), np.cumsum(prev * prev)
            out[2], out[3] = float(c1[-1]), float(c2[-1])
            if r:
                out[0], out[1] = float(c1[r - 1]), float(c2[r - 1])
        if r:
            cur = np.frombuffer(self._cur)
            out[4], out[5] = float(np.cumsum(cur)[-1]), float(np.cumsum(cur * cur)[-1])
        return out

    def nbytes(self) -> int:
        """Bytes held by the value buffers."""
        return sum(b.itemsize * len(b) for b in (self._prev, self._cur) if b is not None)

    @staticmethod
    def _window_sums(blocks: FloatArray) -> FloatArray:
        """For rows 1.. (of the last two axes), the sum of the `w` values before each position.

        One sequential cumsum per row gives both parts: the exclusive prefix
        sums of the current row, and the suffix sums of the previous row as
        its total minus its exclusive prefix.
        """
        before = np.empty_like(blocks)
        before[..., 0] = 0.0
        np.cumsum(blocks[..., :-1], axis=-1, out=before[..., 1:])
        total = before[..., :-1, -1:] + blocks[..., :-1, -1:]
        out = np.subtract(total, before[..., :-1, :])
        out += before[..., 1:, :]  # (total - before) + after, the same order as ever, one array fewer
        return out


class _EwmaTables:
    """The per-lambda constants of Ewma, shared by every instance with that lambda."""

    __slots__ = ("block", "memoryless", "pw", "ainv", "gain", "pw_l", "ainv_l", "gain_l")

    def __init__(self, lam: float) -> None:
        a = 1.0 - lam
        # a**-B must stay far from overflow: B*log10(1/a) <= 150.
        self.block = 1024 if a == 0.0 else int(min(1024, max(1, 150 // max(-np.log10(a), 1e-9))))
        k = np.arange(self.block, dtype=np.float64)
        self.memoryless = a == 0.0
        apow = np.power(a, k)  # a^k
        self.pw = apow * a  # a^(k+1): weight of the state before the block
        self.ainv = np.power(a, -k) if a > 0.0 else np.zeros(self.block)
        self.gain = lam * apow
        self.pw_l, self.ainv_l, self.gain_l = self.pw.tolist(), self.ainv.tolist(), self.gain.tolist()


_EWMA_TABLES: dict[float, _EwmaTables] = {}


class Ewma:
    """y_t = (1 - lam) * y_{t-1} + lam * x_t, started at the first value.

    Within an aligned block, y_k = a^(k+1) y_start + lam a^k sum_{s<=k} a^-s x_s,
    the sum a sequential cumsum. The state is the level before the block,
    the position in it and the running sum (np.cumsum continued from it
    gives the same numbers as over the whole block): no values are kept.
    """

    __slots__ = ("lam", "_tab", "_started", "_start", "_k", "_acc")

    def __init__(self, lam: float) -> None:
        if not 0.0 < lam <= 1.0:
            raise ValueError(f"EWMA lambda must be in (0, 1], got {lam}")
        self.lam = lam
        tab = _EWMA_TABLES.get(lam)
        if tab is None:
            tab = _EWMA_TABLES[lam] = _EwmaTables(lam)
        self._tab = tab
        self._started = False
        self._start = 0.0  # y before the current block
        self._k = 0  # position in the current block
        self._acc = 0.0  # running cumsum of x * a^-s over the block so far (when _k > 0)

    @property
    def block(self) -> int:
        return self._tab.block

    def step(self, x: FloatArray) -> FloatArray:
        """The EWMA after each value of x (finite values only)."""
        return Ewma.step_rows([self], x[None, :])[0]

    def phase(self) -> tuple[float, int]:
        """What `step_rows` needs equal across the EWMAs it steps together: (lambda, position in the block)."""
        return self.lam, self._k

    @staticmethod
    def step_rows(group: list[Ewma], x: FloatArray) -> FloatArray:
        """`step` for several EWMAs of the same `phase` at once, x (len(group), n) -> (len(group), n), each
        row what its EWMA's own step gives (the same operations; only the chains of block starts, over
        plain floats, run a row at a time)."""
        size, n = x.shape
        if n == 0:
            return np.zeros((size, 0))
        head = group[0]
        tab, k = head._tab, head._k
        for v, e in enumerate(group):
            if e._tab is not tab or e._k != k:
                raise ValueError("Ewma.step_rows: EWMAs of different phases")
            if not e._started:
                # Start at the first value: y_{-1} = x_0 makes y_0 = x_0.
                e._start = float(x[v, 0])
                e._started = True
        if tab.memoryless:
            return x.copy()
        b = tab.block
        out = np.empty((size, n))
        starts = [e._start for e in group]
        i = 0
        if k:
            m = min(n, b - k)
            terms = np.empty((size, m + 1))
            terms[:, 0] = [e._acc for e in group]
            np.multiply(x[:, :m], tab.ainv[k : k + m], out=terms[:, 1:])
            acc = np.cumsum(terms, axis=1)[:, 1:]
            out[:, :m] = tab.pw[k : k + m] * np.array(starts)[:, None] + tab.gain[k : k + m] * acc
            i = m
            if k + m == b:
                starts, k = out[:, m - 1].tolist(), 0
            else:
                k = k + m
                for e, a in zip(group, acc[:, -1].tolist(), strict=True):
                    e._acc = a
        full = (n - i) // b
        if full:
            # All full blocks at once: per row, the same sequential cumsum and products
            # as a single block; only the chain of block starts is a loop, over plain floats.
            rows = x[:, i : i + full * b].reshape(size, full, b)
            part = tab.gain * np.cumsum(rows * tab.ainv, axis=2)
            carry = tab.pw_l[-1]
            chain = np.empty((size, full))
            for v, lasts in enumerate(part[:, :, -1].tolist()):
                start = starts[v]
                for f, last in enumerate(lasts):
                    chain[v, f] = start
                    start = carry * start + last
                starts[v] = start
            out[:, i : i + full * b] = (tab.pw * chain[:, :, None] + part).reshape(size, -1)
            i += full * b
        if i < n:
            r = n - i
            acc = np.cumsum(x[:, i:] * tab.ainv[:r], axis=1)
            out[:, i:] = tab.pw[:r] * np.array(starts)[:, None] + tab.gain[:r] * acc
            k = r
            for e, a in zip(group, acc[:, -1].tolist(), strict=True):
                e._acc = a
        for e, start in zip(group, starts, strict=True):
            e._start, e._k = start, k
        return out

    def push(self, x: float) -> float:
        """step() for one value, in plain floats."""
        if not self._started:
            self._start = x
            self._started = True
        tab = self._tab
        if tab.memoryless:
            return x
        k = self._k
        acc = x * tab.ainv_l[0] if k == 0 else self._acc + x * tab.ainv_l[k]
        y = tab.pw_l[k] * self._start + tab.gain_l[k] * acc
        if k + 1 == tab.block:
            self._start, self._k = y, 0
        else:
            self._k, self._acc = k + 1, acc
        return y


def warm_where(count: FloatArray, min_periods: int, values: FloatArray) -> FloatArray:
    """values where the window held min_periods values, else 0 (counts only grow)."""
    if count.size and count[0] >= min_periods:
        return values
    return np.where(count >= min_periods, values, 0.0)


# The largest magnitude a detector takes as a reading: the widest physical range of the variable
# registry (`sources.variables`, the catch-all "value": +-1e12). Beyond it a value is no measurement
# but a fault (1e308 would overflow every sum of squares and poison the baselines for good), so it is
# treated as missing, as NaN and infinities are. A test holds the two bounds equal.
MAX_ABS = 1.0e12
# Times further than this from the epoch (|t| > 1e11 s, the year 5138) are no time either.
MAX_ABS_TIME = 1.0e11


def usable(value: float, t: float | None = None) -> bool:
    """True when a reading can be scored: a finite value within +-MAX_ABS at a finite time (if given)."""
    if not -MAX_ABS <= value <= MAX_ABS:  # False for NaN too
        return False
    return t is None or -MAX_ABS_TIME <= t <= MAX_ABS_TIME


def finite_positions(values: FloatArray, times: FloatArray | None = None) -> FloatArray | None:
    """Boolean mask of the usable readings (finite values within +-MAX_ABS, at finite times within
    +-MAX_ABS_TIME when times are given), or None when all are usable (the common case)."""
    with np.errstate(invalid="ignore"):
        mask = np.abs(values) <= MAX_ABS
        if times is not None:
            mask &= np.abs(times) <= MAX_ABS_TIME
    return None if mask.all() else mask


def scatter(mask: FloatArray | None, n: int, inner: FloatArray, fill: float = np.nan) -> FloatArray:
    """Put results computed on the finite values back at their positions."""
    if mask is None:
        return inner
    out = np.full(n, fill)
    out[mask] = inner
    return out
