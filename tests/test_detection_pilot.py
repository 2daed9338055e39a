"""End to end: the simulated building does not flood, `mass score` gives the stored score, the series cap."""

from __future__ import annotations

import csv
import json

import numpy as np
import orjson

from detectors.evaluation import episodes
from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.scoring import DETECTORS, make_detector
from sources.schema import parse_time

from .test_cli import _summary, mass


def test_simulated_building_gives_episodes_not_floods(tmp_path):
    """`mass run --headless --source simulator --max`: a week of 24 rooms. Each (room, variable) gets a
    handful of alarm episodes at most (the seed build raised 3.2 false ones per room-day), every
    statistical anomaly is an announced episode, and most episodes match an injected fault."""
    proc = mass("run", "--headless", "--source", "simulator", "--max", "--max-messages", "48000", "-q",
                cwd=tmp_path, timeout=300)
    summary = _summary(proc)
    assert summary["observations"] == 48000
    db = tmp_path / "data" / "db"
    found = [json.loads(line) for line in (db / "anomalies.jsonl").read_text().splitlines()]
    labels = [json.loads(line) for line in (db / "labels.jsonl").read_text().splitlines()]
    days = (parse_time(summary["last_ts"]) - parse_time(summary["first_ts"])) / 86400.0
    by: dict[tuple[str, str], list[float]] = {}
    for a in found:
        assert a["episode"]["id"] and 0.5 <= a["score"] < 1.0, a
        by.setdefault((a["station"], a["variable"]), []).append(parse_time(a["ts"]))
    eps = {key: episodes(np.array(ts), 3600.0) for key, ts in by.items()}
    total = sum(len(e) for e in eps.values())
    assert total / (24 * days) < 1.0, total  # every alarm episode; this week holds all 56 faults
    per_station: dict[str, int] = {}
    for (station, _var), e in eps.items():
        per_station[station] = per_station.get(station, 0) + len(e)
    assert max(per_station.values()) <= 2 * days
    faults = [(lb["station"], lb["variable"], parse_time(lb["start"]), parse_time(lb["end"])) for lb in labels]
    true = sum(1 for (st, var), e in eps.items() for s, end in e
               if any(st == f[0] and var == f[1] and s <= f[3] and end >= f[2] for f in faults))
    assert (total - true) / (24 * days) < 0.5 and true / total > 0.3
    caught = sum(1 for st, var, a, b in faults if any(a <= t <= b for t in by.get((st, var), [])))
    assert caught / len(faults) >= 0.8


