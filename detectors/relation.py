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


def _block_sums(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of rows, sum of outer products) of one block: the same call, on the same shape, in both paths."""
    return np.add.reduce(rows, axis=0), np.add.reduce(rows[:, :, None] * rows[:, None, :], axis=0)


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
        self._s1 = self._s1 * DECAY + s1
        self._s2 = self._s2 * DECAY + s2
        self._w = self._w * DECAY + BLOCK
        self._blocks += 1
        self._k = 0
        self._lists = None
        if self._blocks < WARM_BLOCKS:
            return
        mean = self._s1 / self._w
        cov = self._s2 / self._w - mean[:, None] * mean[None, :]
        diag = np.diag(cov).copy()
        scale = np.maximum(diag, 1e-12)
        cov[np.diag_indices_from(cov)] = diag + RIDGE * scale + 1e-12
        try:
            q = np.linalg.inv(cov)
        except np.linalg.LinAlgError:
            self._model = None
            return
        qd = np.diag(q).copy()
        if not np.all(qd > 0.0):
            self._model = None
            return
        assert self._ref is not None
        self._model = (mean + self._ref, q, np.sqrt(qd))

    def step(self, rows: np.ndarray) -> tuple[FloatArray, np.ndarray, FloatArray]:
        """Scores each complete row with the model of its block, learning from each block as it completes."""
        n, p = rows.shape
        if n == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0)
        if self._ref is None:
            self._ref = rows[0].copy()
        # The blocks only need the rows: learn first, noting which model scores which rows.
        models: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = []
        which = np.empty(n, dtype=np.int64)
        i = 0
        while i < n:
            take = min(n - i, BLOCK - self._k)
            models.append(self._model)
            which[i : i + take] = len(models) - 1
            self._buf[self._k : self._k + take] = rows[i : i + take] - self._ref
            self._k += take
            if self._k == BLOCK:
                self._update()
            i += take
        score = np.zeros(n)
        blame = np.zeros(n, dtype=np.int64)
        predicted = np.full(n, np.nan)
        live = [m for m in models if m is not None]
        if not live:
            return score, blame, predicted
        index = {id(m): k for k, m in enumerate(live)}
        slot = np.array([index[id(m)] if m is not None else -1 for m in models])[which]
        on = slot >= 0
        if not on.all():
            rows, slot = rows[on], slot[on]
        mean = np.stack([m[0] for m in live])[slot]
        q = np.stack([m[1] for m in live])[slot]
        root = np.stack([m[2] for m in live])[slot]
        d = rows - mean
        best = np.zeros(slot.size)
        who = np.zeros(slot.size, dtype=np.int64)
        resid = np.zeros(slot.size)
        for j in range(p):
            acc = q[:, j, 0] * d[:, 0]
            for k in range(1, p):
                acc = acc + q[:, j, k] * d[:, k]
            zj = np.abs(acc / root[:, j])
            higher = zj > best
            best = np.where(higher, zj, best)
            who = np.where(higher, j, who)
            resid = np.where(higher, acc / q[:, j, j], resid)
        score[on] = best / self.z
        blame[on] = who
        predicted[on] = rows[np.arange(slot.size), who] - resid
        return score, blame, predicted

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
