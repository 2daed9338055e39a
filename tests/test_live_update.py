"""The engine's updates to the UI (mass_tui.live_update, sinks.live.UpdateSink): coalesced while the UI is
behind without losing what the UI keeps, bounded, and carrying what the charts and the events list need."""

from __future__ import annotations

import pickle
import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Anomaly
from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.engine_process import SEND_INTERVAL, _send_updates
from mass_tui.live_state import FIELDS, LiveState
from mass_tui.live_update import Outbox
from mass_tui.sinks.live import UpdateSink
from sources.batch import ObservationBatch
from sources.schema import Observation


def _rows(start: int, n: int) -> np.ndarray:
    rows = np.zeros((n, len(FIELDS)))
    rows[:, 0] = np.arange(start, start + n, dtype=float)  # ts: the row's number
    rows[:, 1] = rows[:, 0] * 0.5
    return rows


def _anomaly(i: int, station: str = "s") -> Anomaly:
    return Anomaly(1_700_000_000.0 + i, station, "temp_c", 30.0, "zscore", "warning", 0.7, f"reading {i}",
                   episode=f"ep{i // 10}", episode_start=1_700_000_000.0, episode_peak=0.7)


def test_an_update_gathers_every_batch_since_the_last_take():
    box = Outbox(capacity=100)
    box.add_batch([(("s", "temp_c"), _rows(0, 3))], 3, [_anomaly(1)], {"s": ("sim", 1.0, 2.0, {"room": "a"})},
                  {"s": {"station": "s"}}, rejected=0, data_time=1.0)
    box.add_batch([(("s", "temp_c"), _rows(3, 2)), (("t", "co2_ppm"), _rows(0, 1))], 3, [_anomaly(2)],
                  rejected=1, data_time=2.0)
    box.notice("a switch was refused")
    up = box.take(interval=0.0)
    assert up is not None and up.observations == 6 and len(up.marks) == 2
    assert up.rows[("s", "temp_c")][:, 0].tolist() == [0, 1, 2, 3, 4]
    assert up.rows[("t", "co2_ppm")].shape == (1, len(FIELDS))
    assert [a.reason for a in up.anomalies] == ["reading 1", "reading 2"]
    assert up.status == {"rejected": 1, "data_time": 2.0} and up.places["s"][3] == {"room": "a"}
    assert up.notices == ["a switch was refused"] and not up.skipped and not up.final
    box.set_status(rejected=1)  # unchanged: nothing to send
    assert box.take(interval=0.0, timeout=0.05) is None
    box.set_status(lag="1.0 MB")
    assert box.take(interval=0.0).status == {"lag": "1.0 MB"}
    box.close()
    assert box.take(interval=0.0).final


@settings(max_examples=60, deadline=None)
@given(blocks=st.lists(st.integers(1, 40), min_size=1, max_size=40), takes=st.sets(st.integers(0, 40)),
       capacity=st.integers(5, 30))
def test_coalescing_keeps_exactly_what_the_ui_ring_would_keep(blocks, takes, capacity):
    """Whatever the batch sizes and whenever the UI reads, the UI's ring ends with the same rows and the same
    count as if every batch had been recorded directly; the counters add up."""
    box = Outbox(capacity=capacity)
    via_updates, direct = LiveState(capacity=capacity), LiveState(capacity=capacity)
    start = 0
    for i, n in enumerate(blocks):
        rows = _rows(start, n)
        start += n
        box.add_batch([(("s", "v"), rows)], n, [])
        direct._record_rows("s", "v", rows)
        if i in takes:
            via_updates.apply(pickle.loads(pickle.dumps(box.take(interval=0.0))))  # as the pipe carries it
    up = box.take(interval=0.0, timeout=0.0)
    if up is not None:
        via_updates.apply(up)
    assert via_updates.series[("s", "v")].count == direct.series[("s", "v")].count == start
    assert np.array_equal(via_updates.rows("s", "v"), direct.rows("s", "v"))
    assert via_updates.status["observations"] == start


def test_a_stuck_ui_costs_the_engine_one_bounded_wait_then_the_oldest_pending_anomalies_are_dropped():
    box = Outbox(capacity=10, max_anomalies=5, wait_seconds=0.05)
    box.add_batch([], 3, [_anomaly(i) for i in range(3)])
    box.add_batch([], 4, [_anomaly(i) for i in range(3, 7)])  # no reader: waits, then drops 2
    box.add_batch([], 2, [_anomaly(i) for i in range(7, 9)])  # same stall: drops 2 more
    up = box.take(interval=0.0)
    assert [a.reason for a in up.anomalies] == [f"reading {i}" for i in range(4, 9)]
    assert up.dropped_anomalies == 4 and up.observations == 9
    state = LiveState()
    state.apply(up)
    assert state.status["ui_dropped_anomalies"] == 4
    assert any("4 anomalies are not listed here" in n for n in state.drain_notices())
    box.abandon()  # the UI is gone: nothing accumulates
    box.add_batch([(("s", "v"), _rows(0, 5))], 5, [_anomaly(1)])
    assert box.take(interval=0.0, timeout=0.05) is None


