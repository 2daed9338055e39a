"""The faster paths of batch scoring give the numbers of the plain ones, bit for bit.

Each fast path is checked against a path that does not share its shortcut: the CUSUM's guessed
segments and its rows in lockstep against one value at a time, the relation view laid out by block
against small batches and one row at a time, the daily profile's holds against the plain loop.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.relation import _BLOCKWISE_ROWS, BLOCK, RelationModel


def _related(rng: np.random.Generator, n: int, p: int) -> np.ndarray:
    rows = rng.normal(size=(n, 1)) @ rng.normal(size=(1, p)) + 0.3 * rng.normal(size=(n, p))
    rows[rng.random(n) < 0.01, int(rng.integers(0, p))] += 9.0  # rows that break the relation
    return rows + rng.uniform(-100, 100, p)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.integers(2, 7), lead=st.integers(0, 3 * BLOCK),
       cuts=st.lists(st.integers(1, 2 * BLOCK - 1), min_size=1, max_size=8))
def test_relation_by_block_equals_small_batches_and_one_row_at_a_time(seed, p, lead, cuts):
    """A batch long enough to be laid out by block (`RelationModel._score_blocks`), from any position
    in a block, scores as batches too short for it and as rows one at a time do."""
    rng = np.random.default_rng(seed)
    n = lead + _BLOCKWISE_ROWS + 3 * BLOCK + 17
    rows = _related(rng, n, p)
    names = tuple(f"v{i}" for i in range(p))
    long, small, one = RelationModel(names), RelationModel(names), RelationModel(names)
    got: list[list[np.ndarray]] = [[], [], []]
    for part in (slice(0, lead), slice(lead, n)):  # the long batch starts `lead` rows into the stream
        for j, out in enumerate(long.step(rows[part])):
            got[j].append(out)
    want: list[list[np.ndarray]] = [[], [], []]
    i = c = 0
    while i < n:
        m = cuts[c % len(cuts)]
        for j, out in enumerate(small.step(rows[i : i + m])):
            want[j].append(out)
        i, c = i + m, c + 1
    pushed = [one.push(rows[i].tolist()) for i in range(n)]
    for j in range(3):
        a, b = np.concatenate(got[j]), np.concatenate(want[j])
        assert np.array_equal(a, b, equal_nan=True) and a.dtype == b.dtype
        assert np.array_equal(a, [row[j] for row in pushed], equal_nan=True)
