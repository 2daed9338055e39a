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
    """

    def __init__(self, window: int) -> None:
        if window < 2:
            raise ValueError(f"window must be at least 2, got {window}")
        self.window = window
        self.ref: float | None = None
        self._prev = np.zeros(window)  # shifted values of the previous full block (zeros before any)
        self._cur: list[float] = []  # shifted values of the current partial block
        self._seen = 0  # values before this call
        # Running sums for push(): suffix sums of _prev and prefix sums of
        # _cur, rebuilt from those two after a batch step.
        self._sums: tuple[list[float], list[float], float, float] | None = None

    def step(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(count, mean, variance) of the window before each value of x (finite values only)."""
        n = x.size
        if n == 0:
            empty = np.zeros(0)
            return empty, empty, empty
        if self.ref is None:
            self.ref = float(x[0])
        w = self.window
        r = len(self._cur)
        size = r + n
        rows = -(-size // w)
        values = np.zeros((rows + 1, w))
        values[0] = self._prev
        flat = values.reshape(-1)
        flat[w : w + r] = self._cur
        np.subtract(x, self.ref, out=flat[w + r : w + size])  # written in place: no temporary
        body = flat[w : w + size]
        total = self._window_sums(values)
        squares = self._window_sums(np.multiply(values, values))

        take = slice(r, r + n)
        # Values never go missing inside (NaN is filtered out before), so the
        # count is just how many came before, capped at the window.
        if self._seen >= w:
            count = np.full(n, float(w))
            safe: FloatArray | float = float(w)  # dividing by a scalar w gives the same numbers, faster
        else:
            count = np.minimum(np.arange(self._seen, self._seen + n, dtype=np.float64), w)
            safe = np.maximum(count, 1.0)
        self._seen += n
        mean = total.reshape(-1)[take] / safe
        var = squares.reshape(-1)[take] / safe
        var -= mean * mean
        np.maximum(var, 0.0, out=var)
        mean += self.ref

        full = body.size // w
        if full:
            self._prev = values[full].copy()
        self._cur = body[full * w :].tolist()
        self._sums = None
        return count, mean, var

    def push(self, x: float) -> tuple[float, float, float]:
        """step() for one value, in plain floats: the same operations in the same order."""
        if self.ref is None:
            self.ref = x
        if self._sums is None:
            self._sums = self._rebuild()
        s1, s2, p1, p2 = self._sums
        w = self.window
        r = len(self._cur)
        d = x - self.ref
        count = float(self._seen if self._seen < w else w)
        self._seen += 1
        safe = count if count >= 1.0 else 1.0
        mean = (s1[r] + p1) / safe
        var = (s2[r] + p2) / safe - mean * mean
        var = var if var >= 0.0 else 0.0
        mean = mean + self.ref
        self._cur.append(d)
        if r + 1 == w:
            self._prev = np.array(self._cur)
            self._cur = []
            self._sums = self._rebuild()
        else:
            self._sums = (s1, s2, p1 + d, p2 + d * d)
        return count, mean, var

    def _rebuild(self) -> tuple[list[float], list[float], float, float]:
        prev = np.vstack((self._prev, np.zeros(self.window)))
        s1 = self._window_sums(prev)[0].tolist()  # suffix sums of the previous block
        s2 = self._window_sums(prev * prev)[0].tolist()
        p1 = p2 = 0.0
        for d in self._cur:
            p1 += d
            p2 += d * d
        return s1, s2, p1, p2

    @staticmethod
    def _window_sums(blocks: FloatArray) -> FloatArray:
        """For rows 1.., the sum of the `w` values before each position.

        One sequential cumsum per row gives both parts: the exclusive prefix
        sums of the current row, and the suffix sums of the previous row as
        its total minus its exclusive prefix.
        """
        before = np.empty_like(blocks)
        before[:, 0] = 0.0
        np.cumsum(blocks[:, :-1], axis=1, out=before[:, 1:])
        total = before[:-1, -1:] + blocks[:-1, -1:]
        out = np.subtract(total, before[:-1])
        out += before[1:]  # (total - before) + after, the same order as ever, one array fewer
        return out


class Ewma:
    """y_t = (1 - lam) * y_{t-1} + lam * x_t, started at the first value.

    Within an aligned block, y_k = a^(k+1) y_start + lam a^k sum_{s<=k} a^-s x_s,
    the sum a sequential cumsum.
    """

    def __init__(self, lam: float) -> None:
        if not 0.0 < lam <= 1.0:
            raise ValueError(f"EWMA lambda must be in (0, 1], got {lam}")
        self.lam = lam
        a = 1.0 - lam
        # a**-B must stay far from overflow: B*log10(1/a) <= 150.
        self.block = 1024 if a == 0.0 else int(min(1024, max(1, 150 // max(-np.log10(a), 1e-9))))
        k = np.arange(self.block, dtype=np.float64)
        self._memoryless = a == 0.0
        apow = np.power(a, k)  # a^k
        self._pw = apow * a  # a^(k+1): weight of the state before the block
        self._ainv = np.power(a, -k) if a > 0.0 else np.zeros(self.block)
        self._gain = lam * apow
        self._pw_l, self._ainv_l, self._gain_l = self._pw.tolist(), self._ainv.tolist(), self._gain.tolist()
        self._started = False
        self._start = 0.0  # y before the current block
        self._pending: list[float] = []  # inputs of the current block
        self._acc: float | None = None  # running cumsum for push()

    def _block(self, start: float, x: FloatArray) -> FloatArray:
        if self._memoryless:
            return x.copy()
        r = x.size
        acc = np.cumsum(x * self._ainv[:r])
        return self._pw[:r] * start + self._gain[:r] * acc

    def step(self, x: FloatArray) -> FloatArray:
        """The EWMA after each value of x (finite values only)."""
        if x.size == 0:
            return np.zeros(0)
        if not self._started:
            # Start at the first value: y_{-1} = x_0 makes y_0 = x_0.
            self._start = float(x[0])
            self._started = True
        skip = len(self._pending)
        data = np.concatenate((self._pending, x)) if skip else x
        b = self.block
        full = data.size // b
        outs = []
        if full and self._memoryless:
            outs.append(data[: full * b].copy())
            self._start = float(data[full * b - 1])
        elif full:
            # All full blocks at once: per row, the same sequential cumsum and products
            # as _block; only the chain of block starts is a loop, over plain floats.
            rows = data[: full * b].reshape(full, b)
            part = self._gain * np.cumsum(rows * self._ainv, axis=1)
            carry = self._pw_l[-1]
            starts = []
            start = self._start
            for last in part[:, -1].tolist():
                starts.append(start)
                start = carry * start + last
            self._start = start
            outs.append((self._pw * np.array(starts)[:, None] + part).reshape(-1))
        rest = data[full * b :]
        if rest.size:
            outs.append(self._block(self._start, rest))
        self._pending = rest.tolist()
        self._acc = None
        return (outs[0] if len(outs) == 1 else np.concatenate(outs))[skip:]

    def push(self, x: float) -> float:
        """step() for one value, in plain floats."""
        if not self._started:
            self._start = x
            self._started = True
        k = len(self._pending)
        if self._memoryless:
            y = x
        else:
            if self._acc is None:
                acc = 0.0
                for j, v in enumerate(self._pending):
                    acc += v * self._ainv_l[j]
                self._acc = acc
            self._acc += x * self._ainv_l[k]
            y = self._pw_l[k] * self._start + self._gain_l[k] * self._acc
        self._pending.append(x)
        if k + 1 == self.block:
            self._start, self._pending, self._acc = y, [], 0.0
        return y


def warm_where(count: FloatArray, min_periods: int, values: FloatArray) -> FloatArray:
    """values where the window held min_periods values, else 0 (counts only grow)."""
    if count.size and count[0] >= min_periods:
        return values
    return np.where(count >= min_periods, values, 0.0)


def finite_positions(values: FloatArray) -> FloatArray | None:
    """Boolean mask of finite values, or None when all are finite (the common case)."""
    mask = np.isfinite(values)
    return None if mask.all() else mask


def scatter(mask: FloatArray | None, n: int, inner: FloatArray, fill: float = np.nan) -> FloatArray:
    """Put results computed on the finite values back at their positions."""
    if mask is None:
        return inner
    out = np.full(n, fill)
    out[mask] = inner
    return out
