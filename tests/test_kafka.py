from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

from confluent_kafka import Producer

from mass_tui.config import load_config
from mass_tui.service import run_consumer
from sources.kafka_transport import KafkaSink, KafkaSource, ensure_topic

from .conftest import sigkill_when, sigterm_when
from .conftest import wait_for as _wait
from .kafka_broker import kafka_env as _env
from .kafka_broker import numbered_messages as _messages
from .kafka_broker import stored_stream as _stored


def test_produce_keyed_then_group_consume_commit_and_resume(kafka_broker):
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    ensure_topic(kafka_broker.bootstrap, topic, partitions=4)
    sink = KafkaSink(kafka_broker.bootstrap, topic)
    msgs = _messages(400)
    sink.append(msgs, [json.loads(m)["station"] for m in msgs])
    assert sink.flush(10) == 0 and sink.delivered == 400 and sink.failed == 0
    first = KafkaSource(kafka_broker.bootstrap, topic, group)
    got: list[bytes] = []
    assert _wait(lambda: got.extend(first.read(150, timeout=0.5)) or len(got) >= 150)
    first.commit()
    lag = first.lag()
    assert lag and all(v >= 0 for v in lag.values())  # per assigned partition, clamped at zero
    first.close()
    second = KafkaSource(kafka_broker.bootstrap, topic, group)
    rest: list[bytes] = []
    assert _wait(lambda: rest.extend(second.read(500, timeout=0.5)) or len(got) + len(rest) >= 400)
    second.commit()
    second.close()
    assert sorted(got + rest) == sorted(msgs)  # resumed after the commit: no loss, no overlap
    # Keyed by station: each station's messages keep their order.
    for station in ("s0", "s1"):
        seq = [json.loads(m)["ts"] for m in got + rest if json.loads(m)["station"] == station]
        assert seq == sorted(seq) or len(set(seq)) == len(seq)


def test_pipeline_over_kafka_stores_everything_and_quarantines_a_poison_message(tmp_path, kafka_broker):
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    cfg = load_config(None, env=_env(tmp_path, kafka_broker, topic, group), dotenv_file=None)
    ensure_topic(kafka_broker.bootstrap, topic)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for m in [*_messages(300), b"\xff\xfe not json", b'{"ts": 1, "station": "s0", "temp_c": 400}']:
        producer.produce(topic, value=m, key=b"s0")
    producer.flush(10)
    stop = threading.Event()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run_consumer(cfg, transport="kafka", stop=stop)))
    thread.start()
    assert _wait(lambda: len(_stored(tmp_path)) >= 300)
    time.sleep(0.5)
    stop.set()
    thread.join(30)
    assert result["observations"] == 300 and result["rejected"] == 2
    rejected = (tmp_path / "data" / "db" / "rejected.jsonl").read_text()
    assert "not JSON" in rejected and "outside the physical range" in rejected