def test_mass_score_gives_the_score_the_engine_stores(tmp_path, shared):
    """Causal (row t uses rows <= t) and the same calibrated, episode-aware score as the engine's."""
    src = shared / "sensors" / "nab_ambient_temperature_system_failure.csv"
    out = tmp_path / "scored.csv"
    proc = mass("score", "--input", str(src), "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    scored = np.array([float(r["anomaly_score"]) for r in rows])
    t = np.array([parse_time(r["timestamp"]) for r in rows])
    x = np.array([float(r["value"]) for r in rows])
    (tmp_path / "mass.toml").write_text("")
    engine = Engine(load_config(tmp_path / "mass.toml", env={}, dotenv_file=None))
    stored = engine.bank.step_series("nab", "value", t, x).anomaly_score
    assert np.array_equal(scored, np.round(stored, 6))
    # causal: scoring the first half alone gives the same first half
    params = engine.bank.params
    half = make_detector("ensemble", params).step(x[: x.size // 2], t[: x.size // 2])
    assert np.array_equal(half, stored[: x.size // 2])
    assert 0 < (scored >= 0.5).sum() < 10


def test_every_detector_choice_scores(tmp_path, shared):
    src = shared / "sensors" / "nab_machine_temperature_system_failure.csv"
    for name in DETECTORS:
        out = tmp_path / f"{name}.csv"
        proc = mass("score", "--input", str(src), "--output", str(out), "--detector", name, cwd=tmp_path)
        assert proc.returncode == 0, (name, proc.stderr)
        scores = [float(r["anomaly_score"]) for r in csv.DictReader(out.open())]
        assert all(0.0 <= s < 1.0 for s in scores), name


def _message(station: str, i: int) -> bytes:
    return orjson.dumps({"ts": 1.7e9 + i * 60.0, "station": station, "source": "test", "temp_c": 20.0 + i % 3})


def test_new_stations_past_the_series_cap_are_quarantined_with_a_reason(tmp_path):
    (tmp_path / "mass.toml").write_text("[detectors]\nmax_series = 3\nidle_hours = 1.0\n")
    engine = Engine(load_config(tmp_path / "mass.toml", env={}, dotenv_file=None))
    result = engine.ingest([_message(f"s{k}", 0) for k in range(5)])
    assert len(result.batch) == 3 and result.rejected == 2 and len(engine.bank.series) == 3
    # the stations already live keep being scored
    assert engine.ingest([_message("s0", 1), _message("s1", 1)]).rejected == 0
    # two hours later s2 is idle: a new station takes its place
    later = engine.ingest([_message("s0", 120), _message("s1", 120), _message("s9", 120)])
    assert later.rejected == 0 and ("s9", "temp_c") in engine.bank.series
    assert ("s2", "temp_c") not in engine.bank.series and engine.bank.evicted == 1
    assert engine.counters.rejected == 2


def test_the_cap_reason_names_the_setting(tmp_path):
    from mass_tui.store import JsonlStore

    (tmp_path / "mass.toml").write_text("[detectors]\nmax_series = 1\n")
    store = JsonlStore(tmp_path / "db")
    engine = Engine(load_config(tmp_path / "mass.toml", env={}, dotenv_file=None), store)
    engine.ingest([_message("a", 0), _message("b", 0)])
    store.flush()
    rejected = [json.loads(line) for line in (tmp_path / "db" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == 1 and "detectors.max_series = 1" in rejected[0]["reason"]
    assert '"station":"b"' in rejected[0]["raw"] and rejected[0]["code"] == "series_cap"


def test_the_cap_reason_counts_the_series_admitted_in_the_same_batch(tmp_path):
    """A flood of new names in one batch: the reason counts the series admitted before it in that
    batch (it said 0 live series while 50,000 were being admitted)."""
    from mass_tui.store import JsonlStore

    (tmp_path / "mass.toml").write_text("[detectors]\nmax_series = 3\n")
    store = JsonlStore(tmp_path / "db")
    engine = Engine(load_config(tmp_path / "mass.toml", env={}, dotenv_file=None), store)
    engine.ingest([_message(f"s{k}", 0) for k in range(5)])
    store.flush()
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "db" / "rejected.jsonl").read_text().splitlines()]
    assert len(reasons) == 2 and all(r.startswith("series cap reached: 3 live series") for r in reasons)


def _admitted(tmp_path, first: list[bytes], messages: list[bytes], one_at_a_time: bool) -> tuple[set, int, int, dict]:
    """(live series, evictions, rows refused, each live series' readings seen) after ingesting `first`
    one at a time, then `messages` as one batch or one at a time."""
    engine = Engine(load_config(tmp_path / "mass.toml", env={}, dotenv_file=None))
    for m in first:
        engine.ingest([m])
    for part in ([[m] for m in messages] if one_at_a_time else [messages]):
        engine.ingest(part)
    series = engine.bank.series
    return set(series), engine.bank.evicted, engine.counters.rejected, {k: d.count for k, d in series.items()}


def test_a_station_busy_in_a_long_batch_is_not_evicted_as_idle_when_a_new_one_comes(tmp_path):
    """A flat-out replay's batch spans days: its newest time made every series look idle when a new
    station came with the cap full, and the detectors of a station reporting throughout the batch were
    wiped (a helper's review). Each station now comes at its first reading, and the readings of the
    others up to then count as seen: here the bank evicts what one reading at a time evicts."""
    (tmp_path / "mass.toml").write_text("[detectors]\nmax_series = 2\nidle_hours = 24.0\n")
    # both live before the batch, "busy" the least recently seen; "old" never reports again
    first = [_message("busy", 0), _message("old", 1)]
    messages = [_message("busy", 60 * h) for h in range(1, 24 * 8)]  # hourly for eight days
    messages.insert(24 * 6, _message("new", 60 * 24 * 6 + 1))  # comes on day six, when only "old" is idle
    batch = _admitted(tmp_path, first, messages, one_at_a_time=False)
    assert batch == _admitted(tmp_path, first, messages, one_at_a_time=True)
    live, evicted, refused, counts = batch
    assert live == {("busy", "temp_c"), ("new", "temp_c")} and evicted == 1 and refused == 0
    assert counts[("busy", "temp_c")] == 24 * 8  # its detectors kept every reading