def test_muted_anomalies_and_alert_states_ride_with_their_anomalies_through_coalescing_and_drops():
    box = Outbox(capacity=10, max_anomalies=5, wait_seconds=0.05)
    box.add_batch([], 3, [_anomaly(i) for i in range(3)], muted_why={1: "silence a"})
    box.add_batch([], 4, [_anomaly(i) for i in range(3, 7)], muted_why={0: "silence b", 3: "silence c"},
                  alert_states=[("ep0", "firing", "")])  # drops readings 0 and 1
    box.add_batch([], 1, [_anomaly(10)], muted_why={0: "mute time night"},
                  alert_states=[("ep1", "silenced", "silence d")])
    up = box.take(interval=0.0)
    assert [a.reason for a in up.anomalies] == ["reading 3", "reading 4", "reading 5", "reading 6", "reading 10"]
    assert up.dropped_anomalies == 3
    # Each reason still points at its own anomaly, whatever was dropped before it.
    marked = {up.anomalies[i].reason: why for i, why in up.muted.items()}
    assert marked == {"reading 3": "silence b", "reading 6": "silence c", "reading 10": "mute time night"}
    assert up.alerts == [("ep0", "firing", ""), ("ep1", "silenced", "silence d")]
    state = LiveState()
    state.apply(pickle.loads(pickle.dumps(up)))
    snap = state.snapshot()
    # ep0 holds readings 3-9: its newest (reading 6) is muted; ep1's only reading (10) too, and the alert
    # service said so.
    assert snap.episodes["ep0"].silenced == "silence c" and snap.episodes["ep0"].alert == "firing"
    assert snap.episodes["ep1"].silenced == "silence d" and snap.episodes["ep1"].alert == "silenced"
    # A later, unmuted reading of ep0 clears its mark; the next snapshot copies the changed episode.
    box.add_batch([], 1, [_anomaly(7)])
    state.apply(box.take(interval=0.0))
    again = state.snapshot(snap)
    assert again.episodes["ep0"].silenced == "" and again.episodes["ep1"] is snap.episodes["ep1"]


def test_updates_coalesce_while_the_pipe_is_full_and_arrive_whole_in_order():
    """The sender blocks on a UI that does not read; the engine's batches gather in the outbox meanwhile, and
    the UI then gets fewer, bigger updates holding every batch."""
    import multiprocessing

    reader, writer = multiprocessing.Pipe(duplex=False)
    box = Outbox(capacity=50_000)
    stop = threading.Event()
    sender = threading.Thread(target=_send_updates, args=(box, writer, stop), daemon=True)
    sender.start()
    for i in range(200):  # 200 batches of 500 rows (48 KB each): the 64 KB pipe fills at once
        box.add_batch([(("s", "v"), _rows(500 * i, 500))], 500, [_anomaly(i)])
    box.close()
    updates = []
    while not updates or not updates[-1].final:
        assert reader.poll(30), "the sender never finished"
        updates.append(reader.recv())
    sender.join(10)
    assert not stop.is_set()
    assert len(updates) < 200
    rows = np.concatenate([u.rows[("s", "v")] for u in updates if ("s", "v") in u.rows])
    assert rows[:, 0].tolist() == list(range(100_000))
    assert [a.reason for u in updates for a in u.anomalies] == [f"reading {i}" for i in range(200)]
    assert sum(u.observations for u in updates) == 100_000
    assert SEND_INTERVAL > 0


def test_the_sink_sends_what_the_charts_and_events_need(tmp_path):
    """An engine scoring through UpdateSink gives the UI state the same rows, anomalies (with their episodes)
    and places as recording each series' trace directly."""
    cfg = load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data")}, dotenv_file=None)
    box = Outbox()
    engine = Engine(cfg, None, None)
    engine.sinks.add(UpdateSink(box, engine.labels))
    seen = []
    engine.sinks.add(type("Keep", (), {"name": "keep", "durable": False, "wants_series": True,
                                       "write": lambda self, r: seen.append(r), "sync": lambda self: None,
                                       "close": lambda self: None})())
    obs = [Observation(1_700_000_000.0 + 600 * i, "buoy", "replay:x",
                       {"pressure_msl_hpa": 1010.0 - (8.0 if i == 150 else 0.0) + 0.1 * (i % 3),
                        "gust_mps": 5.0 + (20.0 if i == 160 else 0.0)}, lat=43.2, lon=-69.1)
           for i in range(200)]
    engine.process_batch(ObservationBatch.from_observations(obs))
    via_updates, direct = LiveState(), LiveState()
    via_updates.apply(box.take(interval=0.0))
    for result in seen:
        for t in result.series:
            direct.record_series(t.station, t.variable, t.times, t.values, t.score, t.detail, t.rules)
    for key in direct.series:
        assert np.array_equal(via_updates.rows(*key), direct.rows(*key), equal_nan=True)
    anomalies = via_updates.recent_anomalies()
    assert anomalies and anomalies == seen[0].anomalies  # episode ids ride on them when the alerts set them
    assert via_updates.snapshot().episodes  # the events list's episodes, built in the UI's process
    info = via_updates.stations["buoy"]
    assert (info.lat, info.lon, info.source) == (43.2, -69.1, "replay:x")
    assert via_updates.labels["buoy"]["station"] == "buoy"
    assert via_updates.status["observations"] == 200
