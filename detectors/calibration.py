"""Calibration: how rare a raw score is for *this* series, learned online from its own history.

A detector's raw score (1.0 = its nominal threshold) means different things
on different series: a noisy, bursty or quantized series crosses 1.0 every
day, a quiet one never. `TailCalibrator` turns a raw score r into its
surprise, S = -log10 P(R >= r), under the distribution of the raw scores
this series produced before: a reading with S = 4 is one the series gives
about once in 10,000 readings.

The distribution is an integer histogram of r over fixed log-spaced bins,
updated once per block of readings (64 of them while the series is young,
then 256) and halved every `EPOCH` readings (a memory of 4,096 to 8,192), plus a small prior (pseudo-counts of
the raw scores of white noise), so a new series starts at the nominal
calibration. Inside the observed range the survival is the empirical one;
past the last bin with a few readings it is an exponential tail fitted to
the top 5 % by its mean excess: the peaks-over-threshold model of extreme
value theory with shape 0 (Siffer et al. 2017, "Anomaly detection in
streams with extreme value theory", KDD). This is the role of Numenta's
"anomaly likelihood" (Ahmad et al. 2017, "Unsupervised real-time anomaly
detection for streaming data", Neurocomputing 262), which compares recent
raw scores with their own long-run distribution.

Every reading is learned, anomalies included: a condition that keeps
coming back (a busy morning, a noisy afternoon) is, for this series,
ordinary. The price is on series where anomalies are dense (several a
week, each lasting hours): there the later ones must be larger to count.
(Learning only the first few readings of each run of high scores was
tried: it kept more of those, and alarmed every busy morning.)

Counts are integers and logarithms come from one table, so a batch and one
value at a time give bit-identical results (blocks are aligned to absolute
positions, as everywhere in this package). State: two arrays of 37 integers
and the current block's table, about 1 KB.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right

import numpy as np

from detectors._blocks import FloatArray

EARLY, EARLY_BLOCK = 1024, 64  # the first 1,024 readings update the histogram every 64 ...
BLOCK = 256  # ... and then every 256
EPOCH = 4096  # readings between halvings (a multiple of BLOCK past EARLY): counts stay in [4096, 8192]
_EARLY_BLOCKS = EARLY // EARLY_BLOCK
K = 36  # log-spaced edges
#: bin edges of r: 0, then 0.02 * 2^(k/3) for k < K (0.02 .. 65)
EDGES = np.concatenate(([0.0], 0.02 * np.power(2.0, np.arange(K) / 3.0)))
_EDGES_L = EDGES.tolist()
_NB = K + 1  # bins: [EDGES[j], EDGES[j+1]) and the last one open
_MID = np.concatenate(((EDGES[:-1] + EDGES[1:]) / 2.0, [EDGES[-1] * 1.26]))
_WIDTH = np.diff(EDGES)
EMPIRICAL = 2.0  # the empirical survival is used up to this surprise (1 reading in 100) ...
SHOULDER = (1.0, 2.0)  # ... and the tail beyond is fitted to the spacing of these two (10 % and 1 %)
PRIOR_OFFSET, PRIOR_BETA = 0.33, 0.075  # white noise: r = 0.33 + an exponential of mean 0.075
BETA_MIN = PRIOR_BETA  # no tail is steeper than white noise's
_LOG10 = np.log10(np.maximum(np.arange(1 << 15, dtype=np.float64), 1.0))
_LN10 = math.log(10.0)


# The bin of a raw score from the bits of the double: the sign-less exponent and the 4 leading
# mantissa bits split every binade into 16 buckets, each narrower than the 26 % between two edges,
# so at most one edge lies inside a bucket; the bin is the bucket's, or the next one at or past
# that edge. (A table lookup and a comparison, where a binary search took 9 ns per value.)
_BUCKET_SHIFT = 48
_BUCKETS = np.arange(1 << 15, dtype=np.uint64) << np.uint64(_BUCKET_SHIFT)
_BUCKET_BIN = (np.searchsorted(EDGES, _BUCKETS.view(np.float64), side="right") - 1).astype(np.int64)
_NEXT_EDGE = np.append(EDGES[1:], np.nan)  # past the last edge: nothing (NaN compares false)


def bin_of(r: FloatArray) -> np.ndarray:
    """The bin of each raw score, `np.searchsorted(EDGES, r, side="right") - 1`: the last edge <= r."""
    if not r.size or not r.min() >= 0.0:  # negative or NaN: the binary search itself
        return np.searchsorted(EDGES, r, side="right") - 1
    key = r.view(np.uint64) >> np.uint64(_BUCKET_SHIFT)
    key &= np.uint64(0x7FFF)  # -0.0 is +0.0's bucket
    j = _BUCKET_BIN[key]
    j += r >= _NEXT_EDGE[j]
    return j


def block_of(pos: np.ndarray) -> np.ndarray:
    """The block (numbered from 0) that holds each position: 64 readings each up to EARLY, then 256."""
    return np.where(pos < EARLY, pos // EARLY_BLOCK, _EARLY_BLOCKS + (pos - EARLY) // BLOCK)


def block_start(block: int) -> int:
    return block * EARLY_BLOCK if block <= _EARLY_BLOCKS else EARLY + (block - _EARLY_BLOCKS) * BLOCK


def _blocks_of(pos: int, n: int) -> tuple[int, list[int]]:
    """The block holding position `pos`, and how many of positions pos .. pos+n-1 each block from it holds."""
    first = pos // EARLY_BLOCK if pos < EARLY else _EARLY_BLOCKS + (pos - EARLY) // BLOCK
    sizes = []
    block, at, end = first, pos, pos + n
    while at < end:
        stop = min(block_start(block + 1), end)
        sizes.append(stop - at)
        at, block = stop, block + 1
    return first, sizes


def prior_counts(offset: float, beta: float, total: int) -> np.ndarray:
    """Integer pseudo-counts of r = offset + an exponential with mean beta."""
    survival = np.exp(-np.maximum(EDGES - offset, 0.0) / beta)
    mass = np.append(survival[:-1] - survival[1:], survival[-1])
    return np.rint(mass * total).astype(np.int64)


#: the ensemble's raw scores on white noise: median 0.34, 1 % over 0.68, 0.01 % over 1.0
PRIOR = prior_counts(PRIOR_OFFSET, PRIOR_BETA, 128)
#: the surprise of white noise at each edge: no series is calibrated to be more sensitive than this
NOMINAL = np.maximum(EDGES - PRIOR_OFFSET, 0.0) / (PRIOR_BETA * _LN10)


_LAST = _NB - 1
_COLUMNS = np.arange(_NB)
_SHOULDERS = np.array(SHOULDER)[:, None, None]
_TAIL_CAP = 1.0 / (PRIOR_BETA * _LN10)


def _r_at(sur: np.ndarray) -> np.ndarray:
    """Per row, the r where the (non-decreasing, piecewise-linear) surprise reaches each SHOULDER
    level: (2, rows). The first edge at or past a level is the count of edges before it (the row
    is non-decreasing); none past it: the last."""
    rows = sur.shape[0]
    k = np.minimum((sur[None, :, :] < _SHOULDERS).sum(axis=2), _LAST)
    np.maximum(k, 1, out=k)
    flat = sur.ravel()
    at = k + (np.arange(rows) * _NB)[None, :]
    lo, hi = flat[at - 1], flat[at]
    frac = np.clip((_SHOULDERS[:, :, 0] - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)
    return EDGES[k - 1] + frac * (EDGES[k] - EDGES[k - 1])


def tables(counts: np.ndarray, prior: np.ndarray = PRIOR) -> tuple[np.ndarray, np.ndarray]:
    """(surprise at each edge, slope per bin) for each row of bin counts, shape (m, K + 1).

    Empirical up to 1 reading in 100; beyond, an exponential tail whose mean excess is the
    spacing of the 90th and 99th percentiles over ln 10 (robust to the anomalies themselves,
    which sit above the 99th); never above the white-noise surprise. Row by row the same
    operations, so one row alone gives the same numbers as in a stack.
    """
    tot = counts + prior
    ge = np.cumsum(tot[:, ::-1], axis=1)[:, ::-1]  # readings at or above each edge
    logs = _LOG10[ge]
    sur = logs[:, :1] - logs
    r90, r99 = _r_at(sur)
    beta = (r99 - r90) / _LN10
    beta = np.maximum(beta, BETA_MIN)
    tail_slope = 1.0 / (beta * _LN10)
    kstar = _LAST - np.argmax((sur <= EMPIRICAL)[:, ::-1], axis=1)
    base = sur.ravel()[np.arange(tot.shape[0]) * _NB + kstar]
    extrapolated = base[:, None] + (EDGES[None, :] - EDGES[kstar][:, None]) * tail_slope[:, None]
    sur = np.where(_COLUMNS[None, :] > kstar[:, None], extrapolated, sur)
    np.minimum(sur, NOMINAL[None, :], out=sur)
    slope = np.empty_like(sur)
    np.subtract(sur[:, 1:], sur[:, :-1], out=slope[:, :-1])
    slope[:, :-1] /= _WIDTH
    slope[:, -1] = np.minimum(tail_slope, _TAIL_CAP)
    return sur, slope


class TailCalibrator:
    """Raw score r >= 0 in, surprise S = -log10 P(R >= r) out, per value (see the module docstring)."""

    __slots__ = ("prior", "_counts", "_part", "_seen", "_sur", "_slope")

    def __init__(self, prior: np.ndarray = PRIOR) -> None:
        self.prior = prior
        self._counts: np.ndarray | None = None  # bins of the completed blocks (None: none yet)
        self._part: np.ndarray | None = None  # bins of the current block so far
        self._seen = 0
        self._sur: array | None = None  # the current block's table (doubles the one-value path reads fast)
        self._slope: array | None = None

    @property
    def seen(self) -> int:
        """Scores learned so far: calibrators that saw as many step together (`step_rows`)."""
        return self._seen

    def _table_now(self) -> tuple[array, array]:
        if self._sur is None or self._slope is None:
            counts = self._counts if self._counts is not None else np.zeros(_NB, dtype=np.int64)
            sur, slope = tables(counts[None, :], self.prior)
            self._sur, self._slope = array("d", sur[0].tobytes()), array("d", slope[0].tobytes())
        return self._sur, self._slope

    def step(self, r: FloatArray) -> FloatArray:
        """Surprise of each raw score (finite, >= 0), learning from each after it is scored."""
        return TailCalibrator.step_rows([self], r[None, :])[0]

    @staticmethod
    def step_rows(group: list[TailCalibrator], r: FloatArray) -> FloatArray:
        """`step` for several calibrators that saw as many scores (and share a prior), r (len(group), n):
        each row what its own step gives (integer counts; the tables of all their blocks at once,
        row by row the same operations)."""
        size, n = r.shape
        if n == 0:
            return np.zeros((size, 0))
        head = group[0]
        pos0, prior = head._seen, head.prior
        if any(g._seen != pos0 or g.prior is not prior for g in group):
            raise ValueError("TailCalibrator.step_rows: calibrators at different positions")
        j = bin_of(r.ravel()).reshape(size, n)
        negative = j.min() < 0
        if negative and size > 1:  # the one-series path's own handling, row by row
            return np.stack([TailCalibrator.step_rows([g], r[v : v + 1])[0] for v, g in enumerate(group)])
        first, sizes = _blocks_of(pos0, n)
        nb = len(sizes)
        local = np.repeat(np.arange(nb), sizes)  # block_of(positions) - first
        flat = local * _NB + j
        stride = nb * _NB
        keys = flat if size == 1 else flat + (np.arange(size) * stride)[:, None]
        adds = np.bincount(keys.ravel(), minlength=size * stride).reshape(size, nb, _NB).astype(np.int64, copy=False)
        for v, g in enumerate(group):
            if g._part is not None:
                adds[v, 0] += g._part
        # Counts at the start of blocks 1.. of this call: a running sum, halved at each epoch.
        starts = np.empty((size, nb + 1, _NB), dtype=np.int64)
        for v, g in enumerate(group):
            starts[v, 0] = g._counts if g._counts is not None else 0
        b = 1
        running = starts[:, 0]
        while b <= nb:
            at = block_start(first + b)
            if at % EPOCH == 0:
                running = (running + adds[:, b - 1]) // 2
                starts[:, b] = running
                b += 1
                continue
            end = b + 1
            while end <= nb and block_start(first + end) % EPOCH != 0:
                end += 1
            starts[:, b:end] = np.cumsum(adds[:, b - 1 : end - 1], axis=1) + running[:, None, :]
            running = starts[:, end - 1]
            b = end
        now = [g._table_now() for g in group]
        sur0 = np.array([np.frombuffer(one) for one, _ in now])
        slope0 = np.array([np.frombuffer(two) for _, two in now])
        done = pos0 + n == block_start(first + nb)  # the last block is complete
        if nb > 1 or done:
            sur_b, slope_b = tables(starts[:, 1:].reshape(size * nb, _NB), prior)
            sur = np.concatenate((sur0[:, None, :], sur_b.reshape(size, nb, _NB)), axis=1)
            slope = np.concatenate((slope0[:, None, :], slope_b.reshape(size, nb, _NB)), axis=1)
        else:
            sur, slope = sur0[:, None, :], slope0[:, None, :]
        if negative:  # a negative score: columns count from the end, as sur[local, j] counts them
            flat = np.where(j < 0, flat + _NB, flat)
        if size > 1:
            flat = flat + (np.arange(size) * (sur.shape[1] * _NB))[:, None]
        out = np.take(sur.ravel(), flat) + (r - EDGES[j]) * np.take(slope.ravel(), flat)
        row = nb if done else nb - 1
        for v, g in enumerate(group):
            g._seen = pos0 + n
            g._counts = starts[v, row].copy()
            g._part = None if done else adds[v, nb - 1].copy()
            g._sur, g._slope = array("d", sur[v, row].tobytes()), array("d", slope[v, row].tobytes())
        return out

    def push(self, r: float) -> float:
        """step() for one value, in plain floats."""
        sur, slope = self._table_now()
        j = bisect_right(_EDGES_L, r) - 1
        out = sur[j] + (r - _EDGES_L[j]) * slope[j]
        if self._part is None:
            self._part = np.zeros(_NB, dtype=np.int64)
        self._part[j] += 1
        seen = self._seen = self._seen + 1
        ends_block = seen % EARLY_BLOCK == 0 if seen <= EARLY else (seen - EARLY) % BLOCK == 0
        if ends_block:
            counts = (self._counts if self._counts is not None else 0) + self._part
            if seen % EPOCH == 0:
                counts = counts // 2
            self._counts, self._part = counts, None
            self._sur = self._slope = None
        return out

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._counts, self._part) if a is not None) + 16 * _NB
