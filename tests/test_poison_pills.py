"""The poison pills of ../shared/cases/reliability (vendored under tests/data/cases/reliability) and the epoch
units of case 21, on replay, through the file transport (a service started twice), and on Kafka (Tansu)."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.replay import replay_file
from mass_tui.service import run_consumer, transport_path
from mass_tui.store import JsonlStore
from sources.kafka_transport import ensure_topic

from .conftest import complete_lines
from .conftest import wait_for as _wait

DATA = Path(__file__).parent / "data" / "cases"
PILLS = {
    "ts-out-of-range.jsonl": ("ts_out_of_range", "timestamp out of range"),
    "poison-pill-year10000.jsonl": ("ts_out_of_range", "timestamp out of range"),
}


def _config(tmp_path: Path, **env: str):
    return load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs"),
                                  **env}, dotenv_file=None)


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in complete_lines(path)]  # read while the consumer writes


@pytest.mark.parametrize("name", sorted(PILLS))
def test_poison_pill_on_replay_stores_both_valid_lines_and_quarantines_one(tmp_path, name):
    with JsonlStore(tmp_path / "db") as store:
        engine = Engine(_config(tmp_path), store)
        assert replay_file(engine, DATA / "reliability" / name)
    stored, rejected = _read(tmp_path / "db" / "consumer_stream.jsonl"), _read(tmp_path / "db" / "rejected.jsonl")
    assert [r["temp_c"] for r in stored] == [10, 12]
    code, reason = PILLS[name]
    assert len(rejected) == 1 and rejected[0]["code"] == code and reason in rejected[0]["reason"]


def test_nested_tags_recursion_is_quarantined_with_a_reason_on_replay(tmp_path):
    with JsonlStore(tmp_path / "db") as store:
        engine = Engine(_config(tmp_path), store)
        assert replay_file(engine, DATA / "reliability" / "nested-tags-recursion.jsonl")
    rejected = _read(tmp_path / "db" / "rejected.jsonl")
    assert engine.counters.observations == 0 and len(rejected) == 1
    assert rejected[0]["code"] == "bad_tags" and "tags must be flat" in rejected[0]["reason"]


def _serve_twice(tmp_path: Path, cfg) -> list[dict]:
    """Run the service on the file transport until idle, twice; returns the two summaries."""
    summaries = []
    for _ in range(2):
        stop = threading.Event()
        result: dict = {}
        thread = threading.Thread(target=lambda r=result, s=stop: r.update(run_consumer(cfg, stop=s, idle_wait=0.05)))
        thread.start()
        position = transport_path(cfg).with_suffix(".position")
        size = transport_path(cfg).stat().st_size
        _wait(lambda p=position, n=size: p.exists() and json.loads(p.read_text())["offset"] >= n)
        stop.set()
        thread.join(30)
        assert not thread.is_alive()
        summaries.append(result)
    return summaries


@pytest.mark.parametrize("name", [*sorted(PILLS), "nested-tags-recursion.jsonl"])
def test_poison_pill_through_the_file_transport_started_twice(tmp_path, name):
    cfg = _config(tmp_path)
    transport = transport_path(cfg)
    transport.parent.mkdir(parents=True)
    shutil.copy(DATA / "reliability" / name, transport)
    first, second = _serve_twice(tmp_path, cfg)
    valid = 0 if name.startswith("nested") else 2
    assert first["observations"] == valid and first["rejected"] == 1
    assert second["observations"] == 0 and second["rejected"] == 0  # the position moved past the bad line
    position = json.loads(transport.with_suffix(".position").read_text())
    assert position["offset"] == transport.stat().st_size
    assert len(_read(tmp_path / "data" / "db" / "consumer_stream.jsonl")) == valid


def test_case_21_epoch_units_through_the_file_transport(tmp_path):
    cfg = _config(tmp_path)
    transport = transport_path(cfg)
    transport.parent.mkdir(parents=True)
    shutil.copy(DATA / "inputs" / "21-epoch-micro-nanoseconds.jsonl", transport)
    first, _ = _serve_twice(tmp_path, cfg)
    stored = _read(tmp_path / "data" / "db" / "consumer_stream.jsonl")
    assert first["observations"] == 3 and first["rejected"] == 0
    assert [r["ts"] for r in stored] == ["2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z"]


def test_kafka_case_21_key_as_station_record_time_and_quarantine_metadata(tmp_path, kafka_broker):
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    cfg = _config(tmp_path, KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap, KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group)
    ensure_topic(kafka_broker.bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for line in (DATA / "inputs" / "21-epoch-micro-nanoseconds.jsonl").read_bytes().splitlines():
        producer.produce(topic, value=line, key=b"telegraf-node")
    # No station in the value: the key is the station. No time in the value: the record timestamp is.
    producer.produce(topic, value=b'{"ts": 1714557780, "temp_c": 18.6}', key=b"keyed-node")
    producer.produce(topic, value=b'{"station": "clockless", "temp_c": 18.7}', key=b"clockless",
                     timestamp=1714557840000)
    producer.produce(topic, value=b'{"ts": 1e20, "station": "x", "temp_c": 1}', key=b"x")
    producer.flush(10)
    stop = threading.Event()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run_consumer(cfg, transport="kafka", stop=stop)))
    thread.start()
    stored_path = tmp_path / "data" / "db" / "consumer_stream.jsonl"
    try:
        assert _wait(lambda: len(_read(stored_path)) >= 5, 60)
        assert _wait(lambda: len(_read(tmp_path / "data" / "db" / "rejected.jsonl")) >= 1, 30)
    finally:
        stop.set()
        thread.join(30)
    stored = _read(stored_path)
    assert [(r["station"], r["ts"]) for r in stored] == [
        ("telegraf-node", "2024-05-01T10:00:00Z"), ("telegraf-node", "2024-05-01T10:01:00Z"),
        ("telegraf-node", "2024-05-01T10:02:00Z"), ("keyed-node", "2024-05-01T10:03:00Z"),
        ("clockless", "2024-05-01T10:04:00Z")]
    rejected = _read(tmp_path / "data" / "db" / "rejected.jsonl")
    assert len(rejected) == 1 and result["rejected"] == 1
    assert rejected[0]["topic"] == topic and rejected[0]["partition"] == 0 and rejected[0]["offset"] == 5
    assert rejected[0]["key"] == "x" and rejected[0]["code"] == "ts_out_of_range"
