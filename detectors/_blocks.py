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

from collections.abc import Callable

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
        self._cur = np.zeros(0)  # shifted values of the current partial block
        self._seen = 0  # values before this call

    def step(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(count, mean, variance) of the window before each value of x (finite values only)."""
        n = x.size
        if n == 0:
            empty = np.zeros(0)
            return empty, empty, empty
        if self.ref is None:
            self.ref = float(x[0])
        w = self.window
        r = self._cur.size
        body = np.concatenate((self._cur, x - self.ref))
        rows = -(-body.size // w)
        values = np.zeros((rows + 1, w))
        values[0] = self._prev
        values.reshape(-1)[w : w + body.size] = body
        total = self._window_sums(values)
        squares = self._window_sums(values * values)

        take = slice(r, r + n)
        # Values never go missing inside (NaN is filtered out before), so the
        # count is just how many came before, capped at the window.
        count = np.minimum(np.arange(self._seen, self._seen + n, dtype=np.float64), w)
        self._seen += n
        safe = np.maximum(count, 1.0)
        mean = total.reshape(-1)[take] / safe
        var = np.maximum(squares.reshape(-1)[take] / safe - mean * mean, 0.0)
        mean = mean + self.ref

        full = body.size // w
        if full:
            self._prev = values[full].copy()
        self._cur = body[full * w :].copy()
        return count, mean, var

    @staticmethod
    def _window_sums(blocks: FloatArray) -> FloatArray:
        """For rows 1.., the sum of the `w` values before each position."""
        suffix = np.cumsum(blocks[:-1, ::-1], axis=1)[:, ::-1]
        prefix = np.zeros_like(blocks[1:])
        np.cumsum(blocks[1:, :-1], axis=1, out=prefix[:, 1:])
        return suffix + prefix


class Blocked:
    """Runs `block_fn(state, inputs) -> (outputs, end_state)` over aligned blocks.

    `inputs` and `outputs` are 2-D (channels x positions). `block_fn` must be
    prefix-consistent: its first r outputs may depend only on the state and
    the first r inputs.
    """

    def __init__(
        self,
        block: int,
        channels: int,
        state: tuple[float, ...],
        block_fn: Callable[[tuple[float, ...], FloatArray], tuple[FloatArray, tuple[float, ...]]],
        out_channels: int = 1,
    ) -> None:
        self.block = block
        self.state = state
        self._out_channels = out_channels
        self._fn = block_fn
        self._pending = np.zeros((channels, 0))

    def run(self, inputs: FloatArray) -> FloatArray:
        if inputs.shape[1] == 0:
            return np.zeros((self._out_channels, 0))
        data = np.concatenate((self._pending, inputs), axis=1) if self._pending.size else inputs
        b = self.block
        full = data.shape[1] // b
        outs = []
        for i in range(full):
            out, self.state = self._fn(self.state, data[:, i * b : (i + 1) * b])
            outs.append(out)
        rest = data[:, full * b :]
        if rest.shape[1]:
            out, _ = self._fn(self.state, rest)
            outs.append(out)
        skip = self._pending.shape[1]
        self._pending = rest.copy()
        result = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)
        return result[:, skip:]

    def current_state(self) -> tuple[float, ...]:
        """The state after every value given so far."""
        if not self._pending.shape[1]:
            return self.state
        return self._fn(self.state, self._pending)[1]

    def seal(self) -> None:
        """Commit the partial block, so parameters can change from here on.

        Both a streaming and a batch caller seal at the same position, so
        they stay identical; the block grid restarts at that position.
        """
        if self._pending.shape[1]:
            self.state = self.current_state()
            self._pending = self._pending[:, :0]


class Ewma:
    """y_t = (1 - lam) * y_{t-1} + lam * x_t, started at the first value."""

    def __init__(self, lam: float) -> None:
        if not 0.0 < lam <= 1.0:
            raise ValueError(f"EWMA lambda must be in (0, 1], got {lam}")
        self.lam = lam
        a = 1.0 - lam
        # a**-B must stay far from overflow: B*log10(1/a) <= 150.
        block = 1024 if a == 0.0 else int(min(1024, max(1, 150 // max(-np.log10(a), 1e-9))))
        k = np.arange(block, dtype=np.float64)
        self._apow = np.power(a, k)  # a^k
        self._pw = self._apow * a  # a^(k+1): weight of the state before the block
        self._ainv = np.power(a, -k) if a > 0.0 else np.zeros(block)
        self._gain = lam * self._apow
        self._started = False
        self._runner = Blocked(block, 1, (0.0,), self._block)

    def _block(self, state: tuple[float, ...], x: FloatArray) -> tuple[FloatArray, tuple[float]]:
        r = x.shape[1]
        if self._ainv[0] == 0.0:  # lam == 1: no memory
            return x.copy(), (float(x[0, -1]),)
        acc = np.cumsum(x[0] * self._ainv[:r])
        y = self._pw[:r] * state[0] + self._gain[:r] * acc
        return y[None, :], (float(y[-1]),)

    def step(self, x: FloatArray) -> FloatArray:
        """The EWMA after each value of x (finite values only)."""
        if x.size == 0:
            return np.zeros(0)
        if not self._started:
            # Start at the first value: y_{-1} = x_0 makes y_0 = x_0.
            self._runner.state = (float(x[0]),)
            self._started = True
        return self._runner.run(x[None, :])[0]

    @property
    def value(self) -> float | None:
        return self._runner.current_state()[0] if self._started else None


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
