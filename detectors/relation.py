"""The relation view: one station's variables, each predicted from the others.

Variables that normally move together (CO2 with occupancy, energy with
occupancy, dew point with temperature and humidity) keep a relation that a
fault or an unusual situation breaks, even when each variable alone stays in
its usual range: CO2 rising in an empty room, energy drawn by an empty
building, a humidity sensor that no longer agrees with temperature and dew
point. For each complete row x (every variable of the model present), with
mean m and covariance C of past rows and Q = C^-1, the residual of variable
j given all the others is r_j = (Q (x - m))_j / Q_jj with standard deviation
1 / sqrt(Q_jj) (the regression of x_j on the rest, all at once: the
"conditional" form of the Gaussian; e.g. Rasmussen and Williams 2006, A.2).
The raw score is max_j |z_j| / `z`, z_j = r_j sqrt(Q_jj); the variable with
the largest is the one the relation blames. Like the per-variable scores it
is then calibrated on its own history and grouped into episodes
(`detectors.series`), as the "relation" family.

m and C are decayed sums over blocks of `BLOCK` complete rows (memory about
16 blocks of 256 rows), updated when a block completes; within a block the model is
fixed, so a batch and one row at a time give the same numbers. Products are
plain element-wise numpy (no BLAS), in a fixed order, for the same reason.
State: a block of rows, p + p^2 sums and the current model, about 3 KB for
six variables.
"""

from __future__ import annotations

import math

import numpy as np

from detectors._blocks import FloatArray

BLOCK = 256
DECAY = 1.0 - 1.0 / 16.0
WARM_BLOCKS = 1  # blocks learned before the view scores anything
RIDGE = 1e-3  # relative regularisation of the covariance diagonal
_BLOCKWISE_ROWS = 8 * BLOCK  # from this many rows, each block's model broadcasts over its rows (fewer copies)


