"""Kafka under faults, on a real (Tansu) broker: producer and consumer in one process, undelivered
messages counted, and positions that never pass what was not stored (issue 8, scope 2)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mass_tui.config import load_config
from mass_tui.service import run_consumer, transport_path
from sources.file_transport import FileAppender
from sources.kafka_transport import KafkaSink, KafkaSource, ensure_topic

from .conftest import sigterm_when
from .conftest import wait_for as _wait
from .kafka_broker import kafka_env as _env
from .kafka_broker import numbered_messages as _messages
from .kafka_broker import stored_stream as _stored


def _names() -> tuple[str, str]:
    return f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"





def test_producer_and_consumer_in_one_process_store_observations(tmp_path, kafka_broker):
    """`mass run --headless --source simulator:smoke --transport kafka`: the producer thread never
    touches the consumer's handle (it used to block on its lag while the consumer polled: 0 stored)."""
    topic, group = _names()
    env = _env(tmp_path, kafka_broker, topic, group)
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "run", "--headless", "-q", "--source",
                             "simulator:smoke", "--transport", "kafka", "--max-seconds", "15"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # --max-seconds 15 is only the window: a clean stop (SIGTERM) once the first poll is stored ends it the same way.
    _, out, err = sigterm_when(proc, lambda: len(_stored(tmp_path)) >= 4, 30)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["observations"] >= 4, summary  # at least the first poll of the 4 smoke sensors
    assert summary["producer"]["delivered"] == summary["produced"] >= summary["observations"]
    assert len(_stored(tmp_path)) == summary["observations"]


