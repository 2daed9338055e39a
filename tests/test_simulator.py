from __future__ import annotations

import json

import numpy as np

from mass_tui.config import load_config
from mass_tui.engine import Engine
from sources.batch import decode_batch
from sources.simulator import Simulator


def _run(sim: Simulator, steps: int) -> list[bytes]:
    out = []
    for _ in range(steps):
        out.extend(sim.poll().messages)
    return out


def test_same_seed_same_messages_and_labels():
    a, b = Simulator("building", seed=3, step_seconds=300), Simulator("building", seed=3, step_seconds=300)
    assert _run(a, 50) == _run(b, 50)
    assert a.labels == b.labels and len(a.labels) > 10
    c = Simulator("building", seed=4, step_seconds=300)
    assert _run(c, 5) != _run(Simulator("building", seed=3, step_seconds=300), 5)


def test_building_has_daily_pattern_and_injected_anomalies_show_in_the_data():
    sim = Simulator("building", seed=1, step_seconds=300)
    rows = [json.loads(m) for m in _run(sim, 288 * 3)]  # three weekdays
    office = [r for r in rows if r["station"] == "b1-f2-office"]
    by_hour = {}
    for r in office:
        by_hour.setdefault(int(r["ts"][11:13]), []).append(r["co2_ppm"])
    assert np.mean(by_hour[12]) > np.mean(by_hour[3]) + 100  # people at noon, none at 3 am
    assert {r["tags"]["building"] for r in rows} == {"b1", "b2", "b3"} and len({r["station"] for r in rows}) == 24
    hvac = [lb for lb in sim.labels if lb.kind == "hvac_failure" and lb.end < sim.now()]
    if hvac:
        lb = hvac[0]
        during = [r["temp_c"] for r in rows if r["station"] == lb.station
                  and lb.start + 0.8 * (lb.end - lb.start) <= _t(r["ts"]) < lb.end]
        assert during and min(during) > 24.0  # 6 degrees over the usual 21-22


def _t(stamp: str) -> float:
    from sources.schema import parse_time

    return parse_time(stamp)


def test_smoke_fire_raises_the_composite_fire_pattern():
    sim = Simulator("smoke", seed=2, step_seconds=10, days=3)
    fire = sim.labels[0]
    steps = int((fire.end - sim.start) / 10) + 10
    decoded = decode_batch(_run(sim, steps))
    batch, rejected = decoded.batch, decoded.rejected
    assert not rejected
    engine = Engine(load_config(None, env={}, dotenv_file=None))
    result = engine.process_batch(batch)
    fires = [a for a in result.anomalies if a.detector == "fire"]
    assert fires and all(a.station == fire.station for a in fires)
    assert all(fire.start <= a.ts <= fire.end for a in fires)