def _block_sums(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of rows, sum of outer products) of one block (BLOCK, p), or of each of a stack of blocks
    (blocks, BLOCK, p): the rows added in order, the same numbers either way."""
    axis = rows.ndim - 2
    return np.add.reduce(rows, axis=axis), np.add.reduce(rows[..., :, None] * rows[..., None, :], axis=axis)


class RelationModel:
    """step(rows) for complete rows (n, p) -> (raw score, blamed column, predicted value of it)."""

    __slots__ = ("variables", "z", "_ref", "_buf", "_k", "_s1", "_s2", "_w", "_blocks", "_model", "_lists")

    def __init__(self, variables: tuple[str, ...], z: float = 4.0) -> None:
        if len(variables) < 2:
            raise ValueError(f"a relation needs two variables or more, got {variables!r}")
        self.variables = variables
        self.z = float(z)
        p = len(variables)
        self._ref: np.ndarray | None = None  # the first row: sums are of rows minus it
        self._buf = np.empty((BLOCK, p))
        self._k = 0  # rows in the current block
        self._s1 = np.zeros(p)
        self._s2 = np.zeros((p, p))
        self._w = 0.0
        self._blocks = 0
        self._model: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (mean, Q, sqrt(diag Q))
        self._lists: tuple[list[float], list[list[float]], list[float]] | None = None  # the model, for push()

    def _update(self) -> None:
        s1, s2 = _block_sums(self._buf)
        self._learn(s1, s2)
        self._k = 0
        if self._blocks >= WARM_BLOCKS:
            self._model = self._models(self._s1[None], self._s2[None], np.array([self._w]))[0]

    def _learn(self, s1: np.ndarray, s2: np.ndarray) -> None:
        """Fold one block's sums into the decayed ones."""
        self._s1 = self._s1 * DECAY + s1
        self._s2 = self._s2 * DECAY + s2
        self._w = self._w * DECAY + BLOCK
        self._blocks += 1
        self._lists = None

    def _models(self, s1: np.ndarray, s2: np.ndarray, w: np.ndarray) -> list[tuple | None]:
        """The model after each of a stack of decayed sums (m, p), (m, p, p), (m,): element by element
        what one block's update computes, with the inverses taken together (LAPACK per matrix)."""
        mean = s1 / w[:, None]
        cov = s2 / w[:, None, None] - mean[:, :, None] * mean[:, None, :]
        diag = np.diagonal(cov, axis1=1, axis2=2).copy()
        scale = np.maximum(diag, 1e-12)
        p = diag.shape[1]
        cov[:, np.arange(p), np.arange(p)] = diag + RIDGE * scale + 1e-12
        try:
            qs = np.linalg.inv(cov)
        except np.linalg.LinAlgError:
            if len(cov) == 1:
                return [None]
            return [self._models(s1[i : i + 1], s2[i : i + 1], w[i : i + 1])[0] for i in range(len(cov))]
        qd = np.diagonal(qs, axis1=1, axis2=2).copy()
        good = np.all(qd > 0.0, axis=1)
        roots = np.sqrt(np.where(good[:, None], qd, 1.0))
        assert self._ref is not None
        means = mean + self._ref
        return [(means[i], qs[i], roots[i]) if good[i] else None for i in range(len(cov))]

    def step(self, rows: np.ndarray) -> tuple[FloatArray, np.ndarray, FloatArray]:
        """Scores each complete row with the model of its block, learning from each block as it completes."""
        n, p = rows.shape
        if n == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0)
        if self._ref is None:
            self._ref = rows[0].copy()
        offset = self._k  # where the rows start in their block
        spans = self._learn_rows(rows)
        score = np.zeros(n)
        blame = np.zeros(n, dtype=np.int64)
        predicted = np.full(n, np.nan)
        live = [(a, b, m) for a, b, m in spans if m is not None]
        if not live:
            return score, blame, predicted
        if len(live) == len(spans) and n >= _BLOCKWISE_ROWS:
            self._score_blocks(rows, offset, [m for _, _, m in live], score, blame, predicted)
            return score, blame, predicted
        counts = [b - a for a, b, _ in live]
        every = len(live) == len(spans)
        on = slice(None) if every else np.concatenate([np.arange(a, b) for a, b, _ in live])
        part = rows if every else rows[on]
        size = part.shape[0]
        # Per row its block's model, laid out (k, j, row) so that every operand below is contiguous;
        # each number is still the same product or sum as q[j, k] * d[k], in the same order.
        mean = np.repeat(np.stack([m[0] for _, _, m in live]), counts, axis=0)
        q = np.repeat(np.stack([m[1] for _, _, m in live]).transpose(2, 1, 0), counts, axis=2)
        root = np.repeat(np.stack([m[2] for _, _, m in live]).T, counts, axis=1)
        qjj = np.repeat(np.stack([np.diagonal(m[1]) for _, _, m in live]).T, counts, axis=1)
        d = np.ascontiguousarray((part - mean).T)
        acc = q[0] * d[0]
        term = np.empty_like(acc)
        for k in range(1, p):
            np.multiply(q[k], d[k], out=term)
            acc += term
        z = np.abs(acc / root)
        # The first variable with the largest |z|, as a running `>` picks it (NaN and 0 never win).
        z[~(z > 0.0)] = 0.0
        who = np.argmax(z, axis=0)
        cols = np.arange(size)
        best = z[who, cols]
        resid = np.where(best > 0.0, acc[who, cols] / qjj[who, cols], 0.0)
        score[on] = best / self.z
        blame[on] = who
        predicted[on] = part[cols, who] - resid
        return score, blame, predicted

    def _score_blocks(self, rows: np.ndarray, offset: int, models: list[tuple], score: FloatArray,
                      blame: np.ndarray, predicted: FloatArray) -> None:
        """`step`'s scores when every row has a model: rows (n, p) from position `offset` of a block on,
        one model per block they reach, in order. The rows are laid out by block, (p, blocks, BLOCK),
        so that each block's model broadcasts over its rows (no copy of it per row): each number is
        the same product, sum or quotient as in `step`, in the same order."""
        n, p = rows.shape
        nb = len(models)
        flat = np.zeros((nb * BLOCK, p))
        flat[offset : offset + n] = rows
        laid = flat.reshape(nb, BLOCK, p)
        mean = np.stack([m[0] for m in models])  # (blocks, p)
        q = np.stack([m[1] for m in models]).transpose(2, 1, 0)[:, :, :, None]  # (k, j, blocks, 1)
        root = np.stack([m[2] for m in models]).T[:, :, None]  # (j, blocks, 1)
        laid -= mean[:, None, :]  # in place: the row minus its block's mean
        d = np.ascontiguousarray(laid.transpose(2, 0, 1))  # (k, blocks, BLOCK)
        acc = q[0] * d[0]
        term = np.empty_like(acc)
        for k in range(1, p):
            np.multiply(q[k], d[k], out=term)
            acc += term
        z = np.divide(acc, root, out=term)
        np.abs(z, out=z)
        z = z.reshape(p, -1)[:, offset : offset + n]
        acc = acc.reshape(p, -1)[:, offset : offset + n]
        # The first variable with the largest |z|, as a running `>` picks it (NaN and 0 never win).
        z[~(z > 0.0)] = 0.0
        who = np.argmax(z, axis=0)
        cols = np.arange(n)
        best = z[who, cols]
        qjj = np.stack([np.diagonal(m[1]) for m in models])  # (blocks, j)
        resid = np.where(best > 0.0, acc[who, cols] / qjj[(cols + offset) // BLOCK, who], 0.0)
        np.divide(best, self.z, out=score)
        blame[:] = who
        np.subtract(rows[cols, who], resid, out=predicted)

    def _learn_rows(self, rows: np.ndarray) -> list[tuple[int, int, tuple | None]]:
        """Learn from the rows block by block; [(start, end, model)]: the model that scores each span.
        The blocks completed in this call are summed and modelled together."""
        n, p = rows.shape
        assert self._ref is not None
        spans: list[tuple[int, int, tuple | None]] = []
        i = 0
        if self._k:  # finish the block under way
            take = min(n, BLOCK - self._k)
            spans.append((0, take, self._model))
            self._buf[self._k : self._k + take] = rows[:take] - self._ref
            self._k += take
            if self._k == BLOCK:
                self._update()
            i = take
        full = (n - i) // BLOCK
        if full:
            blocks = (rows[i : i + full * BLOCK] - self._ref).reshape(full, BLOCK, p)
            # a few blocks' products at a time: the same sums, in smaller temporaries
            sums = [_block_sums(blocks[b : b + 8]) for b in range(0, full, 8)]
            s1 = np.concatenate([one for one, _ in sums])
            s2 = np.concatenate([two for _, two in sums])
            states1, states2, weights = np.empty((full, p)), np.empty((full, p, p)), np.empty(full)
            for b in range(full):
                self._learn(s1[b], s2[b])
                states1[b], states2[b], weights[b] = self._s1, self._s2, self._w
            models = self._models(states1, states2, weights) if self._blocks >= WARM_BLOCKS else [None] * full
            if self._blocks - full < WARM_BLOCKS:  # blocks learned before the view scores
                models = [m if self._blocks - full + b + 1 >= WARM_BLOCKS else None for b, m in enumerate(models)]
            for b in range(full):
                spans.append((i, i + BLOCK, self._model))
                self._model = models[b]
                i += BLOCK
        if i < n:
            spans.append((i, n, self._model))
            self._buf[: n - i] = rows[i:] - self._ref
            self._k = n - i
        return spans

    def push(self, row: list[float]) -> tuple[float, int, float]:
        """step() for one complete row, in plain floats: the same operations in the same order."""
        if self._ref is None:
            self._ref = np.array(row)
        model = self._model
        out = (0.0, 0, math.nan)
        if model is not None:
            if self._lists is None:
                self._lists = (model[0].tolist(), model[1].tolist(), model[2].tolist())
            mean, q, root = self._lists
            p = len(row)
            d = [row[k] - mean[k] for k in range(p)]
            best, who, resid = 0.0, 0, 0.0
            for j in range(p):
                qj = q[j]
                acc = qj[0] * d[0]
                for k in range(1, p):
                    acc = acc + qj[k] * d[k]
                zj = abs(acc / root[j])
                if zj > best:
                    best, who, resid = zj, j, acc / qj[j]
            out = (best / self.z, who, row[who] - resid)
        self._buf[self._k] = np.array(row) - self._ref
        self._k += 1
        if self._k == BLOCK:
            self._update()
        return out

    def nbytes(self) -> int:
        return self._buf.nbytes + self._s1.nbytes + self._s2.nbytes + (
            0 if self._model is None else sum(a.nbytes for a in self._model))


def relation_reason(variables: tuple[str, ...], j: int, value: float, predicted: float, z: float,
                    unit: str) -> str:
    """One line: which variable left the relation, by how much, and what the others predicted."""
    others = [v for i, v in enumerate(variables) if i != j]
    shown = ", ".join(others[:4]) + (" ..." if len(others) > 4 else "")
    u = f" {unit}" if unit else ""
    side = "above" if value > predicted else "below"
    zs = f"{z:.1f}" if math.isfinite(z) else "?"
    return (f"{variables[j]} {value:.4g}{u} does not fit the station's other readings: {zs} σ {side} "
            f"the {predicted:.4g}{u} that {shown} predict")
