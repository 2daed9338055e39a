"""A flat-out replay scores a file in slices (`mass_tui.replay.flat_out_slice`): how it slices it must
not change what is stored. The last slices taper so the store's writer process ends soon after the
engine; the result is the one of any other slicing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mass_tui.replay as replay
from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.store import JsonlStore


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 300_000), st.integers(16_384, 65_536))
def test_flat_out_slices_cover_the_batch_and_taper_at_its_end(n, rows):
    """The slices cover n rows in order, none longer than `rows`; the last ones halve, none under
    LAST_SLICE but the very last."""
    sizes = []
    left = n
    while left:
        size = replay.flat_out_slice(left, rows)
        assert 0 < size <= min(left, rows)
        sizes.append(size)
        left -= size
    assert sum(sizes) == n
    assert all(s >= replay.LAST_SLICE for s in sizes[:-1])
    tail = [s for s in sizes if s < rows]
    assert tail == sorted(tail, reverse=True)  # only the end is cut, ever smaller
    if n > 2 * rows:
        assert sizes[0] == rows and len(tail) >= 2


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


def _stored(root: Path, path: Path) -> dict[str, bytes]:
    cfg = load_config(None, env={"MASS_DATA_DIR": str(root), "MASS_LOG_DIR": str(root / "logs")}, dotenv_file=None)
    with JsonlStore(root / "db") as store:
        assert replay.replay_file(Engine(cfg, store), path)
    # The anomalies of one instant are written in the order of their stations in the slice that holds
    # them, so a slice that starts between them orders them otherwise: each instant's lines compared
    # sorted, the instants in order.
    by_instant: dict[str, list[bytes]] = {}
    for line in (root / "db" / "anomalies.jsonl").read_bytes().splitlines():
        by_instant.setdefault(json.loads(line)["ts"], []).append(line)
    return {"consumer_stream.jsonl": (root / "db" / "consumer_stream.jsonl").read_bytes(),
            "anomalies.jsonl": [sorted(lines) for lines in by_instant.values()]}


@pytest.mark.parametrize("slicing", ["tapering", "fixed 1000", "uneven"])
def test_the_store_is_the_same_however_a_flat_out_replay_is_sliced(tmp_path, monkeypatch, slicing):
    """The same recording replayed flat out with its usual slices (24 k rows: tapering from the start,
    12 k, 6 k, 3 k, 2 k, the rest), with slices of 1,000 rows, and with uneven ones stores the same
    stream lines (scores included) and anomalies (each instant's in any order)."""
    path = tmp_path / "rec.jsonl"
    _recording(path, 24_000, seed=3)
    reference = _stored(tmp_path / "ref", path)
    assert reference["anomalies.jsonl"], "the recording should flag anomalies"
    sizes = iter([700, 3000, 1, 5000, 2222] * 100)
    if slicing == "fixed 1000":
        monkeypatch.setattr(replay, "flat_out_slice", lambda left, rows: min(left, 1000))
    elif slicing == "uneven":
        monkeypatch.setattr(replay, "flat_out_slice", lambda left, rows: min(left, next(sizes)))
    assert _stored(tmp_path / slicing.replace(" ", "-"), path) == reference
