from __future__ import annotations

import numpy as np

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.store import JsonlStore
from sources.schema import Observation


def _smoke_recording(n: int = 600) -> list[Observation]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(n):
        fire = 400 <= i < 430
        values = {
            "temp_c": 22 + rng.normal(0, 0.3) + (30 if fire else 0),
            "humidity_pct": 45 + rng.normal(0, 1) - (30 if fire else 0),
            "tvoc_ppb": abs(150 + rng.normal(0, 20) + (3000 if fire else 0)),
            "eco2_ppm": abs(600 + rng.normal(0, 30) + (2500 if fire else 0)),
        }
        if i % 7:  # PM2.5 only in some messages: the composite carries it forward
            values["pm25_ugm3"] = abs(8 + rng.normal(0, 1) + (200 if fire else 0))
        out.append(Observation(1.7e9 + i * 60.0, "room-1" if i % 3 else "room-2", "test", values))
    return out


def _run(tmp_path, name: str, batches: list[list[Observation]]) -> tuple[bytes, bytes]:
    cfg = load_config(None, env={}, dotenv_file=None)
    db = tmp_path / name
    with JsonlStore(db) as store:
        engine = Engine(cfg, store)
        for batch in batches:
            engine.process(batch)
    return (db / "consumer_stream.jsonl").read_bytes(), (db / "anomalies.jsonl").read_bytes()


def test_live_one_by_one_stores_exactly_what_a_batch_replay_stores(tmp_path):
    obs = _smoke_recording()
    batch = _run(tmp_path, "batch", [obs])
    live = _run(tmp_path, "live", [[o] for o in obs])
    mixed = _run(tmp_path, "mixed", [obs[:1], obs[1:250], *[[o] for o in obs[250:300]], obs[300:]])
    assert live[0] == batch[0] and mixed[0] == batch[0]
    # Anomalies of one batch are sorted by time; compare as sets of lines.
    assert sorted(live[1].splitlines()) == sorted(batch[1].splitlines())
    assert sorted(mixed[1].splitlines()) == sorted(batch[1].splitlines())
    assert b'"detector":"fire"' in batch[1]  # the composite fire pattern fired
    assert b'"severity":"critical"' in batch[1]