def test_simulator_produce_then_consume_with_the_cli(tmp_path, kafka_broker):
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    env = _env(tmp_path, kafka_broker, topic, group)
    out = subprocess.run([sys.executable, "-m", "mass_tui", "produce", "--source", "simulator", "--transport",
                          "kafka", "--max", "--max-messages", "2400"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["produced"] == 2400
    assert (tmp_path / "data" / "db" / "labels.jsonl").read_text().count('"kind"') > 0
    # --max-seconds 12 is only the window: SIGTERM (a clean stop, as --max-seconds is) once all are stored.
    run = subprocess.Popen([sys.executable, "-m", "mass_tui", "run", "--headless", "--transport", "kafka", "-q",
                            "--max-seconds", "12"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    _, _, err = sigterm_when(run, lambda: len(_stored(tmp_path)) >= 2400, 30)
    assert run.returncode == 0, err
    assert len(_stored(tmp_path)) == 2400


def test_consumer_sigkill_mid_stream_loses_nothing(tmp_path, kafka_broker):
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    env = _env(tmp_path, kafka_broker, topic, group)
    ensure_topic(kafka_broker.bootstrap, topic)
    sink = KafkaSink(kafka_broker.bootstrap, topic)
    n = 40_000
    msgs = _messages(n)
    sink.append(msgs, [json.loads(m)["station"] for m in msgs])
    sink.flush(30)
    cmd = [sys.executable, "-m", "mass_tui", "run", "--headless", "--transport", "kafka", "-q"]
    proc = subprocess.Popen([*cmd, "--max-seconds", "60"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert sigkill_when(proc, lambda: len(_stored(tmp_path)) > 2000, 40)
    before = len(_stored(tmp_path))
    assert before < n, "killed mid-stream"
    # The restart's --max-seconds 15 is only a window: stopped (SIGTERM, cleanly) once every message is stored.
    rerun = subprocess.Popen([*cmd, "--max-seconds", "15"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    sigterm_when(rerun, lambda: len({(r["station"], r["ts"]) for r in _stored(tmp_path)}) >= n, 30)
    stamps = [(r["station"], r["ts"]) for r in _stored(tmp_path)]
    assert len(set(stamps)) == n  # every message stored at least once


def test_broker_restart_consumer_reconnects_and_keeps_consuming(tmp_path, own_kafka_broker):
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    cfg = load_config(None, env=_env(tmp_path, own_kafka_broker, topic, group), dotenv_file=None)
    ensure_topic(own_kafka_broker.bootstrap, topic)
    sink = KafkaSink(own_kafka_broker.bootstrap, topic)
    sink.append(_messages(100), ["s0"] * 100)
    sink.flush(10)
    stop = threading.Event()
    holder: dict = {}
    thread = threading.Thread(target=lambda: holder.update(
        run_consumer(cfg, transport="kafka", stop=stop, on_ready=lambda p: holder.update(pipeline=p))))
    thread.start()
    try:
        assert _wait(lambda: len(_stored(tmp_path)) >= 100)
        own_kafka_broker.stop()
        assert _wait(lambda: holder["pipeline"].consumer.state.up is False, 30)  # shown as down
        assert holder["pipeline"].transport_status().startswith("Kafka down since ")  # in the UI's status bar
        own_kafka_broker.start()  # same port; memory-only, so the topic starts empty
        ensure_topic(own_kafka_broker.bootstrap, topic)
        sink2 = KafkaSink(own_kafka_broker.bootstrap, topic)
        sink2.append(_messages(50, start=100), ["s0"] * 50)
        sink2.flush(10)
        assert _wait(lambda: len(_stored(tmp_path)) >= 150, 60)
    finally:
        stop.set()
        thread.join(30)
    assert len({r["ts"] for r in _stored(tmp_path)}) == 150


def test_switching_transport_at_run_time_keeps_detector_state(tmp_path, kafka_broker):
    from mass_tui.pipeline import transport_file
    from sources.file_transport import FileAppender

    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    cfg = load_config(None, env=_env(tmp_path, kafka_broker, topic, group), dotenv_file=None)
    ensure_topic(kafka_broker.bootstrap, topic)
    appender = FileAppender(transport_file(cfg))
    appender.append(_messages(200))
    stop = threading.Event()
    holder: dict = {}
    thread = threading.Thread(target=lambda: holder.update(
        run_consumer(cfg, transport="file", stop=stop, idle_wait=0.05, on_ready=lambda p: holder.update(pipeline=p))))
    thread.start()
    try:
        assert _wait(lambda: len(_stored(tmp_path)) >= 200)
        pipeline = holder["pipeline"]
        series = pipeline.engine.bank.series[("s0", "temp_c")]
        seen_before = series.count
        assert pipeline.switch_transport() == "kafka"
        sink = KafkaSink(kafka_broker.bootstrap, topic)
        sink.append(_messages(100, start=200), ["s0"] * 100)
        sink.flush(10)
        assert _wait(lambda: len(_stored(tmp_path)) >= 300, 40)
        assert pipeline.transport == "kafka"
        # The same detectors went on counting: state was kept across the switch.
        assert pipeline.engine.bank.series[("s0", "temp_c")] is series and series.count > seen_before
    finally:
        stop.set()
        thread.join(30)
        appender.close()