def test_flat_out_run_on_kafka_ends_once_everything_is_stored(tmp_path, kafka_broker):
    """With --max and --max-messages the run ends by itself once the consumer has caught up, not at
    its first empty read while still joining the group."""
    topic, group = _names()
    env = _env(tmp_path, kafka_broker, topic, group)
    out = subprocess.run([sys.executable, "-m", "mass_tui", "run", "--headless", "-q", "--source", "simulator:smoke",
                          "--transport", "kafka", "--max", "--max-messages", "400", "--max-seconds", "60"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["observations"] == 400 == len(_stored(tmp_path)), summary


class _MeteoServer:
    """Open-Meteo on loopback; each answer carries a new `current.time`, so each poll is a message."""

    def __init__(self, sample: bytes) -> None:
        self.served = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                payload = json.loads(sample)
                server.served += 1
                payload["current"]["time"] = f"2026-10-03T{server.served // 60:02d}:{server.served % 60:02d}"
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}/v1/forecast"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def test_produce_counts_undelivered_messages_and_exits_1_when_the_broker_is_gone(tmp_path, own_kafka_broker, shared):
    """`mass produce` on Kafka: what was delivered comes from delivery reports; messages still queued
    after the final flush are counted and logged, the exit status is 1, and the transport state
    shows the broker down (before: every message "produced", exit 0)."""
    topic, group = _names()
    ensure_topic(own_kafka_broker.bootstrap, topic)
    api = _MeteoServer((shared / "api-samples" / "open-meteo_forecast_current_hourly_daily_excerpt.json").read_bytes())
    env = {**_env(tmp_path, own_kafka_broker, topic, group), "WEATHER_API_BASE": api.base, "AIR_QUALITY_API_BASE": "",
           "POLL_SECONDS": "1", "LOCATION_LAT": "52.27", "LOCATION_LON": "6.87"}
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "produce", "--source", "open-meteo", "--transport",
                             "kafka"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    consumer = KafkaSource(own_kafka_broker.bootstrap, topic, group)
    try:
        got: list[bytes] = []
        assert _wait(lambda: got.extend(consumer.read(100, timeout=0.2)) or len(got) >= 2, 30)  # delivered
        consumer.close()
        own_kafka_broker.stop()
        served = api.served
        assert _wait(lambda: api.served >= served + 3, 30)  # polled (and produced) while the broker is down
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        api.close()
    summary = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 1, (summary, err)
    assert summary["delivered"] >= 2 and summary["undelivered"] >= 3
    assert summary["produced"] == summary["delivered"] + summary["undelivered"]
    assert summary["transport_state"]["up"] is False and summary["transport_state"]["last_error"]
    assert f"{summary['undelivered']} of {summary['produced']} messages not delivered" in err
    assert "not delivered to Kafka" in (tmp_path / "logs" / "mass.log").read_text()


def test_close_commits_only_what_was_stored(kafka_broker):
    """A batch read but not committed (not stored) is read again by the next consumer of the group;
    before, close() committed whatever read() had returned."""
    topic, group = _names()
    ensure_topic(kafka_broker.bootstrap, topic)
    sink = KafkaSink(kafka_broker.bootstrap, topic)
    msgs = _messages(200)
    sink.append(msgs, [json.loads(m)["station"] for m in msgs])
    assert sink.flush(10) == 0 and sink.delivered == 200
    first = KafkaSource(kafka_broker.bootstrap, topic, group)
    stored: list[bytes] = []
    assert _wait(lambda: stored.extend(first.read(50, timeout=0.5)) or len(stored) >= 50)
    first.commit()  # these were stored
    unstored: list[bytes] = []
    assert _wait(lambda: unstored.extend(first.read(50, timeout=0.5)) or len(unstored) > 0)
    first.close()  # the engine raised on `unstored`: nothing more may be committed
    second = KafkaSource(kafka_broker.bootstrap, topic, group)
    rest: list[bytes] = []
    assert _wait(lambda: rest.extend(second.read(500, timeout=0.5)) or len(stored) + len(rest) >= 200)
    second.close()
    assert set(unstored) <= set(rest)  # read again
    assert sorted(set(stored) | set(rest)) == sorted(msgs)


class _Injected(RuntimeError):
    pass


def _fail_mid_batch(holder: dict, on_batch_number: int = 2, after_steps: int = 3):
    """on_ready hook: the engine raises partway through scoring its `on_batch_number`th batch."""

    def ready(pipeline) -> None:
        holder["pipeline"] = pipeline
        engine, bank = pipeline.engine, pipeline.engine.bank
        state = {"batches": 0, "steps": 0}
        ingest, step_series, step_value = engine.ingest, bank.step_series, bank.step_value

        def counting_ingest(lines, **kw):
            state["batches"] += 1
            return ingest(lines, **kw)

        def armed(step):
            def wrapper(*args, **kw):
                if state["batches"] == on_batch_number:
                    state["steps"] += 1
                    if state["steps"] > after_steps:
                        raise _Injected("injected engine failure mid-batch")
                return step(*args, **kw)
            return wrapper

        step_many = bank.step_many

        def armed_many(requests, *args, **kw):
            # a batch's series step together: the first few step, then the failure
            if state["batches"] == on_batch_number and state["steps"] + len(requests) > after_steps:
                room = max(0, after_steps - state["steps"])
                state["steps"] += room
                step_many(requests[:room], *args, **kw)
                raise _Injected("injected engine failure mid-batch")
            if state["batches"] == on_batch_number:
                state["steps"] += len(requests)
            return step_many(requests, *args, **kw)

        engine.ingest = counting_ingest
        bank.step_series, bank.step_value = armed(step_series), armed(step_value)
        bank.step_many = armed_many

    return ready


def _run_and_fail(cfg, transport: str, holder: dict) -> BaseException | None:
    caught: list[BaseException] = []

    def target() -> None:
        try:
            run_consumer(cfg, transport=transport, idle_wait=0.05, max_seconds=60, on_ready=_fail_mid_batch(holder))
        except _Injected as exc:
            caught.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(90)
    return caught[0] if caught else None


def _every_message_stored_or_quarantined(tmp_path: Path, n: int) -> None:
    stored = {(r["station"], r["ts"]) for r in _stored(tmp_path)}
    rejected_path = tmp_path / "data" / "db" / "rejected.jsonl"
    rejected = {json.loads(r["raw"])["ts"] for r in map(json.loads, rejected_path.read_text().splitlines())} \
        if rejected_path.exists() else set()
    from sources.schema import iso_utc

    for i in range(n):
        ts = 1_700_000_000 + 60 * i
        assert (f"s{i % 4}", iso_utc(ts)) in stored or ts in rejected, f"message {i} lost"


@pytest.mark.parametrize("transport", ["file", "kafka"])
def test_engine_failure_mid_batch_then_restart_loses_nothing(tmp_path, kafka_broker, transport):
    """Issue 8, scope 2: an exception inside the engine mid-batch ends the run without committing
    that batch (on Kafka, close() used to commit it); after a restart every message is stored."""
    topic, group = _names()
    cfg = load_config(None, env=_env(tmp_path, kafka_broker, topic, group), dotenv_file=None)
    n = 12_000
    msgs = _messages(n)
    if transport == "file":
        appender = FileAppender(transport_path(cfg))
        appender.append(msgs)
        appender.close()
    else:
        ensure_topic(kafka_broker.bootstrap, topic, partitions=1)  # batches in one order: fails mid-stream
        sink = KafkaSink(kafka_broker.bootstrap, topic)
        sink.append(msgs, ["s"] * n)
        assert sink.flush(30) == 0
    holder: dict = {}
    assert isinstance(_run_and_fail(cfg, transport, holder), _Injected)
    before = len(_stored(tmp_path))
    assert 0 < before < n, "failed mid-stream"
    stop = threading.Event()
    thread = threading.Thread(target=lambda: run_consumer(cfg, transport=transport, stop=stop, idle_wait=0.05))
    thread.start()
    try:
        assert _wait(lambda: len({(r["station"], r["ts"]) for r in _stored(tmp_path)}) >= n, 60)
    finally:
        stop.set()
        thread.join(30)
    _every_message_stored_or_quarantined(tmp_path, n)


class _FlushSpy:
    """The real producer, noting the timeout of each flush."""

    def __init__(self, producer) -> None:
        self.producer = producer
        self.flushes: list[float] = []

    def flush(self, timeout: float) -> int:
        self.flushes.append(timeout)
        return self.producer.flush(timeout)

    def __getattr__(self, name: str):
        return getattr(self.producer, name)


def test_close_right_after_a_flush_that_waited_in_vain_does_not_wait_again():
    """`mass produce` flushes, then closes its sink: with the broker gone the second wait doubled the
    time a stopped producer took to exit. A close after a vain flush only takes the reports in; and
    once librdkafka reports the broker down, no flush waits at all (tests/test_kafka_down.py)."""
    with socket.socket() as s:  # a loopback port nothing listens on: the broker is gone
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = KafkaSink(f"127.0.0.1:{port}", "gone")
    spy = sink._producer = _FlushSpy(sink._producer)
    sink.append([b'{"a": 1}', b'{"a": 2}'])
    assert sink.flush(0.3) == 2
    assert sink.close(timeout=30.0) == 2
    assert spy.flushes[0] in (0.3, 0.0) and spy.flushes[1:] == [0.0]  # 0.0 first if already reported down
    sink.append([b'{"a": 3}'])  # something new, but the broker is known down by now
    assert sink.close(timeout=0.2) == 3
    assert spy.flushes[2:] == [0.0]
