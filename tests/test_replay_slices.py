"""A flat-out replay scores a file in slices of `rows` (`mass_tui.replay._paced`): how it slices it must
not change what is stored (a slicing that tapered the end to let the writer process finish sooner
was tried and reverted; this holds the store to one answer for any slicing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mass_tui.replay as replay
from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.store import JsonlStore


def _recording(path: Path, rows: int, seed: int) -> None:
    """Minute readings of three stations: a daily cycle, noise, a few spikes and a level shift, so the
    detectors flag anomalies and open episodes across slice boundaries."""
    rng = np.random.default_rng(seed)
    lines = []
    for k in range(rows):
        step, s = divmod(k, 3)
        temp = 10 + 5 * np.sin(2 * np.pi * step / 1440) + rng.normal(0, 0.2) + (8 if step % 701 == 350 else 0)
        pressure = 1010 + (2.5 if step > 4000 + 300 * s else 0) + rng.normal(0, 0.1)
        lines.append(json.dumps({"ts": 1_717_200_000 + 60 * step, "station": f"s{s}", "temp_c": round(float(temp), 2),
                                 "pressure_msl_hpa": round(float(pressure), 2)}))
    path.write_text("".join(line + "\n" for line in lines))


def _stored(root: Path, path: Path, **how: int) -> dict[str, object]:
    cfg = load_config(None, env={"MASS_DATA_DIR": str(root), "MASS_LOG_DIR": str(root / "logs")}, dotenv_file=None)
    with JsonlStore(root / "db") as store:
        assert replay.replay_file(Engine(cfg, store), path, **how)
    # The anomalies of one instant are written in the order of their stations in the slice that holds
    # them, so a slice that starts between them orders them otherwise: each instant's lines compared
    # sorted, the instants in order.
    by_instant: dict[str, list[bytes]] = {}
    for line in (root / "db" / "anomalies.jsonl").read_bytes().splitlines():
        by_instant.setdefault(json.loads(line)["ts"], []).append(line)
    return {"consumer_stream.jsonl": (root / "db" / "consumer_stream.jsonl").read_bytes(),
            "anomalies.jsonl": [sorted(lines) for lines in by_instant.values()]}


@pytest.mark.parametrize("rows", [1000, 2048, 7777])
def test_the_store_is_the_same_however_a_flat_out_replay_is_sliced(tmp_path, monkeypatch, rows):
    """The same recording replayed flat out in one slice (24 k rows) and in slices of 1,000, 2,048 and
    7,777 rows stores the same stream lines (scores included) and anomalies (each instant's in any
    order)."""
    path = tmp_path / "rec.jsonl"
    _recording(path, 24_000, seed=3)
    reference = _stored(tmp_path / "ref", path)
    assert reference["anomalies.jsonl"], "the recording should flag anomalies"
    monkeypatch.setattr(replay, "BATCH", rows)  # slices of max(BATCH, chunk_bytes // 128) rows
    assert _stored(tmp_path / str(rows), path, chunk_bytes=rows * 128) == reference
