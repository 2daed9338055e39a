"""The relation view: a broken relation is an anomaly even when each variable alone looks normal."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.bank import DetectorBank
from detectors.ensemble import EnsembleParams
from detectors.relation import RelationModel

T0 = 1736121600.0


def _room(n: int, seed: int) -> dict[str, np.ndarray]:
    """A meeting room at 5-minute readings: CO2 follows the people in it, energy too."""
    rng = np.random.default_rng(seed)
    hour = (np.arange(n) * 300.0 % 86400) / 3600
    people = rng.poisson(np.where((hour >= 8) & (hour < 18), 6.0, 0.0)).astype(float)
    co2 = np.empty(n)
    level = 450.0
    for i in range(n):
        level += 0.3 * ((420.0 + 45.0 * people[i]) - level)
        co2[i] = level
    co2 += rng.normal(0, 10, n)
    energy = (0.4 + 0.05 * people) * 300 / 3600 + rng.normal(0, 0.002, n)
    return {"occupancy": people, "co2_ppm": co2, "energy_kwh": energy}


def test_energy_drawn_by_an_empty_room_breaks_the_relation():
    n = 288 * 6
    cols = _room(n, 3)
    night = 288 * 5 + 12 * 2  # 02:00 on the sixth day: nobody there
    # the room draws what it draws on a busy afternoon: alone, an ordinary reading
    busy = np.percentile(cols["energy_kwh"], 95)
    cols["energy_kwh"][night : night + 12] = busy
    assert busy < cols["energy_kwh"].max()
    bank = DetectorBank(EnsembleParams())
    t = T0 + np.arange(n) * 300.0
    anomalies = bank.step_composites("room", t, cols)
    rel = [a for a in anomalies if a.detector == "relation"]
    hits = [a for a in rel if t[night] <= a.ts < t[night + 12]]
    assert hits, [(round((a.ts - T0) / 300), a.variable) for a in rel]
    hit = hits[0]
    assert hit.variable in ("energy_kwh", "occupancy") and "does not fit the station's other readings" in hit.reason
    assert hit.episode.startswith(f"room/{hit.variable}/relation@")
    assert len(rel) - len(hits) <= 1  # ordinary days: the relation holds


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 300), min_size=1, max_size=20))
def test_relation_streaming_equals_batch(seed, cuts):
    rng = np.random.default_rng(seed)
    n, p = 1200, int(rng.integers(2, 6))
    base = rng.normal(size=(n, 1))
    rows = base @ rng.normal(size=(1, p)) + 0.3 * rng.normal(size=(n, p)) + rng.uniform(-100, 100, p)
    names = tuple(f"v{i}" for i in range(p))
    whole = RelationModel(names).step(rows)
    model = RelationModel(names)
    parts: list[list[np.ndarray]] = [[], [], []]
    i = k = 0
    while i < n:
        m = cuts[k % len(cuts)]
        for j, out in enumerate(model.step(rows[i : i + m])):
            parts[j].append(out)
        i, k = i + m, k + 1
    for j in range(3):
        assert np.array_equal(whole[j], np.concatenate(parts[j]), equal_nan=True)


def test_relation_one_row_at_a_time_equals_batch():
    rng = np.random.default_rng(11)
    n, p = 900, 4
    rows = rng.normal(size=(n, 1)) @ rng.normal(size=(1, p)) + 0.2 * rng.normal(size=(n, p))
    names = tuple(f"v{i}" for i in range(p))
    score, blame, predicted = RelationModel(names).step(rows)
    model = RelationModel(names)
    pushed = [model.push(rows[i].tolist()) for i in range(n)]
    assert np.array_equal(score, [s for s, _, _ in pushed])
    assert np.array_equal(blame, [b for _, b, _ in pushed])
    assert np.array_equal(predicted, [q for _, _, q in pushed], equal_nan=True)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.integers(2, 8), blocks=st.integers(1, 10))
def test_block_sums_are_the_outer_products_summed_in_row_order(seed, p, blocks):
    """_block_sums gives, bit for bit, every outer product added row after row, for one block and for
    a stack of them (the batch learns several blocks at once, one row at a time learns one)."""
    from detectors.relation import BLOCK, _block_sums

    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(blocks, BLOCK, p)) * rng.uniform(1e-3, 1e3, p) + rng.uniform(-1e3, 1e3, p)
    want = np.zeros((blocks, p, p))
    for i in range(BLOCK):
        want += rows[:, i, :, None] * rows[:, i, None, :]
    s1, s2 = _block_sums(rows)
    assert np.array_equal(s2, want) and np.array_equal(s1, np.add.reduce(rows, axis=1))
    one1, one2 = _block_sums(rows[0])
    assert np.array_equal(one2, want[0]) and np.array_equal(one1, s1[0])
